package postback

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// tokenStub is an OAuth token endpoint: it counts refreshes, checks the
// grant it receives, and answers what the test sets.
type tokenStub struct {
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	status int
	body   string
	grants []url.Values
	gate   chan struct{} // when set, every refresh waits for it to close
}

func newTokenStub(t *testing.T) *tokenStub {
	s := &tokenStub{status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.calls.Add(1)
		r.ParseForm()
		s.mu.Lock()
		s.grants = append(s.grants, r.PostForm)
		status, body, gate := s.status, s.body, s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if body == "" {
			body = `{"access_token":"ya29.token-` + string(rune('0'+n)) + `","expires_in":3600,"token_type":"Bearer"}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// testClock is a clock a test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func googleAdsFor(t *testing.T, api, token string, now func() time.Time) Destination {
	t.Helper()
	p := googleAdsGoldenParams("token_url", token)
	d, err := New(Config{Preset: "google_ads", URL: api, Params: p, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func gclidConversion() *record.Postback {
	return fixture("google_ads", "gclid", "EAIaIQobChMI8vTx-Lm5_QIVB-7tCh0EAAYASAAEgJ")
}

// TestLoopbackGoogleAds sends click conversions through Render, real HTTP
// and Classify, with stand-ins for the API and the token endpoint.
func TestLoopbackGoogleAds(t *testing.T) {
	api, tok := newAPIStub(t), newTokenStub(t)
	d := googleAdsFor(t, api.srv.URL, tok.srv.URL, fixNow)
	send := func(status int, body string) (Outcome, string) {
		api.answer(status, body)
		return deliver(t, d, gclidConversion())
	}
	partial := func(code string) string {
		return `{"partialFailureError":{"code":3,"message":"x","details":[{"@type":"type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",` +
			`"errors":[{"errorCode":{"conversionUploadError":"` + code + `"},"message":"about ` + code + `","location":{"fieldPathElements":[{"fieldName":"conversions","index":0}]}}]}]},"results":[{}],"jobId":"42"}`
	}

	if o, r := send(200, `{"results":[{"gclid":"EAIaIQobChMI8vTx-Lm5_QIVB-7tCh0EAAYASAAEgJ","conversionAction":"customers/1234567890/conversionActions/987654321","conversionDateTime":"2025-03-14 09:58:12+00:00"}],"jobId":"41"}`); o != Delivered {
		t.Fatalf("accepted row: %v %s", o, r)
	}
	got := api.last(t)
	if got.Path != "/v26/customers/1234567890:uploadClickConversions" || got.Header.Get("Authorization") != "Bearer ya29.token-1" ||
		got.Header.Get("developer-token") != "dev-token-abc" || got.Header.Get("login-customer-id") != "" {
		t.Errorf("request %s %v", got.Path, got.Header)
	}
	grant := tok.grants[0]
	if grant.Get("grant_type") != "refresh_token" || grant.Get("refresh_token") != "1//refresh" ||
		grant.Get("client_id") != "1234.apps.googleusercontent.com" || grant.Get("client_secret") != "gcs-secret" {
		t.Errorf("grant %v", grant)
	}

	for _, tc := range []struct {
		name, body string
		want       Outcome
		reason     string
	}{
		{"row rejected beside a 200", partial("INVALID_GCLID"), Reject, "INVALID_GCLID: about INVALID_GCLID"},
		{"row already recorded", partial("ORDER_ID_ALREADY_IN_USE"), Delivered, "already recorded"},
		{"click too recent: retry later", partial("TOO_RECENT_EVENT"), Retry, "TOO_RECENT_EVENT"},
		{"empty answer of a validateOnly call", `{}`, Delivered, ""},
	} {
		if o, r := send(200, tc.body); o != tc.want || !strings.Contains(r, tc.reason) {
			t.Errorf("%s: %v %q, want %v %q", tc.name, o, r, tc.want, tc.reason)
		}
	}
	if o, r := send(403, `{"error":{"code":403,"message":"The developer token is not approved.","status":"PERMISSION_DENIED","details":[{"errors":[{"errorCode":{"authorizationError":"DEVELOPER_TOKEN_NOT_APPROVED"},"message":"The developer token is not approved."}]}]}}`); o != Reject || !strings.Contains(r, "DEVELOPER_TOKEN_NOT_APPROVED") {
		t.Errorf("403: %v %q", o, r)
	}
	if o, _ := send(429, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}`); o != Retry {
		t.Errorf("429: %v", o)
	}
	if n := tok.calls.Load(); n != 1 {
		t.Errorf("%d token refreshes for one valid token", n)
	}

	// A 401 drops the token: the next attempt refreshes and succeeds. A
	// second 401 in a row, with a fresh token, is not retried.
	if o, r := send(401, `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`); o != Retry {
		t.Fatalf("first 401: %v %s", o, r)
	}
	if o, _ := send(200, `{"results":[{}]}`); o != Delivered || api.last(t).Header.Get("Authorization") != "Bearer ya29.token-2" {
		t.Fatalf("after a 401: %v, auth %q", o, api.last(t).Header.Get("Authorization"))
	}
	send(401, `{}`)
	if o, r := send(401, `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`); o != Reject || !strings.Contains(r, "refused again") {
		t.Errorf("second 401 in a row: %v %q", o, r)
	}

	// A test fire asks Google to validate only.
	api.answer(200, `{}`)
	c := gclidConversion()
	c.Test = true
	deliver(t, d, c)
	if !strings.Contains(api.last(t).Body, `"validateOnly":true`) {
		t.Errorf("test fire body %s", api.last(t).Body)
	}
}

func TestGoogleAdsTokenCache(t *testing.T) {
	api, tok := newAPIStub(t), newTokenStub(t)
	clk := &testClock{t: fixNow()}
	d := googleAdsFor(t, api.srv.URL, tok.srv.URL, clk.Now)
	render := func() string {
		t.Helper()
		r, err := d.Render(context.Background(), gclidConversion())
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Get("Authorization")
	}
	first := render()
	clk.Advance(55 * time.Minute)
	if render() != first || tok.calls.Load() != 1 {
		t.Fatalf("token not kept within its hour: %d refreshes", tok.calls.Load())
	}
	clk.Advance(4 * time.Minute) // 59 minutes: within the two-minute margin
	if render() == first || tok.calls.Load() != 2 {
		t.Errorf("token kept too close to its expiry: %d refreshes", tok.calls.Load())
	}
}

// TestGoogleAdsConcurrentRendersShareOneRefresh: renders that need a token
// while a refresh is under way wait for it rather than starting their own.
func TestGoogleAdsConcurrentRendersShareOneRefresh(t *testing.T) {
	api, tok := newAPIStub(t), newTokenStub(t)
	gate := make(chan struct{})
	tok.gate = gate
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the server closes, even when the test fails
	gd := googleAdsFor(t, api.srv.URL, tok.srv.URL, fixNow).(*googleAdsPreset)
	const n = 8
	var wg sync.WaitGroup
	auths := make([]string, n)
	errs := make([]error, n)
	render := func(i int) {
		defer wg.Done()
		r, err := gd.Render(context.Background(), gclidConversion())
		auths[i], errs[i] = r.Header.Get("Authorization"), err
	}
	wg.Add(1)
	go render(0)
	waitFor(t, func() bool { return tok.calls.Load() == 1 }) // the refresh is at the endpoint, held
	wg.Add(n - 1)
	for i := 1; i < n; i++ {
		go render(i)
	}
	waitFor(t, func() bool {
		gd.tokens.mu.Lock()
		defer gd.tokens.mu.Unlock()
		return gd.tokens.flight != nil && gd.tokens.flight.waiters == n-1
	})
	release()
	wg.Wait()
	for i := range auths {
		if errs[i] != nil || auths[i] != "Bearer ya29.token-1" {
			t.Errorf("render %d: %q %v", i, auths[i], errs[i])
		}
	}
	if got := tok.calls.Load(); got != 1 {
		t.Errorf("%d refreshes for %d concurrent renders", got, n)
	}
}

// waitFor waits until cond holds, failing the test after ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGoogleAdsTokenFailures(t *testing.T) {
	secrets := []string{"gcs-secret", "1//refresh", "dev-token-abc"}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error
		reason string
	}{
		{"grant refused", 400, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`, ErrRejected, "invalid_grant: Token has been expired or revoked."},
		{"client refused", 401, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`, ErrRejected, "invalid_client"},
		{"endpoint down", 503, `upstream unavailable`, ErrTransient, "503"},
		{"throttled", 429, ``, ErrTransient, "429"},
		{"200 without a token", 200, `{"token_type":"Bearer"}`, ErrTransient, "without an access token"},
		{"not JSON", 200, `<html>captive portal</html>`, ErrTransient, "without an access token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, tok := newAPIStub(t), newTokenStub(t)
			tok.status, tok.body = tc.status, tc.body
			d := googleAdsFor(t, api.srv.URL, tok.srv.URL, fixNow)
			_, err := d.Render(context.Background(), gclidConversion())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %v, want %v saying %q", err, tc.want, tc.reason)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
			if api.count() != 0 {
				t.Error("the API was called without a token")
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		api, tok := newAPIStub(t), newTokenStub(t)
		tok.srv.Close()
		_, err := googleAdsFor(t, api.srv.URL, tok.srv.URL, fixNow).Render(context.Background(), gclidConversion())
		if !errors.Is(err, ErrTransient) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("redirect not followed", func(t *testing.T) {
		api, elsewhere := newAPIStub(t), newTokenStub(t)
		redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.srv.URL+"/token", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(redirect.Close)
		_, err := googleAdsFor(t, api.srv.URL, redirect.URL, fixNow).Render(context.Background(), gclidConversion())
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "redirect") {
			t.Fatalf("err %v", err)
		}
		if elsewhere.calls.Load() != 0 {
			t.Error("the redirect was followed: the credentials went to another host")
		}
	})
}

// TestGoogleAdsSendTimeLimits: what Google would refuse is refused before
// a token is fetched, with the reason.
func TestGoogleAdsSendTimeLimits(t *testing.T) {
	api, tok := newAPIStub(t), newTokenStub(t)
	d := googleAdsFor(t, api.srv.URL, tok.srv.URL, fixNow)
	for _, tc := range []struct {
		name   string
		change func(c *record.Postback)
		reason string
	}{
		{"conversion before the click", func(c *record.Postback) { c.Order.OccurredAt = c.Touchpoint.CapturedAt.Add(-time.Hour) }, "CONVERSION_PRECEDES_EVENT"},
		{"more than 90 days after the click", func(c *record.Postback) { c.Order.OccurredAt = c.Touchpoint.CapturedAt.Add(91 * 24 * time.Hour) }, "EXPIRED_EVENT"},
		{"no Google click and no identifiers", func(c *record.Postback) { c.Touchpoint.Param, c.Order.Customer = "fbclid", nil }, "gclid, gbraid or wbraid"},
		{"no Google click, identifiers withheld by consent", func(c *record.Postback) {
			c.Touchpoint.Param = "fbclid"
			c.Touchpoint.Consent = &record.Consent{AdUserData: record.Denied}
		}, "gclid, gbraid or wbraid"},
	} {
		c := gclidConversion()
		tc.change(c)
		_, err := d.Render(context.Background(), c)
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if tok.calls.Load() != 0 {
		t.Error("a token was fetched for conversions that cannot be sent")
	}
	// Without a click but with the customer's identifiers, the upload goes
	// as an enhanced conversion for leads.
	c := gclidConversion()
	c.Touchpoint.Param, c.Touchpoint.ClickID = "", ""
	r, err := d.Render(context.Background(), c)
	if err != nil || !strings.Contains(r.Body, `"hashedEmail"`) || strings.Contains(r.Body, `"gclid"`) {
		t.Errorf("identifiers only: %v %s", err, r.Body)
	}
}
