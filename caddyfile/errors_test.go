package caddyfile_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	pbcaddyfile "github.com/caddy-postback/caddy-postback/caddyfile"
)

// The error cases mark their offending line with the comment "#!"; the
// adapter's error must name that line as "Caddyfile:<line>".
const marker = "#!"

func global(body string) string {
	return "{\n\tadmin off\n\tpostback {\n" + body + "\n\t}\n}\n"
}

func cookie(body string) string   { return global("cookie {\n" + body + "\n}") }
func delivery(body string) string { return global("delivery {\n" + body + "\n}") }

func consentBlock(body string) string { return global("consent {\n" + body + "\n}") }
func network(body string) string      { return global("network demo {\n" + body + "\n}") }

func site(body string) string {
	return "example.com {\n\tpostback {\n" + body + "\n\t}\n\trespond ok\n}\n"
}

func conversion(body string) string { return site("conversion {\n" + body + "\n}") }

func webhook(provider, body string) string {
	return site("webhook /hook " + provider + " s3cret {\n" + body + "\n}")
}

func endpoint(body string) string {
	return site("endpoint /in { #!\n" + body + "\n}")
}

// endpointAt is an endpoint whose marked line is in its body.
func endpointAt(body string) string {
	return site("endpoint /in {\ntoken {env.T}\n" + body + "\n}")
}

func fromJSON(body string) string   { return conversion("from json {\n" + body + "\n}") }
func fromHeader(body string) string { return conversion("from header {\n" + body + "\n}") }

// markedLine returns the 1-based line of the only line carrying marker.
func markedLine(t *testing.T, caddyfile string) int {
	t.Helper()
	line := 0
	for i, l := range strings.Split(caddyfile, "\n") {
		if strings.Contains(l, marker) {
			if line != 0 {
				t.Fatalf("two lines carry %s:\n%s", marker, caddyfile)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("no line carries %s:\n%s", marker, caddyfile)
	}
	return line
}

func TestCaddyfileErrors(t *testing.T) {
	const argCount = "wrong argument count"
	for _, tc := range []struct {
		name      string
		caddyfile string
		want      []string // substrings of the error
	}{
		// Global option.
		{"global args", "{\n\tpostback extra { #!\n\t\tstorage :memory:\n\t}\n}\n", []string{argCount, "'extra'"}},
		{"global unknown", global("storag /x #!"), []string{"unrecognized postback option 'storag'"}},
		{"global repeated storage", global("storage /a\nstorage /b #!"), []string{"storage already specified"}},
		{"global repeated storage", global("storage /a\nstorage /b #!"), []string{"storage already specified"}},
		{"storage repeated sync_writes", global("storage badger /a {\nsync_writes\nsync_writes #!\n}"), []string{"storage sync_writes already specified"}},
		{"storage unknown option", global("storage badger {\nflush_interval 1s #!\n}"), []string{"unrecognized badger storage option 'flush_interval'"}},
		{"storage bad min_free", global("storage badger {\nmin_free lots #!\n}"), []string{`min_free "lots"`}},
		{"session_daily_limit word", global("session_daily_limit many #!"), []string{"session_daily_limit"}},
		{"global repeated attribution", global("attribution last_click\nattribution first_click #!"), []string{"attribution already specified"}},
		{"global repeated max_click_id_length", global("max_click_id_length 9\nmax_click_id_length 9 #!"), []string{"max_click_id_length already specified"}},
		{"global repeated max_touchpoints", global("max_touchpoints 9\nmax_touchpoints 9 #!"), []string{"max_touchpoints already specified"}},
		{"global repeated consent", global("consent {\ntcf\n}\nconsent { #!\ntcf\n}"), []string{"consent already specified"}},
		{"consent_cookie is gone", global("consent_cookie a #!"), []string{"consent_cookie is replaced by consent { purpose"}},
		{"global repeated truncate_ip", global("truncate_ip\ntruncate_ip #!"), []string{"truncate_ip already specified"}},
		{"global repeated disable_metrics", global("disable_metrics\ndisable_metrics #!"), []string{"disable_metrics already specified"}},
		{"global repeated cookie", global("cookie {\nname a\n}\ncookie { #!\nname b\n}"), []string{"cookie already specified"}},
		{"global repeated delivery", global("delivery {\ntimeout 1s\n}\ndelivery { #!\ntimeout 2s\n}"), []string{"delivery already specified"}},
		{"global repeated network", global("network a {\nclick_param a\nurl https://x\n}\nnetwork a { #!\nclick_param a\nurl https://y\n}"), []string{"network a already specified"}},
		{"global twice", "{\n\tpostback {\n\t\tstorage :memory:\n\t}\n\tpostback { #!\n\t\ttruncate_ip\n\t}\n}\n", []string{"postback global option given twice"}},
		{"storage no arg", global("storage #!"), []string{argCount, "'storage'"}},
		{"storage two args", global("storage /a /b #!"), []string{argCount, "'/b'"}},
		{"sync_writes arg", global("storage badger {\nsync_writes yes #!\n}"), []string{argCount, "'yes'"}},
		{"truncate_ip arg", global("truncate_ip /24 #!"), []string{argCount, "'/24'"}},
		{"disable_metrics arg", global("disable_metrics true #!"), []string{argCount, "'true'"}},
		{"attribution no arg", global("attribution #!"), []string{argCount, "'attribution'"}},
		{"max_touchpoints word", global("max_touchpoints many #!"), []string{`max_touchpoints: want a whole number, got "many"`}},
		{"max_click_id_length negative", global("max_click_id_length -1 #!"), []string{`max_click_id_length: want a whole number, got "-1"`}},

		// consent { }
		{"consent args", global("consent yes { #!\ntcf\n}"), []string{argCount, "'yes'"}},
		{"consent unknown", consentBlock("cookie cc yes #!"), []string{"unrecognized consent option 'cookie'"}},
		{"consent repeated tcf", consentBlock("tcf\ntcf #!"), []string{"consent tcf already specified"}},
		{"consent tcf two cookies", consentBlock("tcf a b #!"), []string{argCount, "'b'"}},
		{"consent purpose two args", consentBlock("purpose ads cc #!"), []string{argCount}},
		{"consent purpose bad regexp", consentBlock("purpose ads cc (yes #!"), []string{"consent purpose ads: bad regular expression"}},
		{"consent require no arg", consentBlock("require #!"), []string{argCount, "'require'"}},
		{"consent repeated require", consentBlock("require 1\nrequire 2 #!"), []string{"consent require already specified"}},
		{"consent ad_user_data no arg", consentBlock("ad_user_data #!"), []string{argCount}},

		// cookie { }
		{"cookie args", global("cookie extra { #!\nname a\n}"), []string{argCount, "'extra'"}},
		{"cookie unknown", cookie("nam a #!"), []string{"unrecognized cookie option 'nam'"}},
		{"cookie repeated name", cookie("name a\nname b #!"), []string{"cookie name already specified"}},
		{"cookie repeated domain", cookie("domain a\ndomain b #!"), []string{"cookie domain already specified"}},
		{"cookie repeated secret", cookie("secret a\nsecret b #!"), []string{"cookie secret already specified"}},
		{"cookie repeated lifetime", cookie("lifetime 1d\nlifetime 2d #!"), []string{"cookie lifetime already specified"}},
		{"cookie secret no arg", cookie("secret #!"), []string{argCount, "'secret'"}},
		{"cookie lifetime bad", cookie("lifetime soon #!"), []string{`lifetime: bad duration "soon"`}},

		// delivery { }
		{"delivery args", global("delivery now { #!\ntimeout 1s\n}"), []string{argCount, "'now'"}},
		{"delivery unknown", delivery("retries 3 #!"), []string{"unrecognized delivery option 'retries'"}},
		{"delivery repeated timeout", delivery("timeout 1s\ntimeout 2s #!"), []string{"delivery timeout already specified"}},
		{"delivery repeated retry_base", delivery("retry_base 1s\nretry_base 2s #!"), []string{"delivery retry_base already specified"}},
		{"delivery repeated retry_max", delivery("retry_max 1h\nretry_max 2h #!"), []string{"delivery retry_max already specified"}},
		{"delivery repeated pause_after", delivery("pause_after 1\npause_after 2 #!"), []string{"delivery pause_after already specified"}},
		{"delivery repeated pause_base", delivery("pause_base 1s\npause_base 2s #!"), []string{"delivery pause_base already specified"}},
		{"delivery repeated log_retention", delivery("log_retention 1d\nlog_retention 2d #!"), []string{"delivery log_retention already specified"}},
		{"delivery repeated dead_retention", delivery("dead_retention 1d\ndead_retention 2d #!"), []string{"delivery dead_retention already specified"}},
		{"delivery repeated timeout", delivery("timeout 1s\ntimeout 2s #!"), []string{"delivery timeout already specified"}},
		{"delivery durable is gone", delivery("durable true #!"), []string{"unrecognized delivery option 'durable'"}},
		{"timeout without unit", delivery("timeout 10 #!"), []string{`timeout: bad duration "10"`}},
		{"retry_base bad", delivery("retry_base 1x #!"), []string{`retry_base: bad duration "1x"`}},
		{"retry_max two args", delivery("retry_max 1h 2h #!"), []string{argCount, "'2h'"}},
		{"dead_retention bad", delivery("dead_retention forever #!"), []string{`dead_retention: bad duration "forever"`}},
		{"pause_after word", delivery("pause_after five #!"), []string{`pause_after: want a whole number, got "five"`}},

		// network NAME { }
		{"network no name", global("network { #!\nurl x\n}"), []string{argCount, "'network'"}},
		{"network two names", global("network a b { #!\nurl x\n}"), []string{argCount, "'b'"}},
		{"network unknown", network("urll https://x #!"), []string{"network demo: unrecognized option 'urll'"}},
		{"network repeated preset", network("preset get\npreset post #!"), []string{"network demo: preset already specified"}},
		{"network repeated click_param", network("click_param a\nclick_param b #!"), []string{"network demo: click_param already specified"}},
		{"network click_cookie no arg", network("click_cookie #!"), []string{argCount}},
		{"network click_cookie three args", network("click_cookie a b c #!"), []string{argCount}},
		{"network consent no arg", network("consent #!"), []string{argCount}},
		{"network repeated consent", network("consent 1\nconsent 2 #!"), []string{"network demo: consent already specified"}},
		{"network repeated role", network("role affiliate\nrole platform #!"), []string{"network demo: role already specified"}},
		{"network repeated window", network("window 1d\nwindow 2d #!"), []string{"network demo: window already specified"}},
		{"network repeated url", network("url https://a\nurl https://b #!"), []string{"network demo: url already specified"}},
		{"network repeated method", network("method GET\nmethod POST #!"), []string{"network demo: method already specified"}},
		{"network repeated body", network("body a\nbody b #!"), []string{"network demo: body already specified"}},
		{"network repeated success_body", network("success_body a\nsuccess_body b #!"), []string{"network demo: success_body already specified"}},
		{"network repeated events", network("events a\nevents b #!"), []string{"network demo: events already specified"}},
		{"network repeated max_age", network("max_age 1h\nmax_age 2h #!"), []string{"network demo: max_age already specified"}},
		{"network repeated concurrency", network("concurrency 1\nconcurrency 2 #!"), []string{"network demo: concurrency already specified"}},
		{"network repeated header", network("header X-Key a\nheader X-Key b #!"), []string{"network demo: header X-Key already specified"}},
		{"network repeated bare param", network("nid 1\nnid 2 #!"), []string{"network demo: nid already specified"}},
		{"network param then bare", network("param nid 1\nnid 2 #!"), []string{"network demo: nid already specified"}},
		{"network repeated param", network("param event_id_lead 1\nparam event_id_lead 2 #!"), []string{"network demo: event_id_lead already specified"}},
		{"network bare param no value", network("pixel_id #!"), []string{argCount, "'pixel_id'"}},
		{"network header one arg", network("header X-Key #!"), []string{argCount, "'X-Key'"}},
		{"network header three args", network("header X-Key a b #!"), []string{argCount, "'b'"}},
		{"network param one arg", network("param nid #!"), []string{argCount, "'nid'"}},
		{"network body no arg", network("body #!"), []string{argCount, "'body'"}},
		{"network body three args", network("body a json extra #!"), []string{argCount}},
		{"network click_param no arg", network("click_param #!"), []string{argCount, "'click_param'"}},
		{"network events no arg", network("events #!"), []string{argCount, "'events'"}},
		{"network url two args", network("url https://a https://b #!"), []string{argCount, "'https://b'"}},
		{"network window bad", network("window 30days #!"), []string{`window: bad duration "30days"`}},
		{"network max_age bad", network("max_age 3 #!"), []string{`max_age: bad duration "3"`}},
		{"network concurrency negative", network("concurrency -2 #!"), []string{`concurrency: want a whole number, got "-2"`}},

		// Mistakes found by building the network's destination as loading
		// will, with their line and the nearest known name.
		{"unknown preset", network("click_param c\npreset evreflow #!"), []string{`network demo: unknown preset "evreflow" (did you mean ` + "`everflow`" + `?)`, "known: "}},
		{"unknown preset far from any", network("click_param c\npreset facebook #!"), []string{`unknown preset "facebook"; known: `}},
		{"unknown preset, a preset's start", network("click_param c\npreset meta #!"), []string{"did you mean `meta_capi`?"}},
		{"unknown token in url", network("click_param c\nurl https://x.example/pb?c={clickid} #!"), []string{"unknown token {clickid} (did you mean `{click_id}`?)"}},
		{"unknown token in url with env", network("click_param c\nurl https://x.example/{env.PB_PATH}?c={clikc_id}&k={env.PB_KEY} #!"), []string{"unknown token {clikc_id} (did you mean `{click_id}`?)"}},
		{"unknown token in a header", network("click_param c\nurl https://x.example/pb\nheader X-Order {order_id}\nheader X-Click {clickid} #!"), []string{"unknown token {clickid}"}},
		{"unknown token in a form body", network("click_param c\npreset post\nurl https://x.example/pb\nbody \"c={click_id}&a={ammount}\" #!"), []string{"unknown token {ammount} (did you mean `{amount}`?)"}},
		{"unknown token in a JSON body", network("click_param c\npreset post\nurl https://x.example/pb\nbody `{\"c\":\"{orderid}\"}` json #!"), []string{"unknown token {orderid} (did you mean `{order_id}`?)"}},
		{"unknown token in a preset's url", global("network everflow {\npreset everflow\nnid 1\nurl https://trk.example/?t={transaction_id} #!\n}"), []string{"unknown token {transaction_id}"}},
		{"token in the host", network("click_param c\nurl https://{sub1}.example/pb #!"), []string{"tokens may not stand in the scheme or host"}},
		{"missing preset value", global("network meta {\npreset meta_capi #!\npixel_id 1\n}"), []string{"preset meta_capi needs access_token", "add `access_token <value>` to network meta"}},
		{"missing preset values", global("network tiktok {\npreset tiktok #!\n}"), []string{"preset tiktok needs pixel_code, access_token", "add `pixel_code <value>` and `access_token <value>`"}},
		{"preset value unknown to the preset", global("network meta {\npreset meta_capi\npixel_id 1\naccess_token t\nparam pixelid 2 #!\n}"), []string{"does not know pixelid (did you mean `pixel_id`?)"}},
		{"preset value of another preset", global("network meta {\npreset meta_capi\npixel_id 1\naccess_token t\nmerchant 2 #!\n}"), []string{"preset meta_capi does not know merchant"}},
		{"preset value of a bad form", global("network matomo {\nclick_param c\npreset matomo\nurl https://m.example\nsite_id one #!\n}"), []string{`site_id "one"`}},
		{"unknown network option", network("pixelid 1 #!"), []string{"network demo: unrecognized option 'pixelid' (did you mean `pixel_id`?)"}},
		{"unknown network option near an option", network("click_parm c #!"), []string{"unrecognized option 'click_parm' (did you mean `click_param`?)"}},
		{"no click parameter", global("network mynet { #!\nurl https://x.example/pb\n}"), []string{"network mynet: no click_param or click_cookie"}},
		{"unknown webhook provider", site("webhook /hook strpe s3cret #!"), []string{`webhook /hook: unknown provider "strpe" (did you mean ` + "`stripe`" + `?)`, "generic", "clickbank", "jvzoo", "warriorplus"}},
		{"unknown webhook provider far from any", site("webhook /hook paypal s3cret #!"), []string{`unknown provider "paypal"; want one of stripe,`, "generic"}},
		{"unknown storage engine", global("storage postgress postgres://db/x #!"), []string{"storage: unknown engine 'postgress' (did you mean `postgres`?)"}},
		{"unknown badger option near one", global("storage badger {\nmin_fre 1GiB #!\n}"), []string{"unrecognized badger storage option 'min_fre' (did you mean `min_free`?)"}},
		{"unknown postgres option near one", global("storage postgres postgres://db/x {\nmax_con 3 #!\n}"), []string{"unrecognized postgres storage option 'max_con' (did you mean `max_conns`?)"}},
		{"unknown global option near one", global("atribution first_click #!"), []string{"unrecognized postback option 'atribution' (did you mean `attribution`?)"}},
		{"unknown delivery option near one", delivery("retry_bse 1s #!"), []string{"unrecognized delivery option 'retry_bse' (did you mean `retry_base`?)"}},
		{"unknown cookie option near one", cookie("domian .example.com #!"), []string{"unrecognized cookie option 'domian' (did you mean `domain`?)"}},

		// Site directive.
		{"handler args", "example.com {\n\tpostback extra { #!\n\t}\n}\n", []string{argCount, "'extra'"}},
		{"handler unknown", site("conversions { #!\n}"), []string{"unrecognized postback subdirective 'conversions'"}},
		{"decorate one arg", site("decorate buy.stripe.com #!"), []string{"decorate: want"}},
		{"decorate param without name", site("decorate buy.stripe.com param #!"), []string{"decorate: want"}},
		{"decorate three args not param", site("decorate buy.stripe.com stripe extra #!"), []string{"decorate: want"}},
		{"decorate four args", site("decorate h param ref extra #!"), []string{"decorate: want"}},

		// conversion [event] { }
		{"conversion unknown", conversion("order {query.o} #!"), []string{"unrecognized conversion option 'order'"}},
		{"conversion repeated response", conversion("response status 2xx\nresponse status 200 #!"), []string{"conversion response already specified"}},
		{"conversion repeated status", conversion("status approved\nstatus pending #!"), []string{"conversion status already specified"}},
		{"conversion repeated order_id", conversion("order_id a\norder_id b #!"), []string{"conversion order_id already specified"}},
		{"conversion repeated amount", conversion("amount a\namount b #!"), []string{"conversion amount already specified"}},
		{"conversion repeated currency", conversion("currency a\ncurrency b #!"), []string{"conversion currency already specified"}},
		{"conversion repeated coupon", conversion("coupon a\ncoupon b #!"), []string{"conversion coupon already specified"}},
		{"conversion repeated default_currency", conversion("default_currency USD\ndefault_currency EUR #!"), []string{"conversion default_currency already specified"}},
		{"conversion repeated max_body", conversion("max_body 1KiB\nmax_body 2KiB #!"), []string{"conversion max_body already specified"}},
		{"conversion repeated join_only", conversion("join_only\njoin_only #!"), []string{"conversion join_only already specified"}},
		{"match empty", conversion("match #!"), []string{"conversion match: no matcher given"}},
		{"match empty block", conversion("match { #!\n}"), []string{"conversion match: no matcher given"}},
		{"match unknown matcher", conversion("match pathh /x #!"), []string{"getting matcher module 'pathh'"}},
		{"response unknown matcher", conversion("response {\nstat 2xx #!\n}"), []string{"unrecognized response matcher stat"}},
		{"response bad status", conversion("response status 2xy #!"), []string{"bad status value '2xy'"}},
		{"response empty", conversion("response #!"), []string{"conversion response: no status or header matcher"}},
		{"status no arg", conversion("status #!"), []string{argCount, "'status'"}},
		{"order_id two args", conversion("order_id a b #!"), []string{argCount, "'b'"}},
		{"amount no arg", conversion("amount #!"), []string{"amount: want '<placeholder> [minor]'"}},
		{"amount major", conversion("amount {query.t} major #!"), []string{"amount: want '<placeholder> [minor]'"}},
		{"max_body word", conversion("max_body lots #!"), []string{`max_body "lots"`}},
		{"max_body over 1GiB", conversion("max_body 2GiB #!"), []string{`max_body "2GiB"`}},
		{"join_only arg", conversion("join_only now #!"), []string{argCount, "'now'"}},

		// from …
		{"from no arg", conversion("from #!"), []string{argCount, "'from'"}},
		{"from unknown source", conversion("from html #!"), []string{"from: unknown source 'html'"}},
		{"from magento arg", conversion("from magento extra #!"), []string{argCount, "'extra'"}},
		{"from jsonld arg", conversion("from jsonld extra #!"), []string{argCount, "'extra'"}},
		{"from ga4 two args", conversion("from ga4 purchase extra #!"), []string{argCount, "'extra'"}},
		{"from regex no pattern", conversion("from regex #!"), []string{"from regex: want '<pattern> [minor]'"}},
		{"from regex major", conversion("from regex x major #!"), []string{"from regex: want '<pattern> [minor]'"}},
		{"from json arg", conversion("from json extra { #!\norder_id id\n}"), []string{argCount, "'extra'"}},
		{"from json unknown", fromJSON("order id #!"), []string{"from json: unrecognized field 'order'"}},
		{"from json unknown no arg", fromJSON("total #!"), []string{"from json: unrecognized field 'total'"}},
		{"from json repeated order_id", fromJSON("order_id a\norder_id b #!"), []string{"from json: order_id already specified"}},
		{"from json repeated amount", fromJSON("amount a\namount b minor #!"), []string{"from json: amount already specified"}},
		{"from json currency minor", fromJSON("currency cur minor #!"), []string{argCount, "'minor'"}},
		{"from json amount major", fromJSON("amount a major #!"), []string{argCount, "'major'"}},
		{"from json order_id no arg", fromJSON("order_id #!"), []string{argCount, "'order_id'"}},
		{"from header unknown", fromHeader("ordr X-Order #!"), []string{"from header: unrecognized field 'ordr'"}},
		{"from header repeated currency", fromHeader("currency A\ncurrency B #!"), []string{"from header: currency already specified"}},
		{"from header repeated coupon", fromHeader("coupon A\ncoupon B #!"), []string{"from header: coupon already specified"}},
		{"from header three args", fromHeader("amount X-Total minor extra #!"), []string{argCount, "'extra'"}},

		// webhook <path> <provider> [secrets] { }
		{"webhook no provider", site("webhook /hook #!"), []string{argCount, "'/hook'"}},
		{"webhook unknown", webhook("stripe", "secrt x #!"), []string{"webhook /hook: unrecognized option 'secrt'"}},
		{"webhook repeated tolerance", webhook("stripe", "tolerance 1m\ntolerance 2m #!"), []string{"webhook /hook: tolerance already specified"}},
		{"webhook repeated session_field", webhook("stripe", "session_field a\nsession_field b #!"), []string{"webhook /hook: session_field already specified"}},
		{"webhook repeated event", webhook("stripe", "event a\nevent b #!"), []string{"webhook /hook: event already specified"}},
		{"webhook repeated max_body", webhook("stripe", "max_body 1KiB\nmax_body 2KiB #!"), []string{"webhook /hook: max_body already specified"}},
		{"webhook repeated insecure", webhook("generic", "insecure\ninsecure #!"), []string{"webhook /hook: insecure already specified"}},
		{"webhook repeated header", webhook("generic", "header A\nheader B #!"), []string{"webhook /hook: header already specified"}},
		{"webhook repeated order_id", webhook("generic", "order_id a\norder_id b #!"), []string{"webhook /hook: order_id already specified"}},
		{"webhook repeated amount", webhook("generic", "amount a\namount b #!"), []string{"webhook /hook: amount already specified"}},
		{"webhook repeated events", webhook("generic", "events a\nevents b #!"), []string{"webhook /hook: events already specified"}},
		{"webhook repeated status_map", webhook("generic", "status_map paid approved\nstatus_map paid pending #!"), []string{"webhook /hook: status_map paid already specified"}},
		{"webhook secret no arg", webhook("stripe", "secret #!"), []string{argCount, "'secret'"}},
		{"webhook tolerance bad", webhook("stripe", "tolerance 5 #!"), []string{`tolerance: bad duration "5"`}},
		{"webhook max_body bad", webhook("stripe", "max_body huge #!"), []string{`max_body "huge"`}},
		{"webhook insecure arg", webhook("generic", "insecure yes #!"), []string{argCount, "'yes'"}},
		{"webhook amount major", webhook("generic", "amount total major #!"), []string{"amount: want '<path> [minor]'"}},
		{"webhook events no arg", webhook("generic", "events #!"), []string{argCount, "'events'"}},
		{"webhook status_map one arg", webhook("generic", "status_map paid #!"), []string{argCount, "'paid'"}},
		{"webhook algorithm two args", webhook("generic", "algorithm sha256 sha1 #!"), []string{argCount, "'sha1'"}},
		{"stripe header", webhook("stripe", "header X-Sig #!"), []string{"webhook /hook: header is only for the generic provider, not stripe"}},
		{"stripe insecure", webhook("stripe", "insecure #!"), []string{"webhook /hook: insecure is only for the generic provider, not stripe"}},
		{"stripe order_id", webhook("stripe", "order_id data.id #!"), []string{"webhook /hook: order_id is only for the generic provider"}},
		{"stripe amount", webhook("stripe", "amount data.total minor #!"), []string{"webhook /hook: amount is only for the generic provider"}},
		{"stripe events", webhook("stripe", "events a b #!"), []string{"webhook /hook: events is only for the generic provider"}},
		{"stripe status_map", webhook("stripe", "status_map a approved #!"), []string{"webhook /hook: status_map is only for the generic provider"}},
		{"shopify signed_payload", webhook("shopify", `signed_payload "{ts}.{body}" #!`), []string{"webhook /hook: signed_payload is only for the generic provider, not shopify"}},
		{"gumroad algorithm", webhook("gumroad", "algorithm sha1 #!"), []string{"webhook /hook: algorithm is only for the generic provider, not gumroad"}},
		{"webhook value one arg", webhook("jvzoo", "value offer_id #!"), []string{argCount}},
		{"webhook repeated value", webhook("jvzoo", "value offer_id 1\nvalue offer_id 2 #!"), []string{"webhook /hook: value offer_id already specified"}},
		{"webhook bad value name", webhook("jvzoo", "value offer-id 1 #!"), []string{`webhook /hook: value name "offer-id"`}},
		{"conversion bad value name", conversion("value {x} 1 #!"), []string{`conversion: value name "{x}"`}},
		{"conversion repeated value", conversion("value goal a\nvalue goal b #!"), []string{"conversion: value goal already specified"}},

		// endpoint <path> { }
		{"endpoint no path", site("endpoint { #!\ninsecure\n}"), []string{argCount, "'endpoint'"}},
		{"endpoint two paths", site("endpoint /a /b { #!\ninsecure\n}"), []string{argCount, "'/b'"}},
		{"endpoint without auth", endpoint("event lead"), []string{"endpoint /in: no token and no allow", "say insecure"}},
		{"endpoint bare", site("endpoint /in #!"), []string{"endpoint /in: no token and no allow"}},
		{"endpoint insecure with token", endpoint("insecure\ntoken {env.T}"), []string{"endpoint /in: insecure with a token or an allowlist"}},
		{"endpoint insecure with allow", endpoint("allow 10.0.0.0/8\ninsecure"), []string{"insecure with a token or an allowlist"}},
		{"endpoint unknown", endpointAt("tokn x #!"), []string{"endpoint /in: unrecognized option 'tokn'"}},
		{"endpoint token no arg", endpointAt("token #!"), []string{"endpoint /in: token: want '<secret> [query <name> | header <name> | path]'"}},
		{"endpoint token bad place", endpointAt("token {env.U} cookie x #!"), []string{"endpoint /in: token: want"}},
		{"endpoint token header without name", endpointAt("token {env.U} header #!"), []string{"endpoint /in: token: want"}},
		{"endpoint token path with name", endpointAt("token {env.U} path x #!"), []string{"endpoint /in: token: want"}},
		{"endpoint allow no arg", endpointAt("allow #!"), []string{argCount, "'allow'"}},
		{"endpoint allow bad", endpointAt("allow 10.0.0.0/33 #!"), []string{`endpoint /in: allow "10.0.0.0/33"`}},
		{"endpoint allow word", endpointAt("allow intranet #!"), []string{`allow "intranet"`}},
		{"endpoint param one arg", endpointAt("param order_id #!"), []string{"endpoint /in: param: want '<field> <parameter name...>'"}},
		{"endpoint repeated param", endpointAt("param order_id a\nparam order_id b #!"), []string{"endpoint /in: param order_id already specified"}},
		{"endpoint repeated event", endpointAt("event a\nevent b #!"), []string{"endpoint /in: event already specified"}},
		{"endpoint repeated relay", endpointAt("relay a\nrelay b #!"), []string{"endpoint /in: relay already specified"}},
		{"endpoint repeated insecure", site("endpoint /in {\ninsecure\ninsecure #!\n}"), []string{"endpoint /in: insecure already specified"}},
		{"endpoint relay two args", endpointAt("relay a b #!"), []string{argCount, "'b'"}},
		{"endpoint max_body bad", endpointAt("max_body lots #!"), []string{`max_body "lots"`}},
		{"endpoint value bad name", endpointAt("value a.b 1 #!"), []string{`endpoint /in: value name "a.b"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := markedLine(t, tc.caddyfile)
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.caddyfile), nil)
			if err == nil {
				t.Fatalf("adapted without error:\n%s", tc.caddyfile)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			at := regexp.MustCompile(fmt.Sprintf(`\bCaddyfile:%d\b`, line))
			if !at.MatchString(msg) {
				t.Errorf("error %q does not name line Caddyfile:%d", msg, line)
			}
		})
	}
}

// TestCaddyfileValid checks that the happy path of each helper above adapts,
// so the error cases fail for the reason they name and not for the frame.
func TestCaddyfileValid(t *testing.T) {
	for name, caddyfile := range map[string]string{
		"global":              global("storage :memory:"),
		"cookie":              cookie("name _pb"),
		"delivery":            delivery("lease_margin 1m\ntimeout 10s\npause_after 0"),
		"network":             network("click_param c\nurl https://x\nnid 1\nparam event_id_lead 2\nheader X-A a\nheader X-B b"),
		"site":                site("decorate buy.stripe.com stripe\ndecorate h param ref"),
		"conversion":          conversion("match path /x\nresponse status 2xx\namount {query.t} minor\nmax_body 1GiB"),
		"from json":           fromJSON("order_id a\namount b minor"),
		"from header":         fromHeader("order_id A\namount B minor"),
		"stripe":              webhook("stripe", "secret next\ntolerance 1m\nsession_field ref\nevent sale\nmax_body 1KiB\nvalue offer_id 7\nvalue goal g"),
		"endpoint":            endpointAt("token {env.U} header X-Secret\ntoken {env.V} query secret\ntoken {env.W} path\nallow 10.0.0.0/8 ::1 private_ranges\nallow 192.0.2.1\nparam order_id txid\nparam click_id a b\nvalue a 1\nvalue b 2\nrelay n\nmax_body 1KiB"),
		"endpoint insecure":   site("endpoint /in {\ninsecure\n}"),
		"endpoint allow only": site("endpoint /in {\nallow 127.0.0.1\n}"),
		"conversion values":   conversion("match path /x\norder_id x\nvalue a 1\nvalue b {query.b}"),
		"generic":             webhook("generic", "insecure\nstatus_map a approved\nstatus_map b pending\nsecret x\nsecret y"),
		"empty block":         global("") + site(""),
		// Values from the environment are checked at load, where it is
		// known: here they stand in for any value.
		"preset values from the environment":        global("network meta {\npreset meta_capi\npixel_id {env.PB_UNSET_PIXEL}\naccess_token {env.PB_UNSET_TOKEN}\n}"),
		"preset value of a form the stand-in lacks": global("network posthog {\nclick_param c\npreset posthog\napi_key k\nregion {env.PB_UNSET_REGION}\n}"),
		"template from the environment":             network("click_param c\nurl {env.PB_UNSET_URL}\nheader X-Key {env.PB_UNSET_KEY}"),
		"webhook provider aliases":                  site("webhook /a Stripe s\nwebhook /b woo s\nwebhook /c lemon-squeezy s\nwebhook /d generic {\ninsecure\n}"),
		"storage in a directory":                    global("storage ./var/postback"),
		"several events and match sets":             site("conversion purchase ftd {\nmatch path /a\nmatch {\npath /b\n}\norder_id x\n}"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil); err != nil {
				t.Errorf("%v\n%s", err, caddyfile)
			}
		})
	}
}

// TestSuggestedNamesAreOptions checks that every name an error may suggest
// is an option the parser takes: the lists of names and the parsers'
// switches must not drift apart.
func TestSuggestedNamesAreOptions(t *testing.T) {
	frames := map[string]struct {
		names []string
		frame func(line string) string
	}{
		"global":   {pbcaddyfile.GlobalOptions, func(l string) string { return global(l) }},
		"cookie":   {pbcaddyfile.CookieOptions, cookie},
		"delivery": {pbcaddyfile.DeliveryOptions, delivery},
		"network":  {pbcaddyfile.NetworkOptions, network},
		"badger":   {pbcaddyfile.BadgerOptions, func(l string) string { return global("storage badger {\n" + l + "\n}") }},
		"postgres": {pbcaddyfile.PostgresOptions, func(l string) string { return global("storage postgres postgres://db/x {\n" + l + "\n}") }},
	}
	for block, f := range frames {
		for _, name := range f.names {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(f.frame(name+" 1")), nil)
			if err != nil && strings.Contains(err.Error(), "unrecognized") {
				t.Errorf("%s option %s is suggested but not taken: %v", block, name, err)
			}
		}
	}
}
