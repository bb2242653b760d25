package module

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/store"
	"github.com/caddy-postback/caddy-postback/internal/webhook"
)

// Webhook is an endpoint that receives an e-commerce platform's webhooks.
type Webhook struct {
	// Path is the endpoint's exact URL path. For gumroad the secret token is
	// appended as one more path segment.
	Path string `json:"path"`
	// Provider is stripe, shopify, woocommerce, paddle, lemonsqueezy,
	// gumroad or generic.
	Provider string `json:"provider"`
	// Secrets are the signing secrets (several during a rotation); {env.*}
	// placeholders are replaced at load. Required unless Insecure.
	Secrets []string `json:"secrets,omitempty"`
	// Tolerance is the signature timestamp tolerance where the provider
	// signs time. Default: 5m.
	Tolerance caddy.Duration `json:"tolerance,omitempty"`
	// SessionField is the checkout metadata key that carries the session
	// reference. Default: "pb_session".
	SessionField string `json:"session_field,omitempty"`
	// Event is the conversion event of the orders. Default: "purchase".
	Event string `json:"event,omitempty"`
	// MaxBody caps the request body. Default: 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// Insecure accepts unsigned requests (generic only). Default: false.
	Insecure bool `json:"insecure,omitempty"`
	// Generic describes a generic provider's signature and fields.
	Generic *GenericWebhook `json:"generic,omitempty"`

	provider webhook.Provider
}

// GenericWebhook describes a platform that signs a JSON body with an HMAC.
type GenericWebhook struct {
	// Header is the signature header.
	Header string `json:"header,omitempty"`
	// Algorithm is sha256 (default), sha1 or sha512.
	Algorithm string `json:"algorithm,omitempty"`
	// Encoding is hex (default) or base64.
	Encoding string `json:"encoding,omitempty"`
	// Prefix is stripped from the signature ("sha256=").
	Prefix string `json:"prefix,omitempty"`
	// TimestampHeader names a header with the signing time (unix seconds).
	TimestampHeader string `json:"timestamp_header,omitempty"`
	// SignedPayload is the MAC input with {ts} and {body}. Default: "{body}",
	// or "{ts}.{body}" with a timestamp header.
	SignedPayload string `json:"signed_payload,omitempty"`
	// OrderID is the gjson path of the order ID. Required.
	OrderID string `json:"order_id,omitempty"`
	// Amount is the path of the order amount. Default: none (no amount).
	Amount string `json:"amount,omitempty"`
	// AmountMinor says the amount is in minor units (cents). Default: false.
	AmountMinor bool `json:"amount_minor,omitempty"`
	// Currency is the path of the ISO 4217 currency code. Default: none.
	Currency string `json:"currency,omitempty"`
	// EventType is the path of the platform's event type. Default: none.
	EventType string `json:"event_type,omitempty"`
	// Events lists the event types read; others are ignored. Default: all.
	Events []string `json:"events,omitempty"`
	// Status is the path of the order status. Default: none (every event is
	// an approved order).
	Status string `json:"status,omitempty"`
	// StatusMap maps raw statuses to approved, pending, rejected, refunded
	// or ignore. Default: none (the four statuses are taken as they are).
	StatusMap map[string]string `json:"status_map,omitempty"`
	// Session is the path of the session reference. Default: none.
	Session string `json:"session,omitempty"`
	// EventID is the path of the platform's event ID, for dropping retries.
	// Default: none.
	EventID string `json:"event_id,omitempty"`
	// Email is the path of the customer's email. Default: none.
	Email string `json:"email,omitempty"`
	// Coupon is the path of the coupon code. Default: none.
	Coupon string `json:"coupon,omitempty"`
}

// tokenPath is a webhook whose secret is the last path segment.
type tokenPath struct {
	prefix string
	wh     *Webhook
}

// webhookFor returns the webhook serving path, if any.
func (h *Handler) webhookFor(path string) (*Webhook, bool) {
	if wh, ok := h.webhooks[path]; ok {
		return wh, true
	}
	for _, tp := range h.tokenPaths {
		if strings.HasPrefix(path, tp.prefix) {
			return tp.wh, true
		}
	}
	return nil, false
}

// DefaultWebhookMaxBody caps webhook bodies.
const DefaultWebhookMaxBody = 1 << 20

func (h *Handler) provisionWebhooks(_ caddy.Context) error {
	if len(h.Webhooks) == 0 {
		return nil
	}
	repl := envReplacer()
	h.webhooks = map[string]*Webhook{}
	for _, wh := range h.Webhooks {
		if !strings.HasPrefix(wh.Path, "/") {
			return fmt.Errorf("webhook path %q must start with /", wh.Path)
		}
		if wh.MaxBody == 0 {
			wh.MaxBody = DefaultWebhookMaxBody
		}
		secrets := make([]string, 0, len(wh.Secrets))
		for _, s := range wh.Secrets {
			v := repl.ReplaceKnown(s, "")
			if v == "" {
				return fmt.Errorf("webhook %s: a secret is empty (is its environment variable set?)", wh.Path)
			}
			secrets = append(secrets, v)
		}
		cfg := webhook.Config{Secrets: secrets, Tolerance: time.Duration(wh.Tolerance), SessionField: wh.SessionField, Event: wh.Event}
		var err error
		switch wh.Provider {
		case "generic":
			g := wh.Generic
			if g == nil {
				g = new(GenericWebhook)
			}
			wh.provider, err = webhook.NewGeneric(webhook.GenericConfig{
				Config: cfg, Name: "generic", Insecure: wh.Insecure,
				Header: g.Header, Algorithm: g.Algorithm, Encoding: g.Encoding, Prefix: g.Prefix,
				TimestampHeader: g.TimestampHeader, SignedPayload: g.SignedPayload,
				OrderIDPath: g.OrderID, AmountPath: g.Amount, AmountMinor: g.AmountMinor, CurrencyPath: g.Currency,
				EventPath: g.EventType, Events: g.Events, StatusPath: g.Status, StatusMap: g.StatusMap,
				SessionPath: g.Session, EventIDPath: g.EventID, EmailPath: g.Email, CouponPath: g.Coupon,
			})
		default:
			if wh.Insecure {
				return fmt.Errorf("webhook %s: insecure is only for the generic provider", wh.Path)
			}
			wh.provider, err = webhook.New(wh.Provider, cfg)
		}
		if err != nil {
			return fmt.Errorf("webhook %s: %w", wh.Path, err)
		}
		if wh.Provider == "gumroad" {
			// Gumroad signs nothing: the secret token is the last path
			// segment, which the provider checks. Any other segment under
			// the path is refused there (401) rather than passed on to the
			// site.
			base := strings.TrimSuffix(wh.Path, "/") + "/"
			if slices.ContainsFunc(h.tokenPaths, func(tp tokenPath) bool { return tp.prefix == base }) {
				return fmt.Errorf("webhook path %s declared twice", wh.Path)
			}
			h.tokenPaths = append(h.tokenPaths, tokenPath{prefix: base, wh: wh})
			continue
		}
		if _, dup := h.webhooks[wh.Path]; dup {
			return fmt.Errorf("webhook path %s declared twice", wh.Path)
		}
		h.webhooks[wh.Path] = wh
	}
	return nil
}

// serveWebhook verifies, parses and records one webhook. It answers 2xx
// only after the conversion and its postbacks are committed, so a failure
// makes the platform retry; it never waits on a network.
func (h *Handler) serveWebhook(w http.ResponseWriter, r *http.Request, wh *Webhook) error {
	name := wh.provider.Name()
	count := func(result string) {
		if h.app.metrics != nil {
			h.app.metrics.webhooks.WithLabelValues(name, result).Inc()
		}
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		count("bad_method")
		return writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "webhooks are POSTed"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wh.MaxBody))
	if err != nil {
		count("too_large")
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": fmt.Sprintf("body larger than %d bytes", wh.MaxBody)})
		}
		return writeJSON(w, http.StatusBadRequest, map[string]any{"error": "reading body failed"})
	}
	req := &webhook.Request{Header: r.Header, Body: body, Path: r.URL.Path, Query: r.URL.Query(), Now: now()}
	if err := wh.provider.Verify(req); err != nil {
		status := http.StatusUnauthorized
		result := "bad_signature"
		if errors.Is(err, webhook.ErrBadRequest) {
			status, result = http.StatusBadRequest, "bad_request"
		}
		count(result)
		h.logger.Warn("webhook refused", zap.String("provider", name), zap.String("remote_ip", clientIP(r)), zap.Error(err))
		return writeJSON(w, status, map[string]any{"error": http.StatusText(status)})
	}
	ev, err := wh.provider.Parse(req)
	if err != nil {
		// Authentic but unreadable: keep it for inspection and acknowledge,
		// since the platform would only resend the same bytes.
		if serr := h.keepUnreadable(name, body, err); serr != nil {
			count("error")
			h.logger.Error("keeping an unreadable webhook", zap.String("provider", name), zap.Error(serr))
			return writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "could not record the webhook"})
		}
		count("malformed")
		h.logger.Warn("webhook authentic but unreadable; kept for inspection", zap.String("provider", name), zap.Error(err))
		return writeJSON(w, http.StatusAccepted, map[string]any{"status": "kept for inspection"})
	}
	if ev.Kind == webhook.KindIgnore {
		count("ignored")
		return writeJSON(w, http.StatusOK, map[string]any{"status": "ignored", "reason": ev.Reason})
	}
	var once []byte
	if ev.ID != "" {
		once = store.Key(store.PrefixEvent, name, ev.ID)
	}
	res, err := h.app.joinAndConvert(ev.Order, once)
	if err != nil {
		count("error")
		h.logger.Error("recording webhook conversion", zap.String("provider", name), zap.Error(err))
		return writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "could not record the conversion"})
	}
	if res.SeenEvent {
		count("duplicate")
		return writeJSON(w, http.StatusOK, map[string]any{"status": "duplicate event"})
	}
	count("accepted")
	if h.app.metrics != nil {
		result := "uncredited"
		switch {
		case res.Queued > 0:
			result = "credited"
		case res.Duplicates > 0:
			result = "duplicate"
		}
		h.app.metrics.conversions.WithLabelValues("webhook", ev.Order.Event, result).Inc()
	}
	return writeJSON(w, http.StatusOK, map[string]any{"status": "recorded", "postbacks": res.Queued})
}

// keepUnreadable stores an authentic webhook that could not be parsed.
func (h *Handler) keepUnreadable(provider string, body []byte, perr error) error {
	sum := sha256.Sum256(body)
	rec, _ := json.Marshal(map[string]any{"provider": provider, "error": perr.Error(), "received_at": now(), "body": string(body)})
	return h.app.rt.store.Update(func(txn store.Txn) error {
		return txn.Set(store.Key(store.PrefixWebhook, provider, hex.EncodeToString(sum[:8])), rec, 30*24*time.Hour)
	})
}

// joinAndConvert ties a webhook's order to a visitor, in order of strength:
// a signed session reference that travelled through the checkout, click IDs
// the platform carried (Shopify's landing_site), or a confirmation page that
// already linked the order to a session. Then it records the conversion.
func (a *App) joinAndConvert(o order.Order, once []byte) (conversion.Result, error) {
	var sess *capture.Session
	if o.SessionRef != "" {
		if id, ok := a.signer.Verify(o.SessionRef); ok {
			if s, err := a.sessions.Get(id); err == nil {
				sess = s
			}
		}
	}
	if sess == nil && len(o.ClickIDs) > 0 {
		sess = a.sessionFromClickIDs(o)
	}
	return a.tracker.Convert(o, sess, "", once)
}

// sessionFromClickIDs builds a one-off session from click IDs a platform
// reported with the order (the visitor's landing URL as Shopify kept it).
func (a *App) sessionFromClickIDs(o order.Order) *capture.Session {
	at := o.OccurredAt
	if at.IsZero() {
		at = now()
	}
	q := make(map[string][]string, len(o.ClickIDs))
	for k, v := range o.ClickIDs {
		q[k] = []string{v}
	}
	hits, _ := a.recognizer.Find(q)
	if len(hits) == 0 {
		return nil
	}
	sess := &capture.Session{ID: "", CreatedAt: at}
	nets := a.recognizer.Networks()
	for _, hit := range hits {
		n := nets[hit.Network]
		// The click happened before the order; its exact time is unknown, so
		// the order time stands in (inside any window).
		sess.Touchpoints = append(sess.Touchpoints, capture.Touchpoint{
			Network: n.Name, Param: hit.Param, ClickID: hit.ClickID, CapturedAt: at, ExpiresAt: at.Add(n.Window),
		})
	}
	return sess
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
