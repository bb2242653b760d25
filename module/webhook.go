package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
	"github.com/caddy-postback/caddy-postback/internal/webhook"
)

// Webhook is an endpoint that receives an e-commerce platform's webhooks.
type Webhook struct {
	// Path is the endpoint's exact URL path. For gumroad the secret token is
	// appended as one more path segment.
	Path string `json:"path"`
	// Provider is stripe, shopify, woocommerce, paddle, lemonsqueezy,
	// gumroad, clickbank, jvzoo, warriorplus or generic (case does not
	// matter).
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
	// Values are per-offer values for the networks' templates
	// ({value.<name>}) of every order this webhook reports, by name;
	// {env.*} placeholders are replaced at load, request placeholders per
	// request. Default: none.
	Values map[string]string `json:"values,omitempty"`

	provider webhook.Provider
	masker   *postback.Masker
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
	env := &envExpander{}
	h.webhooks = map[string]*Webhook{}
	for _, wh := range h.Webhooks {
		if !strings.HasPrefix(wh.Path, "/") {
			return fmt.Errorf("webhook path %q must start with /", wh.Path)
		}
		wh.Provider = strings.ToLower(wh.Provider)
		if wh.MaxBody == 0 {
			wh.MaxBody = DefaultWebhookMaxBody
		}
		secrets := make([]string, 0, len(wh.Secrets))
		for _, s := range wh.Secrets {
			v, err := env.expand("webhook "+wh.Path+" secret", s)
			if err != nil {
				return err
			}
			if v == "" {
				return fmt.Errorf("webhook %s: a secret is empty", wh.Path)
			}
			secrets = append(secrets, v)
		}
		wh.masker = postback.NewMasker(secrets...)
		vals, err := provisionValues("webhook "+wh.Path, wh.Values)
		if err != nil {
			return err
		}
		wh.Values = vals
		cfg := webhook.Config{Secrets: secrets, Tolerance: time.Duration(wh.Tolerance), SessionField: wh.SessionField, Event: wh.Event}
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
		h.app.metrics.initWebhook(wh.provider.Name())
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
// only after the conversion and its postbacks are committed, and 503 when
// the storage cannot take them, so that the platform retries; it never
// waits on a network.
func (h *Handler) serveWebhook(w http.ResponseWriter, r *http.Request, wh *Webhook) error {
	a := h.app
	name := wh.provider.Name()
	t := now()
	entry := record.WebhookEntry{ID: record.NewID(t), Provider: name, Path: wh.Path, ReceivedAt: t, ExpiresAt: t.Add(webhookLogRetention)}
	answer := func(status int, result, reason string, body map[string]any) error {
		return h.answerLogged(w, r, &entry, wh.masker, status, result, reason, body)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return answer(http.StatusMethodNotAllowed, record.WebhookRejected, "not POST", map[string]any{"error": "webhooks are POSTed"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wh.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return answer(http.StatusRequestEntityTooLarge, record.WebhookRejected, "body too large",
				map[string]any{"error": fmt.Sprintf("body larger than %d bytes", wh.MaxBody)})
		}
		return answer(http.StatusBadRequest, record.WebhookRejected, "reading the body failed", map[string]any{"error": "reading body failed"})
	}
	req := &webhook.Request{Header: r.Header, Body: body, Path: r.URL.Path, Query: r.URL.Query(), Now: t}
	if err := wh.provider.Verify(req); err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, webhook.ErrBadRequest) {
			status = http.StatusBadRequest
		}
		h.logger.Warn("webhook refused", zap.String("provider", name), zap.String("remote_ip", clientIP(r)), zap.String("error", wh.masker.String(err.Error())))
		return answer(status, record.WebhookRejected, err.Error(), map[string]any{"error": http.StatusText(status)})
	}
	ev, err := wh.provider.Parse(req)
	if err != nil {
		// Authentic but unreadable: keep it for inspection and acknowledge,
		// since the platform would only resend the same bytes.
		entry.Payload = wh.masker.String(string(body))
		h.logger.Warn("webhook authentic but unreadable; kept for inspection", zap.String("provider", name), zap.String("error", wh.masker.String(err.Error())))
		a.metrics.webhooks.WithLabelValues(name, record.WebhookKept).Inc()
		a.rt.tally.Add(store.StatWebhooks, name, "", "", record.WebhookKept, 1, 0)
		entry.Result, entry.Reason = record.WebhookKept, wh.masker.String(err.Error())
		ctx, cancel := h.storageContext(r)
		defer cancel()
		if err := a.rt.store.LogWebhook(ctx, entry); err != nil {
			h.logger.Error("keeping an unreadable webhook failed; the platform will retry", zap.String("provider", name), zap.Error(err))
			w.Header().Set("Retry-After", "30")
			return writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "could not keep the webhook"})
		}
		return writeJSON(w, http.StatusAccepted, map[string]any{"status": "kept for inspection"})
	}
	entry.EventID, entry.OrderID = ev.ID, ev.Order.ID
	if ev.Kind == webhook.KindIgnore {
		return answer(http.StatusOK, record.WebhookIgnored, ev.Reason, map[string]any{"status": "ignored", "reason": ev.Reason})
	}
	vals, problems := requestValues(r, wh.Values)
	ev.Order = withValues(ev.Order, vals, problems)
	eventKey := ""
	if ev.ID != "" {
		eventKey = name + "|" + wh.Path + "|" + ev.ID
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	res, err := a.joinAndConvert(ctx, ev.Order, eventKey)
	if err != nil {
		status, why := http.StatusInternalServerError, "could not record the conversion"
		if errors.Is(err, store.ErrUnavailable) {
			status, why = http.StatusServiceUnavailable, "storage unavailable; retry later"
		}
		h.logger.Error("webhook conversion not recorded; the platform will retry", zap.String("provider", name), zap.Error(err))
		return answer(status, record.WebhookFailed, err.Error(), map[string]any{"error": why})
	}
	if res.SeenEvent {
		return answer(http.StatusOK, record.WebhookDuplicate, "event processed before", map[string]any{"status": "duplicate event"})
	}
	a.logConversion(h.logger, res)
	if res.Conversion != nil {
		entry.ConversionID = res.Conversion.ID
	}
	return answer(http.StatusOK, record.WebhookRecorded, "", map[string]any{"status": "recorded", "postbacks": res.Queued})
}

// answerLogged answers a webhook or endpoint request: it counts the
// result in the metrics and the hourly tally under the entry's provider,
// writes the entry (reason masked) to the webhook log (rejections only a
// few a minute, so that a flood of forged requests cannot fill the
// storage), and writes the JSON answer, with Retry-After on a 503.
func (h *Handler) answerLogged(w http.ResponseWriter, r *http.Request, entry *record.WebhookEntry, masker *postback.Masker,
	status int, result, reason string, body map[string]any) error {
	a := h.app
	a.metrics.webhooks.WithLabelValues(entry.Provider, result).Inc()
	a.rt.tally.Add(store.StatWebhooks, entry.Provider, "", "", result, 1, 0)
	entry.Result, entry.Reason = result, masker.String(reason)
	if result != record.WebhookRejected || h.rejections.allow(entry.ReceivedAt) {
		ctx, cancel := h.storageContext(r)
		if err := a.rt.store.LogWebhook(ctx, *entry); err != nil && result != record.WebhookFailed {
			h.logger.Debug("webhook log entry not written", zap.Error(err))
		}
		cancel()
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	return writeJSON(w, status, body)
}

// webhookLogRetention keeps the webhook log.
const webhookLogRetention = 30 * 24 * time.Hour

// joinAndConvert ties a webhook's order to a visitor, in order of strength:
// a signed session reference that travelled through the checkout, a
// reference that is a click ID captured here (a network's script filled it
// in), a click ID the platform carried that was captured here, click IDs
// of the platform's landing URL (Shopify's landing_site) taken as they
// are, or a confirmation page that already tied the order to a session (found by the
// tracker). Then it records the conversion.
func (a *App) joinAndConvert(ctx context.Context, o order.Order, eventKey string) (conversion.Result, error) {
	t := now()
	var sess *record.Session
	if o.SessionRef != "" {
		if signer := a.loadSigner(ctx); signer != nil {
			if id, ok := signer.Verify(o.SessionRef); ok {
				s, err := a.rt.store.Session(ctx, id, t)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return conversion.Result{}, err
				}
				sess = s
			}
		}
	}
	if sess == nil && o.SessionRef != "" {
		s, err := a.sessionFromForeignRef(ctx, o.SessionRef, t)
		if err != nil {
			return conversion.Result{}, err
		}
		sess = s
	}
	if sess == nil && len(o.ClickIDs) > 0 {
		s, err := a.sessionFromClickIDs(ctx, o, t)
		if err != nil {
			return conversion.Result{}, err
		}
		sess = s
	}
	return a.tracker.Convert(ctx, o, sess, "", eventKey)
}

// sessionFromForeignRef finds the visitor of a session reference that is
// not ours: a network's script may have put its own click ID there
// (Rewardful's passes its referral as Stripe's client_reference_id), and
// a click captured from the network's cookie has that ID.
func (a *App) sessionFromForeignRef(ctx context.Context, ref string, t time.Time) (*record.Session, error) {
	if capture.ValidClickID(ref, a.MaxClickIDLength) != nil {
		return nil, nil
	}
	ms, err := a.rt.store.FindClicks(ctx, ref, t, 1)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	s, err := a.rt.store.Session(ctx, ms[0].SessionID, t)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return s, err
}

// sessionFromClickIDs finds the visitor of click IDs a platform reported
// with the order: the session that captured one of them, or else a one-off
// session built from them (the order time standing in for the click's).
func (a *App) sessionFromClickIDs(ctx context.Context, o order.Order, t time.Time) (*record.Session, error) {
	q := make(map[string][]string, len(o.ClickIDs))
	for k, v := range o.ClickIDs {
		q[k] = []string{v}
	}
	hits, _ := a.recognizer.Find(q)
	if len(hits) == 0 {
		return nil, nil
	}
	for _, hit := range hits {
		ms, err := a.rt.store.FindClicks(ctx, hit.ClickID, t, 1)
		if err != nil {
			return nil, err
		}
		if len(ms) > 0 {
			s, err := a.rt.store.Session(ctx, ms[0].SessionID, t)
			if err == nil {
				return s, nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
	}
	at := o.OccurredAt
	if at.IsZero() {
		at = t
	}
	landing := capture.Landing{Hits: hits}
	return &record.Session{CreatedAt: at, Touchpoints: a.recognizer.NewTouchpoints(landing, capture.Landed{At: at})}, nil
}

// rejectionLog lets through a few rejected webhooks a minute per endpoint
// to the webhook log, so that a flood of forged requests cannot fill the
// storage; the metric counts them all.
type rejectionLog struct {
	mu     sync.Mutex
	minute time.Time
	n      int
}

func (l *rejectionLog) allow(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := t.Truncate(time.Minute); !m.Equal(l.minute) {
		l.minute, l.n = m, 0
	}
	l.n++
	return l.n <= 10
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
