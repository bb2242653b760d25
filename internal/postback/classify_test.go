package postback

import "testing"

// mustNew builds a destination with the fixtures' clock unless cfg sets
// one.
func mustNew(t testing.TB, cfg Config) Destination {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixNow
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestClassify(t *testing.T) {
	generic := mustNew(t, Config{URL: "https://trk.example.com/?cid={click_id}"})
	withPattern := mustNew(t, Config{URL: "https://trk.example.com/?cid={click_id}", SuccessBody: `^OK`})
	tune := mustNew(t, Config{Preset: "tune", Params: map[string]string{"domain": "n.go2cloud.org"}})
	tiktok := mustNew(t, Config{Preset: "tiktok", Params: map[string]string{"pixel_code": "C", "access_token": "t"}})
	meta := mustNew(t, Config{Preset: "meta_capi", Params: map[string]string{"pixel_id": "1", "access_token": "t"}})
	ga4 := mustNew(t, Config{Preset: "ga4_mp", Params: map[string]string{"measurement_id": "G", "api_secret": "s"}})
	keitaro := mustNew(t, Config{Preset: "keitaro", Params: map[string]string{"domain": "k.example.com", "key": "k", "return": "OK"}})
	impact := mustNew(t, Config{Preset: "impact", Params: map[string]string{"account_sid": "IR1", "auth_token": "t", "campaign_id": "1", "event_type_id": "2"}})
	microsoft := mustNew(t, Config{Preset: "microsoft_ads", Params: map[string]string{"tag_id": "1", "access_token": "t"}})
	pinterest := mustNew(t, Config{Preset: "pinterest", Params: map[string]string{"ad_account_id": "1", "access_token": "t"}})
	snapchat := mustNew(t, Config{Preset: "snapchat", Params: map[string]string{"pixel_id": "p", "access_token": "t"}})
	reddit := mustNew(t, Config{Preset: "reddit", Params: map[string]string{"ad_account_id": "a", "access_token": "t"}})
	plausible := mustNew(t, Config{Preset: "plausible", Params: map[string]string{"site": "s.example.com"}})
	firstpromoter := mustNew(t, Config{Preset: "firstpromoter", Params: map[string]string{"api_key": "k", "account_id": "a"}})
	tapfiliate := mustNew(t, Config{Preset: "tapfiliate", Params: map[string]string{"api_key": "k"}})
	rewardful := mustNew(t, Config{Preset: "rewardful", Params: map[string]string{"api_secret": "s"}})
	google := mustNew(t, Config{Preset: "google_ads", Params: googleAdsGoldenParams()})

	for _, tc := range []struct {
		name   string
		d      Destination
		status int
		body   string
		want   Outcome
	}{
		{"200", generic, 200, "", Delivered},
		{"204", generic, 204, "", Delivered},
		{"302 is not success", generic, 302, "", Reject},
		{"408", generic, 408, "", Retry},
		{"425", generic, 425, "", Retry},
		{"429", generic, 429, "", Retry},
		{"500", generic, 500, "", Retry},
		{"502", generic, 502, "", Retry},
		{"503", generic, 503, "", Retry},
		{"400", generic, 400, "", Reject},
		{"401", generic, 401, "", Reject},
		{"404", generic, 404, "", Reject},
		{"pattern matches", withPattern, 200, "OK thanks", Delivered},
		{"pattern misses", withPattern, 200, "error", Reject},
		{"pattern ignored on 503", withPattern, 503, "OK", Retry},

		{"tune success", tune, 200, "success=true;", Delivered},
		{"tune success=false", tune, 200, "success=false; err_msg=Invalid Trans. ID #1027c887059b47b.;", Reject},
		{"tune empty 200", tune, 200, "", Reject},
		{"tune 500", tune, 500, "", Retry},
		{"tune 429", tune, 429, "success=false;", Retry},

		{"tiktok code 0", tiktok, 200, `{"code":0,"message":"OK","request_id":"r","data":{}}`, Delivered},
		{"tiktok code 40002", tiktok, 200, `{"code":40002,"message":"invalid param"}`, Reject},
		{"tiktok no code", tiktok, 200, `{"message":"OK"}`, Reject},
		{"tiktok html 200", tiktok, 200, `<html>gateway</html>`, Reject},
		{"tiktok 429", tiktok, 429, `{"code":0}`, Retry},
		{"tiktok 503", tiktok, 503, ``, Retry},

		{"meta 200", meta, 200, `{"events_received":1,"messages":[],"fbtrace_id":"x"}`, Delivered},
		{"meta 400 invalid parameter", meta, 400, `{"error":{"message":"Invalid parameter","code":100}}`, Reject},
		{"meta 400 too many calls", meta, 400, `{"error":{"message":"(#4) Application request limit reached","code":4}}`, Retry},
		{"meta 400 user too many calls", meta, 400, `{"error":{"message":"x","code":17}}`, Retry},
		{"meta 500 service", meta, 500, `{"error":{"message":"x","code":2}}`, Retry},
		{"meta 401 token", meta, 401, `{"error":{"message":"Invalid OAuth access token","code":190}}`, Reject},
		{"meta 429", meta, 429, ``, Retry},
		{"meta 404", meta, 404, `not json`, Reject},

		{"ga4 204", ga4, 204, "", Delivered},
		{"ga4 debug clean", ga4, 200, `{"validationMessages":[]}`, Delivered},
		{"ga4 debug message", ga4, 200, `{"validationMessages":[{"fieldPath":"events","description":"Event at index: [0] has invalid name [_badEventName]. Names must start with an alphabetic character.","validationCode":"NAME_INVALID"}]}`, Reject},
		{"ga4 500", ga4, 500, "", Retry},

		{"keitaro return matches", keitaro, 200, "OK\n", Delivered},
		{"keitaro return differs", keitaro, 200, "error", Reject},
		{"keitaro 503", keitaro, 503, "", Retry},

		{"impact 200", impact, 200, `{"Status":"QUEUED"}`, Delivered},
		{"impact 400", impact, 400, `{"Message":"bad"}`, Reject},
		{"impact 503", impact, 503, ``, Retry},

		{"google row accepted", google, 200, `{"results":[{"gclid":"x"}],"jobId":"1"}`, Delivered},
		{"google row rejected", google, 200, `{"partialFailureError":{"code":3,"details":[{"errors":[{"errorCode":{"conversionUploadError":"EXPIRED_EVENT"},"message":"too old"}]}]}}`, Reject},
		{"google several codes, one permanent", google, 200, `{"partialFailureError":{"code":3,"details":[{"errors":[{"errorCode":{"conversionUploadError":"TOO_RECENT_EVENT"}},{"errorCode":{"conversionUploadError":"INVALID_GCLID"}}]}]}}`, Reject},
		{"google conversion action too new", google, 200, `{"partialFailureError":{"code":3,"details":[{"errors":[{"errorCode":{"conversionUploadError":"TOO_RECENT_CONVERSION_ACTION"}}]}]}}`, Retry},
		{"google duplicate click", google, 200, `{"partialFailureError":{"code":3,"details":[{"errors":[{"errorCode":{"conversionUploadError":"CLICK_CONVERSION_ALREADY_EXISTS"}}]}]}}`, Delivered},
		{"google html 200", google, 200, `<html></html>`, Reject},
		{"google 500", google, 500, `{"error":{"code":500,"status":"INTERNAL"}}`, Retry},
		{"google 400", google, 400, `{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT"}}`, Reject},

		{"microsoft received", microsoft, 200, `{"eventsReceived":1}`, Delivered},
		{"microsoft error beside 200", microsoft, 200, `{"eventsReceived":0,"error":{"code":"InvalidEvents","details":[{"index":0,"errorMessage":"bad"}]}}`, Reject},
		{"microsoft 503", microsoft, 503, ``, Retry},

		{"pinterest processed", pinterest, 200, `{"num_events_received":1,"num_events_processed":1,"events":[{"status":"processed"}]}`, Delivered},
		{"pinterest failed beside 200", pinterest, 200, `{"num_events_received":1,"num_events_processed":0,"events":[{"status":"failed","error_message":"bad email"}]}`, Reject},
		{"pinterest empty 200", pinterest, 200, `{}`, Reject},
		{"pinterest 429", pinterest, 429, `{"code":8,"message":"rate limit"}`, Retry},

		{"snapchat valid", snapchat, 200, `{"status":"VALID","reason":"Events have been processed successfully."}`, Delivered},
		{"snapchat invalid beside 200", snapchat, 200, `{"status":"INVALID","reason":"missing event_time"}`, Reject},
		{"snapchat 500", snapchat, 500, ``, Retry},

		{"reddit 200", reddit, 200, `{"message":"Successfully processed 1 conversion events."}`, Delivered},
		{"reddit 400", reddit, 400, `{"message":"invalid event_at"}`, Reject},

		{"plausible 202", plausible, 202, `ok`, Delivered},
		{"plausible 400", plausible, 400, `{"errors":{}}`, Reject},

		{"firstpromoter 200", firstpromoter, 200, `{"id":1}`, Delivered},
		{"firstpromoter duplicate", firstpromoter, 409, `{"message":"already exists"}`, Delivered},
		{"firstpromoter no referral", firstpromoter, 404, `{"message":"Referral not found","code":"not_found"}`, Reject},
		{"firstpromoter 500", firstpromoter, 500, ``, Retry},

		{"tapfiliate 201", tapfiliate, 201, `{"id":"cv_1"}`, Delivered},
		{"tapfiliate 422", tapfiliate, 422, `{"message":"no affiliate found"}`, Reject},

		{"rewardful 200", rewardful, 200, `{"id":"s1"}`, Delivered},
		{"rewardful 422", rewardful, 422, `{"error":"invalid"}`, Reject},
		{"rewardful 429", rewardful, 429, ``, Retry},
	} {
		got, reason := tc.d.Classify(tc.status, nil, []byte(tc.body))
		if got != tc.want {
			t.Errorf("%s: Classify(%d, %q) = %v (%s), want %v", tc.name, tc.status, tc.body, got, reason, tc.want)
		}
		if got == Reject && tc.status/100 == 2 && reason == "" {
			t.Errorf("%s: a rejected 2xx gives no reason", tc.name)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Delivered: "delivered", Retry: "retry", Reject: "rejected", Outcome(9): "unknown"} {
		if o.String() != want {
			t.Errorf("%d.String() = %s, want %s", o, o.String(), want)
		}
	}
}
