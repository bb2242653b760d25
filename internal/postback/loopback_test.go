package postback

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// apiStub is a real HTTP server standing in for a platform's API: it
// records what it receives and answers what the test sets.
type apiStub struct {
	srv *httptest.Server

	mu     sync.Mutex
	status int
	body   string
	got    []stubRequest
}

type stubRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

func newAPIStub(t *testing.T) *apiStub {
	s := &apiStub{status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, stubRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *apiStub) answer(status int, body string) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func (s *apiStub) last(t *testing.T) stubRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		t.Fatal("the API received nothing")
	}
	return s.got[len(s.got)-1]
}

func (s *apiStub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// deliver does what the dispatcher does with a destination: renders the
// request, sends it over real HTTP, and classifies the answer.
func deliver(t *testing.T, d Destination, c *record.Postback) (Outcome, string) {
	t.Helper()
	r, err := d.Render(context.Background(), c)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	req, err := http.NewRequest(r.Method, r.URL, strings.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return d.Classify(resp.StatusCode, resp.Header, body)
}

// loopbackCase is one answer of a platform and what it must mean.
type loopbackCase struct {
	name    string
	status  int
	body    string
	want    Outcome
	reason  string // a substring of the reason, when it must say something
	conv    func() *record.Postback
	request func(t *testing.T, got stubRequest)
}

func runLoopback(t *testing.T, cfg func(base string) Config, conv func() *record.Postback, cases []loopbackCase) {
	t.Helper()
	api := newAPIStub(t)
	c := cfg(api.srv.URL)
	if c.Now == nil {
		c.Now = fixNow
	}
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api.answer(tc.status, tc.body)
			cv := conv
			if tc.conv != nil {
				cv = tc.conv
			}
			got, reason := deliver(t, d, cv())
			if got != tc.want {
				t.Fatalf("outcome %v (%s), want %v", got, reason, tc.want)
			}
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q, want it to say %q", reason, tc.reason)
			}
			if tc.request != nil {
				tc.request(t, api.last(t))
			}
		})
	}
}

// jsonBody decodes a received JSON body.
func jsonBody(t *testing.T, r stubRequest) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.Body)
	}
	return v
}

func TestLoopbackMicrosoftAds(t *testing.T) {
	runLoopback(t, func(base string) Config {
		return Config{Preset: "microsoft_ads", URL: base, Params: map[string]string{"tag_id": "343123456", "access_token": "uet-token"}}
	}, func() *record.Postback { return fixture("microsoft", "msclkid", "f894f652ea334e739002f7167ab8f8e3") }, []loopbackCase{
		{name: "received", status: 200, body: `{"eventsReceived":1,"traceId":"t-1"}`, want: Delivered,
			request: func(t *testing.T, r stubRequest) {
				if r.Path != "/v1/343123456/events" || r.Header.Get("Authorization") != "Bearer uet-token" {
					t.Errorf("path %s auth %q", r.Path, r.Header.Get("Authorization"))
				}
				ev := jsonBody(t, r)["data"].([]any)[0].(map[string]any)
				if ev["userData"].(map[string]any)["msclkid"] != "f894f652ea334e739002f7167ab8f8e3" {
					t.Errorf("event %v", ev)
				}
			}},
		{name: "validation error beside a 200", status: 200,
			body: `{"eventsReceived":0,"error":{"code":"InvalidEvents","message":"Some events are invalid","details":[{"index":0,"propertyName":"eventTime","errorMessage":"Event time is too old"}]}}`,
			want: Reject, reason: "eventTime: Event time is too old"},
		{name: "token refused", status: 401, body: `{"error":{"code":"Unauthorized","message":"Invalid token"}}`, want: Reject, reason: "Invalid token"},
		{name: "throttled", status: 429, body: ``, want: Retry},
	})
}

func TestLoopbackPinterest(t *testing.T) {
	conv := func() *record.Postback {
		return fixture("pinterest", "epik", "dj0yJnU9Q2ZKTnRrVjNFQWdEZjBqbUpfNU5tTjZsbDY")
	}
	runLoopback(t, func(base string) Config {
		return Config{Preset: "pinterest", URL: base, Params: map[string]string{"ad_account_id": "549757463328", "access_token": "pina"}}
	}, conv, []loopbackCase{
		{name: "processed", status: 200, body: `{"num_events_received":1,"num_events_processed":1,"events":[{"status":"processed","error_message":null,"warning_message":null}]}`,
			want: Delivered, request: func(t *testing.T, r stubRequest) {
				if r.Path != "/v5/ad_accounts/549757463328/events" || r.RawQuery != "" || r.Header.Get("Authorization") != "Bearer pina" {
					t.Errorf("%s?%s auth %q", r.Path, r.RawQuery, r.Header.Get("Authorization"))
				}
			}},
		{name: "failed beside a 200", status: 200,
			body: `{"num_events_received":1,"num_events_processed":0,"events":[{"status":"failed","error_message":"event_time is too old"}]}`,
			want: Reject, reason: "event_time is too old"},
		{name: "422", status: 422, body: `{"code":2,"message":"Not all events were successfully processed.","details":{}}`, want: Reject, reason: "Not all events"},
		{name: "test fire", status: 200, body: `{"num_events_received":1,"num_events_processed":1,"events":[{"status":"processed"}]}`, want: Delivered,
			conv: func() *record.Postback { c := conv(); c.Test = true; return c },
			request: func(t *testing.T, r stubRequest) {
				if r.RawQuery != "test=true" {
					t.Errorf("query %q", r.RawQuery)
				}
			}},
	})
}

func TestLoopbackSnapchat(t *testing.T) {
	conv := func() *record.Postback { return fixture("snapchat", "ScCid", "a1b2c3d4") }
	runLoopback(t, func(base string) Config {
		return Config{Preset: "snapchat", URL: base, Params: map[string]string{"pixel_id": "px1", "access_token": "snap-token"}}
	}, conv, []loopbackCase{
		{name: "valid", status: 200, body: `{"status":"VALID","reason":"Events have been processed successfully."}`, want: Delivered,
			request: func(t *testing.T, r stubRequest) {
				if r.Path != "/v3/px1/events" || r.RawQuery != "access_token=snap-token" {
					t.Errorf("%s?%s", r.Path, r.RawQuery)
				}
			}},
		{name: "invalid beside a 200", status: 200, body: `{"status":"INVALID","reason":"event_time is out of range"}`, want: Reject, reason: "event_time is out of range"},
		{name: "bad token", status: 401, body: `{"status":"FAILED","reason":"Unauthorized"}`, want: Reject, reason: "Unauthorized"},
		{name: "test fire validates", status: 200, body: `{"status":"VALID"}`, want: Delivered,
			conv: func() *record.Postback { c := conv(); c.Test = true; return c },
			request: func(t *testing.T, r stubRequest) {
				if r.Path != "/v3/px1/events/validate" {
					t.Errorf("path %s", r.Path)
				}
			}},
	})
}

func TestLoopbackReddit(t *testing.T) {
	conv := func() *record.Postback { return fixture("reddit", "rdt_cid", "4875629185693457012") }
	runLoopback(t, func(base string) Config {
		return Config{Preset: "reddit", URL: base, Params: map[string]string{"ad_account_id": "t2_abc", "access_token": "rdt"}}
	}, conv, []loopbackCase{
		{name: "processed", status: 200, body: `{"message":"Successfully processed 1 conversion events."}`, want: Delivered,
			request: func(t *testing.T, r stubRequest) {
				if r.Path != "/api/v2.0/conversions/events/t2_abc" || !strings.HasPrefix(r.Header.Get("User-Agent"), "caddy-postback/") {
					t.Errorf("path %s user agent %q", r.Path, r.Header.Get("User-Agent"))
				}
				if jsonBody(t, r)["test_mode"] != false {
					t.Error("a real conversion sent in test mode")
				}
			}},
		{name: "invalid", status: 400, body: `{"message":"invalid click_id"}`, want: Reject, reason: "invalid click_id"},
		{name: "test fire", status: 200, body: `{}`, want: Delivered, conv: func() *record.Postback { c := conv(); c.Test = true; return c },
			request: func(t *testing.T, r stubRequest) {
				if jsonBody(t, r)["test_mode"] != true {
					t.Error("test fire without test_mode")
				}
			}},
	})
}

func TestLoopbackAnalytics(t *testing.T) {
	conv := func() *record.Postback { return fixture("meta", "fbclid", fixFbclid) }
	t.Run("posthog", func(t *testing.T) {
		runLoopback(t, func(base string) Config {
			return Config{Preset: "posthog", URL: base, Params: map[string]string{"api_key": "phc_x"}}
		}, conv, []loopbackCase{
			{name: "captured", status: 200, body: `{"status":"Ok"}`, want: Delivered, request: func(t *testing.T, r stubRequest) {
				v := jsonBody(t, r)
				if r.Path != "/i/v0/e/" || v["api_key"] != "phc_x" || v["event"] != "purchase" {
					t.Errorf("%s %v", r.Path, v)
				}
				if strings.Contains(r.Body, fixFbclid[:20]+"\"") || strings.Contains(r.Body, "203.0.113.7") {
					t.Error("PostHog was told the click ID or the IP")
				}
			}},
			{name: "invalid", status: 400, body: `{"type":"validation_error","detail":"Invalid payload"}`, want: Reject},
		})
	})
	t.Run("plausible", func(t *testing.T) {
		runLoopback(t, func(base string) Config {
			return Config{Preset: "plausible", URL: base, Params: map[string]string{"site": "shop.example.com"}}
		}, conv, []loopbackCase{
			{name: "accepted", status: 202, body: `ok`, want: Delivered, request: func(t *testing.T, r stubRequest) {
				if r.Path != "/api/event" || r.Header.Get("X-Forwarded-For") != "203.0.113.7" || !strings.HasPrefix(r.Header.Get("User-Agent"), "Mozilla/5.0 (X11") {
					t.Errorf("path %s headers %v", r.Path, r.Header)
				}
			}},
			{name: "bad request", status: 400, body: `{"errors":{"domain":["can't be blank"]}}`, want: Reject},
		})
	})
	t.Run("matomo", func(t *testing.T) {
		runLoopback(t, func(base string) Config {
			return Config{Preset: "matomo", URL: base, Params: map[string]string{"site_id": "3"}}
		}, conv, []loopbackCase{
			{name: "tracked", status: 204, want: Delivered, request: func(t *testing.T, r stubRequest) {
				q, _ := url.ParseQuery(r.RawQuery)
				if r.Method != http.MethodGet || r.Path != "/matomo.php" || q.Get("idsite") != "3" || q.Get("ec_id") != "ORD-1001" || q.Get("revenue") != "1234.50" {
					t.Errorf("%s %s %v", r.Method, r.Path, q)
				}
				if q.Has("cip") || q.Has("token_auth") {
					t.Error("the IP was sent without token_auth")
				}
			}},
			{name: "server error", status: 500, want: Retry},
		})
	})
}

func TestLoopbackRecurringPrograms(t *testing.T) {
	t.Run("rewardful", func(t *testing.T) {
		runLoopback(t, func(base string) Config {
			return Config{Preset: "rewardful", URL: base, Params: map[string]string{"api_secret": "rw-secret"}}
		}, func() *record.Postback {
			return fixture("rewardful", "rewardful_referral", "d154e622-278a-4103-b191-5cbebae4047a")
		}, []loopbackCase{
			{name: "sale created", status: 200, body: `{"id":"74e37d3b-03c5-4bfc-841c-a79d5799551a","external_id":"ORD-1001","sale_amount_cents":123450}`,
				want: Delivered, request: func(t *testing.T, r stubRequest) {
					user, pass, ok := (&http.Request{Header: r.Header}).BasicAuth()
					form, _ := url.ParseQuery(r.Body)
					if r.Path != "/v1/sales" || !ok || user != "rw-secret" || pass != "" || form.Get("charge_amount_cents") != "123450" {
						t.Errorf("path %s auth %q:%q form %v", r.Path, user, pass, form)
					}
				}},
			{name: "invalid", status: 422, body: `{"error":"Referral not found"}`, want: Reject, reason: "Referral not found"},
			{name: "bad secret", status: 401, body: `{"error":"Unauthorized"}`, want: Reject},
		})
	})
	t.Run("firstpromoter", func(t *testing.T) {
		conv := func() *record.Postback { return fixture("firstpromoter", "fpr", "jane-affiliate") }
		runLoopback(t, func(base string) Config {
			return Config{Preset: "firstpromoter", URL: base, Params: map[string]string{"api_key": "fp-key", "account_id": "acc_1"}}
		}, conv, []loopbackCase{
			{name: "sale tracked", status: 200, body: `{"id":45831949,"etype":"sale","sale_amount":123450}`, want: Delivered,
				request: func(t *testing.T, r stubRequest) {
					if r.Path != "/api/v2/track/sale" || r.Header.Get("Account-ID") != "acc_1" || r.Header.Get("Authorization") != "Bearer fp-key" {
						t.Errorf("path %s headers %v", r.Path, r.Header)
					}
				}},
			{name: "already tracked", status: 409, body: `{"message":"The 'sale' event with the id 'ORD-1001' already exists."}`, want: Delivered, reason: "already exists"},
			{name: "not a referral", status: 404, body: `{"message":"Referral corresponding to email or uid parameter not found or promoter is banned.","code":"not_found"}`,
				want: Reject, reason: "promoter is banned"},
			{name: "refund", status: 200, body: `{"id":33847726,"type":"refund","amount_cents":-123450}`, want: Delivered,
				conv: func() *record.Postback { c := conv(); c.Order.Status = order.StatusRefunded; return c },
				request: func(t *testing.T, r stubRequest) {
					if v := jsonBody(t, r); r.Path != "/api/v2/track/refund" || v["sale_event_id"] != "ORD-1001" {
						t.Errorf("path %s body %v", r.Path, v)
					}
				}},
		})
	})
	t.Run("tapfiliate", func(t *testing.T) {
		runLoopback(t, func(base string) Config {
			return Config{Preset: "tapfiliate", URL: base, Params: map[string]string{"api_key": "tap-key"}}
		}, func() *record.Postback { return fixture("tapfiliate", "ref", "nlmjdis") }, []loopbackCase{
			{name: "created", status: 201, body: `{"id":"cv_1","external_id":"ORD-1001"}`, want: Delivered,
				request: func(t *testing.T, r stubRequest) {
					if r.Path != "/1.7/pb/con/c/" || r.Header.Get("X-Api-Key") != "tap-key" || jsonBody(t, r)["referral_code"] != "nlmjdis" {
						t.Errorf("path %s headers %v body %s", r.Path, r.Header, r.Body)
					}
				}},
			{name: "invalid", status: 422, body: `{"message":"External id already exists"}`, want: Reject, reason: "External id already exists"},
		})
	})
}

// TestLoopbackBasicAuthSecretMasked: the Basic credentials Rewardful takes
// are masked in the stored request.
func TestLoopbackBasicAuthSecretMasked(t *testing.T) {
	cfg := Config{Preset: "rewardful", Params: map[string]string{"api_secret": "rw-secret-77"}}
	d := mustNew(t, cfg)
	r, err := d.Render(context.Background(), fixture("rewardful", "x", "d154e622-278a-4103-b191-5cbebae4047a"))
	if err != nil {
		t.Fatal(err)
	}
	masked := NewMasker(Secrets(cfg)...).Request(r)
	if strings.Contains(masked.Header.Get("Authorization"), base64.StdEncoding.EncodeToString([]byte("rw-secret-77:"))) {
		t.Error("Basic credentials shown")
	}
}
