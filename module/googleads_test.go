package module_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// googleAdsFake is a loopback Google Ads API and OAuth token endpoint.
type googleAdsFake struct {
	*httptest.Server
	mu       sync.Mutex
	refresh  int              // token refreshes
	uploads  []map[string]any // uploadClickConversions bodies
	authOK   bool             // every upload carried the current token and the developer token
	tokenErr string
}

const (
	googleAccessToken    = "ya29.loopback-access-token"
	googleDeveloperToken = "dev-token-0123456789"
	googleRefreshToken   = "1//refresh-token-0123456789"
	googleClientSecret   = "client-secret-0123456789"
)

func newGoogleAdsFake(t *testing.T) *googleAdsFake {
	f := &googleAdsFake{authOK: true}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/token":
			_ = r.ParseForm()
			if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != googleRefreshToken ||
				r.PostForm.Get("client_secret") != googleClientSecret {
				f.tokenErr = fmt.Sprintf("bad grant %v", r.PostForm)
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
				return
			}
			f.refresh++
			_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":3599,"token_type":"Bearer"}`, googleAccessToken)
		case r.URL.Path == "/v26/customers/1234567890:uploadClickConversions" && r.Method == http.MethodPost:
			if r.Header.Get("Authorization") != "Bearer "+googleAccessToken || r.Header.Get("developer-token") != googleDeveloperToken {
				f.authOK = false
			}
			var body map[string]any
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			f.uploads = append(f.uploads, body)
			conv := body["conversions"].([]any)[0].(map[string]any)
			if conv["gclid"] == "GCLID-EXPIRED" {
				// A 200 whose row failed: Google's partial failure.
				_, _ = io.WriteString(w, `{"partialFailureError":{"code":3,"message":"This click is too old to be imported.",`+
					`"details":[{"@type":"type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure","errors":[{"errorCode":`+
					`{"conversionUploadError":"EXPIRED_EVENT"},"message":"The click associated with the given identifier or iOS URL parameter is too old to be imported."}]}]},"results":[{}]}`)
				return
			}
			_, _ = fmt.Fprintf(w, `{"results":[{"gclid":%q,"conversionAction":%q,"conversionDateTime":%q}]}`,
				conv["gclid"], conv["conversionAction"], conv["conversionDateTime"])
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// waitFinal waits until a network has n deliveries, each delivered or
// dead.
func waitFinal(t *testing.T, network string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, b := adminDo(t, "GET", "/postback/deliveries?network="+network, nil)
		var list struct {
			Items []struct {
				State string `json:"state"`
			} `json:"items"`
		}
		final := 0
		if status == 200 && json.Unmarshal(b, &list) == nil {
			for _, d := range list.Items {
				if d.State == "delivered" || d.State == "dead" {
					final++
				}
			}
		}
		if final >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d final deliveries within %s, want %d: %d %s", network, final, within, n, status, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *googleAdsFake) snapshot() ([]map[string]any, int, bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.uploads...), f.refresh, f.authOK, f.tokenErr
}

// tcfPurposes3to9 is an IAB example TC string (from the IAB's Java
// decoder tests) granting purposes 3 to 9: without purpose 1, Google's
// ad_user_data is denied; with 3 and 4, ad_personalization is granted.
const tcfPurposes3to9 = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"

// TestGoogleAdsThroughCaddy: clicks with a gclid convert on an order page
// and are uploaded to a loopback Google Ads API with an access token from
// a loopback token endpoint; the click's consent from the TCF string goes
// with the upload; a row Google refuses in a 200 answer is a dead letter
// with Google's reason; and the admin API's test fire validates only.
func TestGoogleAdsThroughCaddy(t *testing.T) {
	g := newGoogleAdsFake(t)
	up := shop(t, nil)
	cfg := fmt.Sprintf(`{
%s	postback {
		storage %s
		consent {
			tcf
		}
		network google {
			preset google_ads
			customer_id 123-456-7890
			conversion_action 987654321
			developer_token %s
			client_id 1234.apps.googleusercontent.com
			client_secret %s
			refresh_token %s
			url %s
			token_url %s/token
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
			amount {http.request.uri.query.total}
			currency EUR
		}
	}
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), googleDeveloperToken, googleClientSecret, googleRefreshToken, g.URL, g.URL, httpPort, hostPort(up))
	mustLoad(t, cfg)

	// A visitor whose CMP wrote a TCF string converts.
	v := visitor(t)
	v.Jar.SetCookies(mustURL(t), []*http.Cookie{{Name: "euconsent-v2", Value: tcfPurposes3to9}})
	get(t, v, "/landing?gclid=GCLID-OK-1")
	get(t, v, "/thank-you?order=G-1001&total=120.50")
	// Another visitor's click is too old for Google.
	w := visitor(t)
	get(t, w, "/landing?gclid=GCLID-EXPIRED")
	get(t, w, "/thank-you?order=G-1002&total=80")
	// The page reaches the visitor before its order is recorded: wait for
	// both deliveries' outcomes.
	waitFinal(t, "google", 2, 10*time.Second)

	uploads, refreshes, authOK, tokenErr := g.snapshot()
	if tokenErr != "" || refreshes != 1 || !authOK {
		t.Fatalf("token refreshes %d (want 1, shared by both uploads), auth ok %v, token error %q", refreshes, authOK, tokenErr)
	}
	if len(uploads) != 2 {
		t.Fatalf("%d uploads, want 2", len(uploads))
	}
	byGclid := map[string]map[string]any{}
	for _, u := range uploads {
		if u["partialFailure"] != true || u["validateOnly"] != nil {
			t.Errorf("upload %v: want partialFailure and no validateOnly", u)
		}
		conv := u["conversions"].([]any)[0].(map[string]any)
		byGclid[conv["gclid"].(string)] = conv
	}
	ok := byGclid["GCLID-OK-1"]
	if ok == nil || ok["orderId"] != "G-1001" || ok["conversionValue"] != 120.5 || ok["currencyCode"] != "EUR" ||
		ok["conversionAction"] != "customers/1234567890/conversionActions/987654321" {
		t.Errorf("conversion %v", ok)
	}
	if c, _ := ok["consent"].(map[string]any); c["adUserData"] != "DENIED" {
		t.Errorf("consent %v: the TCF string grants no purpose 1, so ad_user_data is denied", ok["consent"])
	}
	if c := byGclid["GCLID-EXPIRED"]; c != nil && c["consent"] != nil {
		t.Errorf("consent %v sent for a visitor with no consent signal", c["consent"])
	}

	status, b := adminDo(t, "GET", "/postback/deliveries?network=google", nil)
	var list struct {
		Items []struct {
			OrderID  string `json:"order_id"`
			State    string `json:"state"`
			Reason   string `json:"reason"`
			Attempts []struct {
				Status  int    `json:"status"`
				Outcome string `json:"outcome"`
				Error   string `json:"error"`
			} `json:"attempts"`
			Request struct {
				Header map[string][]string `json:"header"`
			} `json:"request"`
		} `json:"items"`
	}
	if status != 200 || json.Unmarshal(b, &list) != nil || len(list.Items) != 2 {
		t.Fatalf("deliveries: %d %s", status, b)
	}
	for _, d := range list.Items {
		switch d.OrderID {
		case "G-1001":
			if d.State != "delivered" {
				t.Errorf("G-1001: %s %s", d.State, d.Reason)
			}
		case "G-1002":
			if d.State != "dead" || len(d.Attempts) != 1 || d.Attempts[0].Status != 200 ||
				!strings.Contains(d.Reason+d.Attempts[0].Error, "EXPIRED_EVENT") {
				t.Errorf("G-1002: want a dead letter after one 200 answer, with Google's EXPIRED_EVENT; got %+v", d)
			}
		}
		if strings.Contains(string(b), googleAccessToken) || strings.Contains(string(b), googleDeveloperToken) {
			t.Fatal("the delivery log shows a token")
		}
	}

	// caddy postback test: the real request in Google's validate-only mode.
	status, b = adminDo(t, "POST", "/postback/test", map[string]string{"network": "google", "click_id": "GCLID-TEST", "amount": "10", "order": "T-1"})
	if status != 200 {
		t.Fatalf("test fire: %d %s", status, b)
	}
	var res struct {
		Request struct {
			URL  string `json:"url"`
			Body string `json:"body"`
		} `json:"request"`
		Attempt struct {
			Status  int    `json:"status"`
			Outcome string `json:"outcome"`
		} `json:"attempt"`
	}
	if err := json.Unmarshal(b, &res); err != nil || res.Attempt.Outcome != "delivered" || res.Attempt.Status != 200 {
		t.Fatalf("test fire answer %s (%v)", b, err)
	}
	if !strings.Contains(res.Request.Body, `"validateOnly":true`) || !strings.Contains(res.Request.Body, `"gclid":"GCLID-TEST"`) {
		t.Errorf("test fire body %s: want the test click as a gclid, validate only", res.Request.Body)
	}
	if strings.Contains(string(b), googleAccessToken) || strings.Contains(string(b), googleDeveloperToken) {
		t.Error("the test fire's answer shows a token")
	}
	uploads, _, _, _ = g.snapshot()
	if last := uploads[len(uploads)-1]; last["validateOnly"] != true {
		t.Errorf("Google received %v: want validateOnly", last)
	}
}
