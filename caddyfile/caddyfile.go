// Package caddyfile is caddy-postback's Caddyfile glue: the global option
// `postback { … }` that configures the postback app, and the site directive
// `postback { … }` that configures the http.handlers.postback handler.
package caddyfile

import (
	"errors"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/suggest"
	"github.com/caddy-postback/caddy-postback/internal/webhook"
	"github.com/caddy-postback/caddy-postback/module"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("postback", parseGlobal)
	httpcaddyfile.RegisterHandlerDirective("postback", parseHandler)
	// Right inside encode: the handler sees the uncompressed output of the
	// handlers after it, and users need no order line.
	httpcaddyfile.RegisterDirectiveOrder("postback", httpcaddyfile.After, "encode")
}

// Option names, for the nearest one to suggest when a name is not known.
var (
	globalOptions = []string{"storage", "attribution", "max_click_id_length", "max_touchpoints", "consent", "truncate_ip",
		"session_daily_limit", "inspection_budget", "storage_timeout", "disable_metrics", "cookie", "delivery", "network"}
	cookieOptions   = []string{"name", "domain", "secret", "lifetime"}
	deliveryOptions = []string{"timeout", "retry_base", "retry_max", "pause_after", "pause_base", "log_retention",
		"dead_retention", "conversion_retention", "lease_margin"}
)

// parseGlobal parses the global option:
//
//	postback {
//		storage <dir>|:memory:
//		storage badger [<dir>|:memory:] {
//			min_free <size>
//			sync_writes
//			mem_table_size <size>
//		}
//		storage postgres <dsn> { … }
//		attribution last_click|first_click
//		max_click_id_length <n>
//		max_touchpoints <n>
//		consent {
//			tcf [<cookie>]
//			purpose <name> <cookie> <regexp>
//			ad_user_data <purpose...>
//			ad_personalization <purpose...>
//			require <purpose...>
//		}
//		truncate_ip
//		session_daily_limit <n>|off
//		inspection_budget <size>
//		storage_timeout <duration>
//		disable_metrics
//		cookie {
//			name <name>
//			domain <domain>
//			secret <secret>
//			lifetime <duration>
//		}
//		delivery {
//			timeout <duration>
//			retry_base <duration>
//			retry_max <duration>
//			pause_after <n>
//			pause_base <duration>
//			log_retention <duration>
//			dead_retention <duration>
//			conversion_retention <duration>
//			lease_margin <duration>
//		}
//		network <name> {
//			preset <preset>
//			click_param <param...>
//			click_cookie <name> [<json field>]
//			consent <purpose...>
//			role affiliate|platform
//			window <duration>
//			url <template>
//			method <method>
//			body <template> [form|json]
//			header <name> <template>
//			param <key> <value>
//			<preset account value> <value>
//			success_body <regexp>
//			events <event...>
//			max_age <duration>
//			concurrency <n>
//			rebill_period <duration>
//		}
//	}
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	d.Next() // option name
	if existing != nil {
		return nil, d.Err("postback global option given twice; merge the blocks")
	}
	app := new(module.App)
	var warnings []caddyconfig.Warning
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name != "network" {
			if seen[name] {
				return nil, d.Errf("%s already specified", name)
			}
			seen[name] = true
		}
		var err error
		switch name {
		case "storage":
			app.StorageRaw, err = parseStorage(d, &warnings)
		case "attribution":
			err = oneArg(d, &app.Attribution)
		case "max_click_id_length":
			err = intArg(d, &app.MaxClickIDLength)
		case "max_touchpoints":
			err = intArg(d, &app.MaxTouchpoints)
		case "consent":
			app.Consent, err = parseConsent(d)
		case "consent_cookie", "consent_value":
			return nil, d.Errf("%s is replaced by consent { purpose <name> <cookie> <regexp> ; require <name> }", name)
		case "truncate_ip":
			err = flag(d, &app.TruncateIP)
		case "session_daily_limit":
			if d.NextArg() && d.Val() == "off" && !d.NextArg() {
				app.SessionDailyLimit = -1
				break
			}
			d.Prev()
			err = intArg(d, &app.SessionDailyLimit)
		case "inspection_budget":
			err = sizeArg(d, &app.InspectionBudget, storageLimit)
		case "storage_timeout":
			err = durationArg(d, &app.StorageTimeout)
		case "disable_metrics":
			err = flag(d, &app.DisableMetrics)
		case "cookie":
			app.Cookie, err = parseCookie(d)
		case "delivery":
			app.Delivery, err = parseDelivery(d)
		case "network":
			var nname string
			var n *module.Network
			tok := d.Token()
			nname, n, err = parseNetwork(d)
			if err == nil {
				if app.Networks == nil {
					app.Networks = map[string]*module.Network{}
				}
				if _, dup := app.Networks[nname]; dup {
					return nil, errAt(tok, "network %s already specified", nname)
				}
				app.Networks[nname] = n
			}
		default:
			return nil, d.Errf("unrecognized postback option '%s'%s", name, suggest.DidYouMean(name, globalOptions))
		}
		if err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "postback", Value: caddyconfig.JSON(app, &warnings)}, nil
}

// parseConsent parses the consent block. A requirement's purposes are
// purpose names, TCF purpose numbers or vendor:<id>.
func parseConsent(d *caddyfile.Dispenser) (*module.Consent, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := new(module.Consent)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name != "purpose" {
			if seen[name] {
				return nil, d.Errf("consent %s already specified", name)
			}
			seen[name] = true
		}
		list := func(dst *[]string) error {
			*dst = d.RemainingArgs()
			if len(*dst) == 0 {
				return d.ArgErr()
			}
			return nil
		}
		var err error
		switch name {
		case "tcf":
			c.TCF = true
			args := d.RemainingArgs()
			if len(args) > 1 {
				return nil, d.ArgErr()
			}
			if len(args) == 1 {
				c.TCFCookie = args[0]
			}
		case "purpose":
			var p module.ConsentPurpose
			if !d.Args(&p.Name, &p.Cookie, &p.Match) || d.NextArg() {
				return nil, d.ArgErr()
			}
			if _, err := regexp.Compile(p.Match); err != nil {
				return nil, d.Errf("consent purpose %s: bad regular expression %q: %v", p.Name, p.Match, err)
			}
			c.Purposes = append(c.Purposes, &p)
		case "ad_user_data":
			err = list(&c.AdUserData)
		case "ad_personalization":
			err = list(&c.AdPersonalization)
		case "require":
			err = list(&c.Require)
		default:
			return nil, d.Errf("unrecognized consent option '%s'", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func parseCookie(d *caddyfile.Dispenser) (*module.Cookie, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := new(module.Cookie)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("cookie %s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "name":
			err = oneArg(d, &c.Name)
		case "domain":
			err = oneArg(d, &c.Domain)
		case "secret":
			err = oneArg(d, &c.Secret)
		case "lifetime":
			err = durationArg(d, &c.Lifetime)
		default:
			return nil, d.Errf("unrecognized cookie option '%s'%s", name, suggest.DidYouMean(name, cookieOptions))
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func parseDelivery(d *caddyfile.Dispenser) (*module.Delivery, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	dl := new(module.Delivery)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("delivery %s already specified", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "timeout":
			err = durationArg(d, &dl.Timeout)
		case "retry_base":
			err = durationArg(d, &dl.RetryBase)
		case "retry_max":
			err = durationArg(d, &dl.RetryMax)
		case "pause_after":
			err = intArg(d, &dl.PauseAfter)
		case "pause_base":
			err = durationArg(d, &dl.PauseBase)
		case "log_retention":
			err = durationArg(d, &dl.LogRetention)
		case "dead_retention":
			err = durationArg(d, &dl.DeadRetention)
		case "conversion_retention":
			err = durationArg(d, &dl.ConversionRetention)
		case "lease_margin":
			err = durationArg(d, &dl.LeaseMargin)
		default:
			return nil, d.Errf("unrecognized delivery option '%s'%s", name, suggest.DidYouMean(name, deliveryOptions))
		}
		if err != nil {
			return nil, err
		}
	}
	return dl, nil
}

func parseNetwork(d *caddyfile.Dispenser) (string, *module.Network, error) {
	var name string
	netTok := d.Token()
	if !d.Args(&name) {
		return "", nil, d.ArgErr()
	}
	if d.NextArg() {
		return "", nil, d.ArgErr()
	}
	n := new(module.Network)
	seen := map[string]bool{}
	accountParams := map[string]bool{}
	for _, p := range postback.ParamNames() {
		accountParams[p] = true
	}
	// lines are the options' tokens, for errors found once the whole
	// block is read: "url", "body", "preset", "header <name>", and each
	// account value by its name.
	lines := map[string]caddyfile.Token{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if key != "header" && key != "param" && key != "click_cookie" {
			if seen[key] {
				return "", nil, d.Errf("network %s: %s already specified", name, key)
			}
			seen[key] = true
		}
		lines[key] = d.Token()
		var err error
		switch key {
		case "preset":
			err = oneArg(d, &n.Preset)
		case "click_param":
			n.ClickParams = d.RemainingArgs()
			if len(n.ClickParams) == 0 {
				return "", nil, d.ArgErr()
			}
		case "click_cookie":
			c := new(module.ClickCookie)
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return "", nil, d.ArgErr()
			}
			c.Name = args[0]
			if len(args) == 2 {
				c.Field = args[1]
			}
			n.ClickCookies = append(n.ClickCookies, c)
		case "consent":
			n.Consent = d.RemainingArgs()
			if len(n.Consent) == 0 {
				return "", nil, d.ArgErr()
			}
		case "role":
			err = oneArg(d, &n.Role)
		case "window":
			err = durationArg(d, &n.Window)
		case "url":
			err = oneArg(d, &n.URL)
		case "method":
			err = oneArg(d, &n.Method)
		case "body":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return "", nil, d.ArgErr()
			}
			n.Body = args[0]
			if len(args) == 2 {
				n.BodyType = args[1]
			}
		case "header":
			var hname, hval string
			if !d.Args(&hname, &hval) || d.NextArg() {
				return "", nil, d.ArgErr()
			}
			if n.Headers == nil {
				n.Headers = map[string]string{}
			}
			if _, dup := n.Headers[hname]; dup {
				return "", nil, d.Errf("network %s: header %s already specified", name, hname)
			}
			n.Headers[hname] = hval
			lines["header "+hname] = lines[key]
		case "param":
			var k, v string
			if !d.Args(&k, &v) || d.NextArg() {
				return "", nil, d.ArgErr()
			}
			err = setParam(d, n, name, k, v)
			lines[k] = lines[key]
		case "success_body":
			err = oneArg(d, &n.SuccessBody)
		case "events":
			n.Events = d.RemainingArgs()
			if len(n.Events) == 0 {
				return "", nil, d.ArgErr()
			}
		case "max_age":
			err = durationArg(d, &n.MaxAge)
		case "concurrency":
			err = intArg(d, &n.Concurrency)
		case "rebill_period":
			err = durationArg(d, &n.RebillPeriod)
		default:
			if !accountParams[key] {
				return "", nil, d.Errf("network %s: unrecognized option '%s'%s", name, key,
					suggest.DidYouMean(key, append(networkOptions, postback.ParamNames()...)))
			}
			var v string
			if err = oneArg(d, &v); err == nil {
				err = setParam(d, n, name, key, v)
			}
		}
		if err != nil {
			return "", nil, err
		}
	}
	if err := checkNetwork(name, n, netTok, lines); err != nil {
		return "", nil, err
	}
	return name, n, nil
}

// networkOptions are the options of a network block besides the account
// values of presets (postback.ParamNames).
var networkOptions = []string{"preset", "click_param", "click_cookie", "consent", "role", "window", "url", "method",
	"body", "header", "param", "success_body", "events", "max_age", "concurrency", "rebill_period"}

// checkNetwork builds the network's destination as loading will, so that
// an unknown preset, an unknown template token or a missing preset value
// is reported with its line now. {env.*} placeholders stand for a
// stand-in value here; their real values are checked at load, where an
// unset variable is an error that names it, and so is any error that may
// come from a stand-in.
func checkNetwork(name string, n *module.Network, netTok caddyfile.Token, lines map[string]caddyfile.Token) error {
	at := func(key string) caddyfile.Token {
		if tok, ok := lines[key]; ok {
			return tok
		}
		return netTok
	}
	if n.Preset != "" && !slices.Contains(postback.PresetNames(), n.Preset) {
		return errAt(at("preset"), "network %s: %v", name, &postback.UnknownPresetError{Preset: n.Preset})
	}
	standIns, err := n.Check(name)
	if err == nil {
		return nil
	}
	// lineOf returns the line of the first template or value that has,
	// else fallback's.
	lineOf := func(has func(v string) bool, fallback string) caddyfile.Token {
		if has(n.URL) {
			return at("url")
		}
		if has(n.Body) {
			return at("body")
		}
		for _, h := range slices.Sorted(maps.Keys(n.Headers)) {
			if has(n.Headers[h]) {
				return at("header " + h)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(n.Params)) {
			if has(n.Params[k]) {
				return at(k)
			}
		}
		return at(fallback)
	}
	// quoted: the message quotes the template or value (%q).
	quoted := func(v string) bool { return v != "" && strings.Contains(err.Error(), strconv.Quote(v)) }
	var (
		unknownToken *postback.UnknownTokenError
		params       *postback.ParamError
	)
	switch {
	case errors.As(err, &unknownToken):
		return errAt(lineOf(func(v string) bool { return strings.Contains(v, "{"+unknownToken.Token+"}") }, ""), "%v", err)
	case errors.As(err, &params) && len(params.Unknown) > 0:
		return errAt(at(params.Unknown[0]), "%v", err)
	case errors.As(err, &params):
		add := make([]string, len(params.Missing))
		for i, k := range params.Missing {
			add[i] = "`" + k + " <value>`"
		}
		return errAt(at("preset"), "%v; add %s to network %s", err, strings.Join(add, " and "), name)
	case standIns:
		return nil // perhaps the stand-in's; loading checks the real values
	case errors.Is(err, postback.ErrTemplate):
		return errAt(lineOf(quoted, ""), "%v", err)
	case errors.Is(err, postback.ErrPresetConfig):
		return errAt(lineOf(quoted, "preset"), "%v", err)
	}
	return errAt(netTok, "%v", err)
}

func setParam(d *caddyfile.Dispenser, n *module.Network, network, k, v string) error {
	if n.Params == nil {
		n.Params = map[string]string{}
	}
	if _, dup := n.Params[k]; dup {
		return d.Errf("network %s: %s already specified", network, k)
	}
	n.Params[k] = v
	return nil
}

// parseHandler parses the site directive:
//
//	postback {
//		conversion [<event...>] {
//			match <matcher> | match { <matchers> }
//			response { <response matchers> }
//			status approved|pending
//			order_id <placeholder>
//			amount <placeholder> [minor]
//			currency <placeholder>
//			coupon <placeholder>
//			default_currency <code>
//			from ga4 [<event>]
//			from magento
//			from jsonld
//			from json { order_id <path>; amount <path> [minor]; currency <path>; coupon <path> }
//			from regex <pattern> [minor]
//			from header { order_id <name>; amount <name> [minor]; currency <name>; coupon <name> }
//			max_body <size>
//			join_only
//			value <name> <value>
//		}
//		webhook <path> <provider> [<secret...>] [{ … }]
//		endpoint <path> {
//			token <secret> [query <name> | header <name> | path]
//			allow <network...>
//			insecure
//			param <field> <name...>
//			event <name>
//			default_currency <code>
//			relay <network>
//			value <name> <value>
//			max_body <size>
//		}
//		decorate <host> <provider> | decorate <host> param <name>
//	}
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := h.Dispenser
	hd := new(module.Handler)
	d.Next()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "conversion":
			var rule *module.Rule
			rule, err = parseRule(h)
			hd.Conversions = append(hd.Conversions, rule)
		case "webhook":
			var wh *module.Webhook
			wh, err = parseWebhook(d)
			hd.Webhooks = append(hd.Webhooks, wh)
		case "endpoint":
			var ep *module.Endpoint
			ep, err = parseEndpoint(d)
			hd.Endpoints = append(hd.Endpoints, ep)
		case "decorate":
			args := d.RemainingArgs()
			switch {
			case len(args) == 2 && args[1] != "param":
				hd.Decorate = append(hd.Decorate, &module.Decoration{Host: args[0], Provider: args[1]})
			case len(args) == 3 && args[1] == "param":
				hd.Decorate = append(hd.Decorate, &module.Decoration{Host: args[0], Param: args[2]})
			default:
				return nil, d.Errf("decorate: want '<host> <provider>' or '<host> param <name>'")
			}
		default:
			return nil, d.Errf("unrecognized postback subdirective '%s'", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return hd, nil
}

func parseRule(h httpcaddyfile.Helper) (*module.Rule, error) {
	d := h.Dispenser
	rule := new(module.Rule)
	rule.Events = d.RemainingArgs()
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if key != "from" && key != "match" && key != "value" { // several match sets are OR-ed
			if seen[key] {
				return nil, d.Errf("conversion %s already specified", key)
			}
			seen[key] = true
		}
		var err error
		switch key {
		case "match":
			// The nested matcher parser takes both forms: one matcher on
			// the line ("match path /thank-you*") or a block of them.
			tok := d.Token()
			set, perr := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
			if perr != nil {
				return nil, perr
			}
			if len(set) == 0 {
				return nil, errAt(tok, "conversion match: no matcher given (an empty set would match every request)")
			}
			rule.MatcherSetsRaw = append(rule.MatcherSetsRaw, set)
		case "response":
			rm := map[string]caddyhttp.ResponseMatcher{}
			if err := caddyhttp.ParseNamedResponseMatcher(d.NewFromNextSegment(), rm); err != nil {
				return nil, err
			}
			m := rm["response"]
			if m.StatusCode == nil && m.Headers == nil {
				// An empty response matcher would match error pages too.
				return nil, d.Errf("conversion response: no status or header matcher given")
			}
			rule.Response = &m
		case "status":
			err = oneArg(d, &rule.Status)
		case "order_id":
			err = oneArg(d, &rule.OrderID)
		case "amount":
			a := d.RemainingArgs()
			if len(a) == 0 || len(a) > 2 || (len(a) == 2 && a[1] != "minor") {
				return nil, d.Errf("amount: want '<placeholder> [minor]'")
			}
			rule.Amount, rule.AmountMinor = a[0], len(a) == 2
		case "currency":
			err = oneArg(d, &rule.Currency)
		case "coupon":
			err = oneArg(d, &rule.Coupon)
		case "default_currency":
			err = oneArg(d, &rule.DefaultCurrency)
		case "from":
			var src *module.Source
			src, err = parseSource(d)
			rule.From = append(rule.From, src)
		case "max_body":
			var size int64
			err = sizeArg(d, &size, maxBodyLimit)
			rule.MaxBody = int(size)
		case "join_only":
			err = flag(d, &rule.JoinOnly)
		case "value":
			err = valueArg(d, "conversion", &rule.Values)
		default:
			return nil, d.Errf("unrecognized conversion option '%s'", key)
		}
		if err != nil {
			return nil, err
		}
	}
	return rule, nil
}

// errAt is d.Errf for an earlier token: the error names tok's file and line.
func errAt(tok caddyfile.Token, format string, args ...any) error {
	d := caddyfile.NewDispenser([]caddyfile.Token{tok})
	d.Next()
	return d.Errf(format, args...)
}

func parseSource(d *caddyfile.Dispenser) (*module.Source, error) {
	var typ string
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	typ = d.Val()
	s := &module.Source{Type: typ}
	switch typ {
	case "ga4":
		if d.NextArg() {
			s.Event = d.Val()
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	case "magento", "jsonld":
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	case "regex":
		a := d.RemainingArgs()
		if len(a) == 0 || len(a) > 2 || (len(a) == 2 && a[1] != "minor") {
			return nil, d.Errf("from regex: want '<pattern> [minor]'")
		}
		s.Pattern, s.AmountMinor = a[0], len(a) == 2
	case "json", "header":
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		seen := map[string]bool{}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			key := d.Val()
			if seen[key] {
				return nil, d.Errf("from %s: %s already specified", typ, key)
			}
			seen[key] = true
			switch key {
			case "order_id", "amount", "currency", "coupon":
			default:
				return nil, d.Errf("from %s: unrecognized field '%s'", typ, key)
			}
			a := d.RemainingArgs()
			if len(a) == 0 || len(a) > 2 || (len(a) == 2 && (key != "amount" || a[1] != "minor")) {
				return nil, d.ArgErr()
			}
			switch key {
			case "order_id":
				s.OrderID = a[0]
			case "amount":
				s.Amount, s.AmountMinor = a[0], len(a) == 2
			case "currency":
				s.Currency = a[0]
			case "coupon":
				s.Coupon = a[0]
			}
		}
	default:
		return nil, d.Errf("from: unknown source '%s' (want ga4, magento, jsonld, json, regex or header)", typ)
	}
	return s, nil
}

func parseWebhook(d *caddyfile.Dispenser) (*module.Webhook, error) {
	wh := new(module.Webhook)
	if !d.Args(&wh.Path, &wh.Provider) {
		return nil, d.ArgErr()
	}
	if _, ok := webhook.Lookup(wh.Provider); !ok {
		return nil, d.Errf("webhook %s: %v", wh.Path, &webhook.UnknownProviderError{Provider: wh.Provider})
	}
	wh.Secrets = d.RemainingArgs()
	seen := map[string]bool{}
	g := new(module.GenericWebhook)
	generic := false
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if key != "secret" && key != "status_map" && key != "value" {
			if seen[key] {
				return nil, d.Errf("webhook %s: %s already specified", wh.Path, key)
			}
			seen[key] = true
		}
		if genericOnly[key] && wh.Provider != "generic" {
			return nil, d.Errf("webhook %s: %s is only for the generic provider, not %s", wh.Path, key, wh.Provider)
		}
		var err error
		switch key {
		case "secret":
			var s string
			if err = oneArg(d, &s); err == nil {
				wh.Secrets = append(wh.Secrets, s)
			}
		case "tolerance":
			err = durationArg(d, &wh.Tolerance)
		case "session_field":
			err = oneArg(d, &wh.SessionField)
		case "event":
			err = oneArg(d, &wh.Event)
		case "max_body":
			err = sizeArg(d, &wh.MaxBody, maxBodyLimit)
		case "insecure":
			err = flag(d, &wh.Insecure)
		case "value":
			err = valueArg(d, "webhook "+wh.Path, &wh.Values)
		case "header", "algorithm", "encoding", "prefix", "timestamp_header", "signed_payload",
			"order_id", "currency", "event_type", "status", "session", "event_id", "email", "coupon":
			generic = true
			var v string
			if err = oneArg(d, &v); err == nil {
				*genericField(g, key) = v
			}
		case "amount":
			generic = true
			a := d.RemainingArgs()
			if len(a) == 0 || len(a) > 2 || (len(a) == 2 && a[1] != "minor") {
				return nil, d.Errf("amount: want '<path> [minor]'")
			}
			g.Amount, g.AmountMinor = a[0], len(a) == 2
		case "events":
			generic = true
			g.Events = d.RemainingArgs()
			if len(g.Events) == 0 {
				return nil, d.ArgErr()
			}
		case "status_map":
			generic = true
			var raw, to string
			if !d.Args(&raw, &to) || d.NextArg() {
				return nil, d.ArgErr()
			}
			if g.StatusMap == nil {
				g.StatusMap = map[string]string{}
			}
			if _, dup := g.StatusMap[raw]; dup {
				return nil, d.Errf("webhook %s: status_map %s already specified", wh.Path, raw)
			}
			g.StatusMap[raw] = to
		default:
			return nil, d.Errf("webhook %s: unrecognized option '%s'", wh.Path, key)
		}
		if err != nil {
			return nil, err
		}
	}
	if generic {
		wh.Generic = g
	}
	return wh, nil
}

// parseEndpoint parses an endpoint block. An endpoint with neither a
// token nor an allowlist must say insecure: anyone could report
// conversions to it.
func parseEndpoint(d *caddyfile.Dispenser) (*module.Endpoint, error) {
	tok := d.Token()
	ep := new(module.Endpoint)
	if !d.Args(&ep.Path) || d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		switch key {
		case "token", "allow", "param", "value":
		default:
			if seen[key] {
				return nil, d.Errf("endpoint %s: %s already specified", ep.Path, key)
			}
			seen[key] = true
		}
		var err error
		switch key {
		case "token":
			args := d.RemainingArgs()
			t := &module.EndpointToken{}
			switch {
			case len(args) == 1:
			case len(args) == 2 && args[1] == "path":
				t.In = "path"
			case len(args) == 3 && (args[1] == "query" || args[1] == "header"):
				t.In, t.Name = args[1], args[2]
			default:
				return nil, d.Errf("endpoint %s: token: want '<secret> [query <name> | header <name> | path]'", ep.Path)
			}
			t.Secret = args[0]
			ep.Tokens = append(ep.Tokens, t)
		case "allow":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			for _, a := range args {
				if a == "private_ranges" {
					continue
				}
				if _, err := netip.ParsePrefix(a); err != nil {
					if _, err := netip.ParseAddr(a); err != nil {
						return nil, d.Errf("endpoint %s: allow %q: want a network such as 10.0.0.0/8, an address, or private_ranges", ep.Path, a)
					}
				}
			}
			ep.Allow = append(ep.Allow, args...)
		case "insecure":
			err = flag(d, &ep.Insecure)
		case "param":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return nil, d.Errf("endpoint %s: param: want '<field> <parameter name...>'", ep.Path)
			}
			if ep.Params == nil {
				ep.Params = map[string][]string{}
			}
			if _, dup := ep.Params[args[0]]; dup {
				return nil, d.Errf("endpoint %s: param %s already specified", ep.Path, args[0])
			}
			ep.Params[args[0]] = args[1:]
		case "event":
			err = oneArg(d, &ep.Event)
		case "default_currency":
			err = oneArg(d, &ep.DefaultCurrency)
		case "relay":
			err = oneArg(d, &ep.Relay)
		case "value":
			err = valueArg(d, "endpoint "+ep.Path, &ep.Values)
		case "max_body":
			err = sizeArg(d, &ep.MaxBody, maxBodyLimit)
		default:
			return nil, d.Errf("endpoint %s: unrecognized option '%s'", ep.Path, key)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(ep.Tokens) == 0 && len(ep.Allow) == 0 && !ep.Insecure {
		return nil, errAt(tok, "endpoint %s: no token and no allow: anyone could report conversions; add a token or an allowlist, or say insecure", ep.Path)
	}
	if ep.Insecure && (len(ep.Tokens) > 0 || len(ep.Allow) > 0) {
		return nil, errAt(tok, "endpoint %s: insecure with a token or an allowlist: drop one of them", ep.Path)
	}
	return ep, nil
}

// valueArg reads "value <name> <value>" into vals; what names the block.
func valueArg(d *caddyfile.Dispenser, what string, vals *map[string]string) error {
	var name, v string
	if !d.Args(&name, &v) || d.NextArg() {
		return d.ArgErr()
	}
	if !order.ValidValueName(name) {
		return d.Errf("%s: value name %q: use letters, digits and '_' (the template token is {value.<name>})", what, name)
	}
	if *vals == nil {
		*vals = map[string]string{}
	}
	if _, dup := (*vals)[name]; dup {
		return d.Errf("%s: value %s already specified", what, name)
	}
	(*vals)[name] = v
	return nil
}

// genericOnly are the webhook options only the generic provider takes.
var genericOnly = map[string]bool{
	"insecure": true, "header": true, "algorithm": true, "encoding": true, "prefix": true,
	"timestamp_header": true, "signed_payload": true, "order_id": true, "amount": true,
	"currency": true, "event_type": true, "events": true, "status": true, "status_map": true,
	"session": true, "event_id": true, "email": true, "coupon": true,
}

func genericField(g *module.GenericWebhook, key string) *string {
	switch key {
	case "header":
		return &g.Header
	case "algorithm":
		return &g.Algorithm
	case "encoding":
		return &g.Encoding
	case "prefix":
		return &g.Prefix
	case "timestamp_header":
		return &g.TimestampHeader
	case "signed_payload":
		return &g.SignedPayload
	case "order_id":
		return &g.OrderID
	case "currency":
		return &g.Currency
	case "event_type":
		return &g.EventType
	case "status":
		return &g.Status
	case "session":
		return &g.Session
	case "event_id":
		return &g.EventID
	case "email":
		return &g.Email
	}
	return &g.Coupon
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func flag(d *caddyfile.Dispenser, dst *bool) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}

// sizeArg reads one size argument such as 1MiB or 512KB, at most limit.
func sizeArg(d *caddyfile.Dispenser, dst *int64, limit uint64) error {
	name := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	size, err := humanize.ParseBytes(v)
	if err != nil || size > limit {
		return d.Errf("%s %q: want a size such as 1MiB or 256MB, at most %s", name, v, humanize.IBytes(limit))
	}
	*dst = int64(size)
	return nil
}

// Size limits of the size options.
const (
	maxBodyLimit = 1 << 30
	storageLimit = 1 << 40
)

func intArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return d.Errf("%s: want a whole number, got %q", name, s)
	}
	*dst = n
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: bad duration %q: %v", name, s, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}
