package postback

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// tokenSource is an OAuth 2.0 client for the refresh-token grant (RFC 6749
// §6): it trades a refresh token for access tokens, keeps the current one
// until shortly before it expires, and lets every render that needs a new
// one wait for a single refresh.
type tokenSource struct {
	client                               *http.Client
	tokenURL                             string
	clientID, clientSecret, refreshToken string
	now                                  func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
	// flight is the refresh under way, shared by every caller that needs
	// a token meanwhile.
	flight *tokenFlight
	// refused is set when an answer said the current token was refused
	// and cleared by any accepted answer, so that a second refusal of a
	// fresh token is not retried forever.
	refused bool
}

type tokenFlight struct {
	done  chan struct{}
	token string
	err   error
	// waiters counts the callers that joined this refresh instead of
	// starting their own.
	waiters int
}

// tokenMargin is how long before its expiry a token is replaced, so that a
// request sent with it does not arrive after it lapsed.
const tokenMargin = 2 * time.Minute

// refreshTimeout bounds one refresh, whatever the client's own timeout.
const refreshTimeout = 30 * time.Second

// maxTokenAnswer bounds the token endpoint's answer read.
const maxTokenAnswer = 64 << 10

// Token returns a valid access token, refreshing it when there is none or
// it expires within tokenMargin. Errors wrap ErrTransient (the endpoint did
// not answer, or answered 5xx or 429: try again later) or ErrRejected (the
// grant or client was refused: no retry will help). They never hold a
// secret.
func (t *tokenSource) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	if t.token != "" && t.now().Before(t.expires.Add(-tokenMargin)) {
		tok := t.token
		t.mu.Unlock()
		return tok, nil
	}
	f := t.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		t.flight = f
		t.mu.Unlock()
		// The refresh runs under its own deadline, not the first caller's
		// context, whose cancellation would fail every caller waiting on
		// the same refresh.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		tok, exp, err := t.refresh(rctx)
		cancel()
		t.mu.Lock()
		if err == nil {
			t.token, t.expires = tok, exp
		}
		t.flight = nil
		t.mu.Unlock()
		f.token, f.err = tok, err
		close(f.done)
	} else {
		f.waiters++
		t.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: waiting for an access token: %w", ErrTransient, ctx.Err())
	}
}

// Refused records that the platform refused the current access token (an
// HTTP 401). It drops the token, so the next Token call refreshes, and
// reports whether this is the first refusal since the last accepted
// answer: a second one means a fresh token is refused too, which no retry
// mends.
func (t *tokenSource) Refused() (first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.token = ""
	first = !t.refused
	t.refused = true
	return first
}

// Accepted records an answer that took the token.
func (t *tokenSource) Accepted() {
	t.mu.Lock()
	t.refused = false
	t.mu.Unlock()
}

// refresh performs the refresh-token grant.
func (t *tokenSource) refresh(ctx context.Context) (string, time.Time, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {t.clientID},
		"client_secret": {t.clientSecret},
		"refresh_token": {t.refreshToken},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: token request: %w", ErrRejected, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		// A transport error can quote the URL, which holds no secret: the
		// credentials travel in the body.
		return "", time.Time{}, fmt.Errorf("%w: token endpoint: %w", ErrTransient, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: token endpoint: reading the answer: %w", ErrTransient, err)
	}
	var ans struct {
		AccessToken      string `json:"access_token"`
		ExpiresIn        int64  `json:"expires_in"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	parsed := json.Unmarshal(body, &ans) == nil
	switch st := resp.StatusCode; {
	case st >= 300 && st < 400:
		return "", time.Time{}, fmt.Errorf("%w: token endpoint answered a redirect (%d), which is not followed", ErrRejected, st)
	case ClassifyStatus(st) == Retry:
		return "", time.Time{}, fmt.Errorf("%w: token endpoint answered %d", ErrTransient, st)
	case st != http.StatusOK:
		reason := "no reason given"
		if parsed && ans.Error != "" {
			reason = ans.Error
			if ans.ErrorDescription != "" {
				reason += ": " + ans.ErrorDescription
			}
		}
		return "", time.Time{}, fmt.Errorf("%w: token refresh refused (%d): %s", ErrRejected, st, truncateReason(reason))
	case !parsed || ans.AccessToken == "":
		return "", time.Time{}, fmt.Errorf("%w: token endpoint answered 200 without an access token", ErrTransient)
	}
	if ans.ExpiresIn <= 0 {
		ans.ExpiresIn = 3600 // RFC 6749 makes expires_in optional; Google's tokens last an hour
	}
	return ans.AccessToken, t.now().Add(time.Duration(ans.ExpiresIn) * time.Second), nil
}

// truncateReason bounds a reason quoted from an answer.
func truncateReason(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
