package module

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/detect"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Rule recognises a confirmation page and says where the order's fields
// come from: request placeholders, the response body, or both.
type Rule struct {
	// Events are the conversion events this rule yields, each credited and
	// deduplicated on its own (a first deposit can be both "purchase" and
	// "ftd"). Default: ["purchase"].
	Events []string `json:"events,omitempty"`
	// MatcherSetsRaw are the request matchers a confirmation page matches.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`
	// Response matches the response. Default: a 2xx status, and when the
	// rule reads the body, a Content-Type of text/html, application/json or
	// application/ld+json.
	Response *caddyhttp.ResponseMatcher `json:"response,omitempty"`
	// Status of orders from this rule: "approved" or "pending".
	// Default: approved.
	Status string `json:"status,omitempty"`
	// OrderID is read from placeholders ({http.request.uri.query.order})
	// and, when not empty, wins over the response sources. Default: none.
	OrderID string `json:"order_id,omitempty"`
	// Amount is read like OrderID. Default: none.
	Amount string `json:"amount,omitempty"`
	// Currency is read like OrderID; a literal such as USD works too.
	// Default: none.
	Currency string `json:"currency,omitempty"`
	// Coupon is read like OrderID. Default: none.
	Coupon string `json:"coupon,omitempty"`
	// AmountMinor says the placeholder amount is in minor units (cents).
	// Default: false.
	AmountMinor bool `json:"amount_minor,omitempty"`
	// DefaultCurrency is used when no source names a currency. Default: none.
	DefaultCurrency string `json:"default_currency,omitempty"`
	// From lists the response sources, tried in order for each field.
	From []*Source `json:"from,omitempty"`
	// MaxBody caps the bytes of the response copied for inspection (after
	// decompression too). Default: 1 MiB.
	MaxBody int `json:"max_body,omitempty"`
	// JoinOnly makes the page only tie the order ID to the visitor; the
	// postback fires when the platform's webhook for the order confirms
	// its amount and status (either may come first). For hosted checkouts'
	// return pages. Default: false.
	JoinOnly bool `json:"join_only,omitempty"`
	// Values are per-offer values for the networks' templates
	// ({value.<name>}), by name; {env.*} placeholders are replaced at
	// load, request placeholders per request. Default: none.
	Values map[string]string `json:"values,omitempty"`

	matchers caddyhttp.MatcherSets
	sources  []detect.Source
}

// Source is where in the response a rule reads the order.
type Source struct {
	// Type is ga4, magento, jsonld, json, regex or header.
	Type string `json:"type"`
	// Event is the GA4 event name to read (ga4 only). Default: "purchase".
	Event string `json:"event,omitempty"`
	// OrderID is the order ID's JSON path (json, gjson syntax) or header
	// name (header). Default: none.
	OrderID string `json:"order_id,omitempty"`
	// Amount is the amount's JSON path or header name. Default: none.
	Amount string `json:"amount,omitempty"`
	// Currency is the currency's JSON path or header name. Default: none.
	Currency string `json:"currency,omitempty"`
	// Coupon is the coupon's JSON path or header name. Default: none.
	Coupon string `json:"coupon,omitempty"`
	// AmountMinor says the amount is in minor units (json, regex, header).
	AmountMinor bool `json:"amount_minor,omitempty"`
	// Pattern is a regular expression with named groups order_id, amount,
	// currency and coupon (regex only).
	Pattern string `json:"pattern,omitempty"`
}

// DefaultMaxBody is the default cap on a response copied for inspection.
const DefaultMaxBody = 1 << 20

func (rule *Rule) provision(ctx caddy.Context) error {
	if len(rule.Events) == 0 {
		rule.Events = []string{"purchase"}
	}
	for _, ev := range rule.Events {
		if ev == "" || strings.ContainsAny(ev, "/ \t") {
			return fmt.Errorf("event %q: use a plain name such as purchase, lead or ftd", ev)
		}
	}
	if rule.Status == "" {
		rule.Status = string(order.StatusApproved)
	}
	if s := order.Status(rule.Status); s != order.StatusApproved && s != order.StatusPending {
		return fmt.Errorf("status %q: want approved or pending", rule.Status)
	}
	if rule.MaxBody == 0 {
		rule.MaxBody = DefaultMaxBody
	}
	if rule.MaxBody < 0 {
		return errors.New("negative max_body")
	}
	if rule.DefaultCurrency != "" && order.NormalizeCurrency(rule.DefaultCurrency) == "" {
		return fmt.Errorf("default_currency %q: want a three-letter ISO 4217 code", rule.DefaultCurrency)
	}
	if len(rule.MatcherSetsRaw) == 0 {
		return errors.New("no match: a conversion rule must say which requests are confirmation pages")
	}
	vals, err := provisionValues("conversion "+strings.Join(rule.Events, "+"), rule.Values)
	if err != nil {
		return err
	}
	rule.Values = vals
	mods, err := ctx.LoadModule(rule, "MatcherSetsRaw")
	if err != nil {
		return fmt.Errorf("loading matchers: %w", err)
	}
	if err := rule.matchers.FromInterface(mods); err != nil {
		return err
	}
	for i, s := range rule.From {
		src, err := s.build()
		if err != nil {
			return fmt.Errorf("from %d (%s): %w", i, s.Type, err)
		}
		rule.sources = append(rule.sources, src)
	}
	if rule.OrderID == "" && len(rule.sources) == 0 {
		return errors.New("no order_id and no source: say where the order ID comes from")
	}
	if rule.Response == nil {
		rule.Response = &caddyhttp.ResponseMatcher{StatusCode: []int{2}}
		if len(rule.sources) > 0 {
			rule.Response.Headers = http.Header{"Content-Type": {"text/html*", "application/json*", "application/ld+json*"}}
		}
	}
	return nil
}

func (s *Source) build() (detect.Source, error) {
	switch s.Type {
	case "ga4":
		return detect.GA4{Event: s.Event}, nil
	case "magento":
		return detect.Magento{}, nil
	case "jsonld":
		return detect.JSONLD{}, nil
	case "json":
		if s.OrderID == "" && s.Amount == "" {
			return nil, errors.New("json source needs at least an order_id or amount path")
		}
		return detect.JSON{OrderID: s.OrderID, Amount: s.Amount, Currency: s.Currency, Coupon: s.Coupon, AmountMinor: s.AmountMinor}, nil
	case "regex":
		re, err := detect.NewRegex(s.Pattern)
		if err != nil {
			return nil, err
		}
		re.AmountMinor = s.AmountMinor
		return re, nil
	case "header":
		if s.OrderID == "" && s.Amount == "" {
			return nil, errors.New("header source needs at least an order_id or amount header")
		}
		return detect.Header{OrderID: s.OrderID, Amount: s.Amount, Currency: s.Currency, Coupon: s.Coupon, AmountMinor: s.AmountMinor}, nil
	}
	return nil, fmt.Errorf("unknown source type %q (want ga4, magento, jsonld, json, regex or header)", s.Type)
}

// matchingRules returns the rules whose request matchers match r.
func (h *Handler) matchingRules(r *http.Request) []*Rule {
	var out []*Rule
	for _, rule := range h.Conversions {
		ok, err := rule.matchers.AnyMatchWithError(r)
		if err != nil {
			h.logger.Debug("conversion matcher", zap.Error(err))
			continue
		}
		if ok {
			out = append(out, rule)
		}
	}
	return out
}

func (h *Handler) maxBody(rules []*Rule) int {
	n := 0
	for _, rule := range rules {
		if len(rule.sources) > 0 {
			n = max(n, rule.MaxBody)
		}
	}
	return n
}

// convert reads the orders of the matched rules from the finished response
// and records them. It runs after the response has been written, so it adds
// nothing to the time the visitor waits for the page.
func (h *Handler) convert(r *http.Request, tw *teeWriter, rules []*Rule, sessionID string) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	var page *detect.Page
	var sess *record.Session
	loaded := false
	for _, rule := range rules {
		if !tw.matched(rule) {
			continue
		}
		var f detect.Fields
		if len(rule.sources) > 0 {
			if tw.uninspected() {
				h.app.metrics.uninspected.Inc()
				h.logger.Warn("confirmation page passed on uninspected: the inspection budget is spent by other responses in flight; raise inspection_budget if this repeats",
					zap.Strings("events", rule.Events), zap.String("path", r.URL.Path))
				continue
			}
			if page == nil {
				page = tw.page(h.logger)
			}
			var errs []error
			f, errs = detect.Extract(page, rule.sources)
			for _, err := range errs {
				h.logger.Debug("reading the order from the page", zap.Strings("events", rule.Events), zap.Error(err))
			}
		}
		if repl != nil {
			overlay := func(dst *string, tpl string) {
				if tpl == "" {
					return
				}
				if v := strings.TrimSpace(repl.ReplaceAll(tpl, "")); v != "" {
					*dst = v
				}
			}
			amount := f.Amount
			overlay(&f.OrderID, rule.OrderID)
			overlay(&f.Amount, rule.Amount)
			if f.Amount != amount {
				f.AmountMinor = rule.AmountMinor
			}
			overlay(&f.Currency, rule.Currency)
			overlay(&f.Coupon, rule.Coupon)
		}
		if f.OrderID == "" {
			h.logger.Warn("confirmation page matched but no order ID was found", zap.Strings("events", rule.Events), zap.String("path", r.URL.Path))
			continue
		}
		if !loaded {
			// Read once for all the rules and events of this page.
			loaded = true
			ctx, cancel := h.storageContext(r)
			s, err := h.app.rt.store.Session(ctx, sessionID, now())
			cancel()
			switch {
			case err == nil:
				sess = s
			case !errors.Is(err, store.ErrNotFound):
				h.logger.Warn("confirmation page not recorded: the storage failed", zap.Error(err))
				return
			}
		}
		if sess == nil {
			return // the session expired or was erased: nobody to credit
		}
		if rule.JoinOnly {
			h.link(r, f.OrderID, sess)
			continue
		}
		vals, problems := requestValues(r, rule.Values)
		for _, ev := range rule.Events {
			o := withValues(f.Order(ev, rule.DefaultCurrency), vals, problems)
			o.Source = "page"
			o.Status = order.Status(rule.Status)
			h.record(r, o, sess, gaClientID(r))
		}
	}
}

// record credits an order to the session and queues the postbacks.
func (h *Handler) record(r *http.Request, o order.Order, sess *record.Session, gaID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	res, err := h.app.tracker.Convert(ctx, o, sess, gaID, "")
	if err != nil {
		h.logger.Error("conversion not recorded: the storage failed", zap.String("source", o.Source), zap.String("event", o.Event), zap.Error(err))
		return
	}
	h.app.logConversion(h.logger, res)
}

// link ties an order seen on a hosted checkout's return page to the session.
func (h *Handler) link(r *http.Request, orderID string, sess *record.Session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	res, err := h.app.tracker.Link(ctx, orderID, sess)
	if err != nil {
		h.logger.Error("order not tied to the visitor: the storage failed", zap.Error(err))
		return
	}
	if res.Conversion != nil {
		h.app.logConversion(h.logger, res)
	}
}
