package webhook

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// GenericConfig configures a webhook from any platform that signs its JSON
// body with an HMAC in a header, read with gjson paths
// (https://github.com/tidwall/gjson/blob/master/SYNTAX.md).
type GenericConfig struct {
	// Config holds Secrets, Tolerance (for TimestampHeader; default 5m) and
	// Event. SessionField is unused: see SessionPath.
	Config
	// Name names the provider in Order.Source ("webhook:<Name>") and in
	// errors; default "generic".
	Name string
	// Insecure accepts unsigned requests. It must be set explicitly and
	// excludes Secrets: anyone who knows the URL can then post orders.
	Insecure bool

	// Header is the signature header, e.g. X-Signature. Several
	// comma-separated signatures in it (or several header lines) are each
	// tried.
	Header string
	// Algorithm is the HMAC hash: sha256 (default), sha1 or sha512.
	Algorithm string
	// Encoding is how the MAC is written: hex (default) or base64.
	Encoding string
	// Prefix is stripped from each signature before decoding, e.g.
	// "sha256=" (compared case-insensitively).
	Prefix string
	// TimestampHeader, when set, names a header holding the signing time in
	// unix seconds (milliseconds are recognised by their size); it must
	// then appear in SignedPayload, and |now-ts| must be within Tolerance.
	TimestampHeader string
	// SignedPayload is the MAC input with {ts} and {body} placeholders;
	// default "{body}", or "{ts}.{body}" with a TimestampHeader.
	SignedPayload string

	// OrderIDPath is the gjson path of the order ID (required).
	OrderIDPath string
	// AmountPath is the path of the amount: a decimal string or number
	// ("1,234.50", 49.9).
	AmountPath string
	// AmountMinor says the amount is in minor units (cents), converted with
	// the currency's exponent.
	AmountMinor bool
	// CurrencyPath is the path of the ISO 4217 currency code.
	CurrencyPath string
	// EventPath is the path of the event type, reported as Event.Topic.
	EventPath string
	// Events, when not empty, lists the event types that are read; others
	// are ignored.
	Events []string
	// StatusPath is the path of the order status. Without it every event is
	// an approved order.
	StatusPath string
	// StatusMap maps raw status values to approved, pending, rejected,
	// refunded or ignore. A raw value that is itself one of those four
	// statuses needs no entry; any other unmapped value is ignored.
	StatusMap map[string]string
	// SessionPath is the path of the session reference.
	SessionPath string
	// EventIDPath is the path of the provider's event or delivery ID, used
	// to drop retries.
	EventIDPath string
	// EmailPath is the path of the customer's email.
	EmailPath string
	// CouponPath is the path of the coupon code.
	CouponPath string
}

// statusIgnore is the StatusMap value that ignores an event.
const statusIgnore = "ignore"

// Generic verifies and parses webhooks described by a GenericConfig.
type Generic struct {
	cfg     GenericConfig
	newHash func() hash.Hash
	enc     sigEncoding
	// payload is SignedPayload split into literal text and placeholders.
	payload []payloadPart
	events  map[string]bool
	status  map[string]string
}

type payloadPart struct {
	lit  string
	kind byte // 0 literal, 't' timestamp, 'b' body
}

// NewGeneric builds a generic HMAC provider and validates its config.
func NewGeneric(cfg GenericConfig) (*Generic, error) {
	if cfg.Name == "" {
		cfg.Name = "generic"
	}
	for i := 0; i < len(cfg.Name); i++ {
		c := cfg.Name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return nil, fmt.Errorf("webhook: generic: name %q: use lowercase letters, digits, '_' and '-'", cfg.Name)
		}
	}
	pfx := "webhook: " + cfg.Name + ": "
	g := &Generic{}
	switch {
	case cfg.Insecure && len(cfg.Secrets) > 0:
		return nil, errors.New(pfx + "insecure endpoint with secrets: drop one of them")
	case cfg.Insecure:
		cfg.Config = withDefaults(cfg.Config)
	default:
		c, err := cfg.Config.normalize(cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("%w (set insecure to accept unsigned webhooks)", err)
		}
		cfg.Config = c
		if cfg.Header = strings.TrimSpace(cfg.Header); cfg.Header == "" {
			return nil, errors.New(pfx + "no signature header configured")
		}
		switch strings.ToLower(cfg.Algorithm) {
		case "", "sha256":
			g.newHash = sha256.New
		case "sha1":
			g.newHash = sha1.New
		case "sha512":
			g.newHash = sha512.New
		default:
			return nil, fmt.Errorf("%salgorithm %q: want sha256, sha1 or sha512", pfx, cfg.Algorithm)
		}
		switch strings.ToLower(cfg.Encoding) {
		case "", "hex":
			g.enc = encHex
		case "base64":
			g.enc = encBase64
		default:
			return nil, fmt.Errorf("%sencoding %q: want hex or base64", pfx, cfg.Encoding)
		}
		tpl := cfg.SignedPayload
		if tpl == "" {
			tpl = "{body}"
			if cfg.TimestampHeader != "" {
				tpl = "{ts}.{body}"
			}
		}
		parts, err := parsePayloadTemplate(tpl)
		if err != nil {
			return nil, fmt.Errorf("%ssigned payload %q: %w", pfx, tpl, err)
		}
		hasTS := strings.Contains(tpl, "{ts}")
		if hasTS && cfg.TimestampHeader == "" {
			return nil, fmt.Errorf("%ssigned payload %q uses {ts} but no timestamp header is configured", pfx, tpl)
		}
		if !hasTS && cfg.TimestampHeader != "" {
			// An unsigned timestamp could be rewritten by anyone replaying
			// the request, so the tolerance would protect nothing.
			return nil, fmt.Errorf("%stimestamp header %q is set but the signed payload %q has no {ts}", pfx, cfg.TimestampHeader, tpl)
		}
		g.payload = parts
	}
	if cfg.OrderIDPath = strings.TrimSpace(cfg.OrderIDPath); cfg.OrderIDPath == "" {
		return nil, errors.New(pfx + "no order ID path configured")
	}
	if len(cfg.Events) > 0 {
		g.events = make(map[string]bool, len(cfg.Events))
		for _, e := range cfg.Events {
			g.events[e] = true
		}
	}
	g.status = make(map[string]string, len(cfg.StatusMap))
	for raw, st := range cfg.StatusMap {
		st = strings.ToLower(strings.TrimSpace(st))
		if st != statusIgnore && !order.Status(st).Valid() {
			return nil, fmt.Errorf("%sstatus map %q → %q: want approved, pending, rejected, refunded or ignore", pfx, raw, st)
		}
		g.status[raw] = st
	}
	g.cfg = cfg
	return g, nil
}

// withDefaults fills the defaults of a Config that has no secrets.
func withDefaults(c Config) Config {
	if c.Tolerance <= 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.Event = strings.TrimSpace(c.Event); c.Event == "" {
		c.Event = DefaultEvent
	}
	return c
}

// parsePayloadTemplate splits "{ts}.{body}" into parts; {body} must occur
// exactly once and {ts} at most once.
func parsePayloadTemplate(tpl string) ([]payloadPart, error) {
	var parts []payloadPart
	bodies, tss := 0, 0
	for rest := tpl; rest != ""; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			parts = append(parts, payloadPart{lit: rest})
			break
		}
		if i > 0 {
			parts = append(parts, payloadPart{lit: rest[:i]})
			rest = rest[i:]
		}
		switch {
		case strings.HasPrefix(rest, "{body}"):
			parts, bodies, rest = append(parts, payloadPart{kind: 'b'}), bodies+1, rest[len("{body}"):]
		case strings.HasPrefix(rest, "{ts}"):
			parts, tss, rest = append(parts, payloadPart{kind: 't'}), tss+1, rest[len("{ts}"):]
		default:
			return nil, errors.New("unknown placeholder (want {ts} or {body})")
		}
	}
	if bodies != 1 {
		return nil, errors.New("{body} must appear exactly once")
	}
	if tss > 1 {
		return nil, errors.New("{ts} may appear once")
	}
	return parts, nil
}

// Name returns the configured name ("generic" by default).
func (g *Generic) Name() string { return g.cfg.Name }

// Verify checks the configured signature header (and timestamp), or only
// the request's shape on an insecure endpoint.
func (g *Generic) Verify(r *Request) error {
	name := g.cfg.Name
	if err := checkShape(name, r, mediaJSON); err != nil {
		return err
	}
	if g.cfg.Insecure {
		return nil
	}
	var sigs []string
	for _, line := range r.Header.Values(g.cfg.Header) {
		for sig := range strings.SplitSeq(line, ",") {
			sig = strings.TrimSpace(sig)
			if len(sig) >= len(g.cfg.Prefix) && strings.EqualFold(sig[:len(g.cfg.Prefix)], g.cfg.Prefix) {
				sig = sig[len(g.cfg.Prefix):]
			}
			if sig != "" {
				sigs = append(sigs, sig)
			}
		}
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%s: %w: no %s header", name, ErrSignature, g.cfg.Header)
	}
	var tsText string
	var ts int64
	if g.cfg.TimestampHeader != "" {
		tsText = strings.TrimSpace(r.Header.Get(g.cfg.TimestampHeader))
		n, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil || n <= 0 || !allDigits(tsText) {
			return fmt.Errorf("%s: %w: missing or invalid %s header", name, ErrSignature, g.cfg.TimestampHeader)
		}
		if n >= 1e12 { // milliseconds
			n /= 1000
		}
		ts = n
	}
	if !macMatch(g.newHash, g.cfg.Secrets, sigs, g.enc, func(w io.Writer) {
		for _, p := range g.payload {
			switch p.kind {
			case 'b':
				w.Write(r.Body)
			case 't':
				io.WriteString(w, tsText)
			default:
				io.WriteString(w, p.lit)
			}
		}
	}) {
		return fmt.Errorf("%s: %w: HMAC does not match", name, ErrSignature)
	}
	if g.cfg.TimestampHeader != "" {
		return checkTimestamp(name, ts, r.now(), g.cfg.Tolerance, false)
	}
	return nil
}

// Parse reads the configured fields. A missing order ID is ErrMalformed; an
// unreadable amount or currency is kept as a Problem.
func (g *Generic) Parse(r *Request) (Event, error) {
	name := g.cfg.Name
	if err := validJSON(name, r.Body); err != nil {
		return Event{}, err
	}
	root := gjson.ParseBytes(r.Body)
	get := func(path string) gjson.Result {
		if path == "" {
			return gjson.Result{}
		}
		return root.Get(path)
	}
	ev := Event{ID: scalarString(get(g.cfg.EventIDPath)), Topic: scalarString(get(g.cfg.EventPath))}
	if g.events != nil && !g.events[ev.Topic] {
		ev.Reason = "event type not used"
		return ev, nil
	}
	st := string(order.StatusApproved)
	if g.cfg.StatusPath != "" {
		raw := scalarString(get(g.cfg.StatusPath))
		mapped, ok := g.status[raw]
		switch {
		case ok:
			st = mapped
		case order.Status(raw).Valid():
			st = raw
		default:
			ev.Reason = "status " + strconv.Quote(truncate(raw, 32)) + " not mapped"
			return ev, nil
		}
	}
	if st == statusIgnore {
		ev.Reason = "status ignored by the status map"
		return ev, nil
	}
	o := order.Order{
		Source:     "webhook:" + name,
		Event:      g.cfg.Event,
		EventID:    ev.ID,
		Status:     order.Status(st),
		ID:         strings.TrimSpace(scalarString(get(g.cfg.OrderIDPath))),
		Customer:   order.NewCustomer(order.CustomerInfo{Email: scalarString(get(g.cfg.EmailPath))}),
		Coupon:     scalarString(get(g.cfg.CouponPath)),
		SessionRef: strings.TrimSpace(scalarString(get(g.cfg.SessionPath))),
	}
	if o.ID == "" {
		return Event{}, fmt.Errorf("%s: %w: no order ID at %q", name, ErrMalformed, g.cfg.OrderIDPath)
	}
	if g.cfg.CurrencyPath != "" {
		setCurrency(&o, scalarString(get(g.cfg.CurrencyPath)))
	}
	if g.cfg.AmountPath != "" {
		if g.cfg.AmountMinor {
			setMinorAmount(&o, get(g.cfg.AmountPath), g.cfg.AmountPath)
		} else {
			setDecimalAmount(&o, get(g.cfg.AmountPath), g.cfg.AmountPath)
		}
	}
	ev.Kind = KindOrder
	if o.Status == order.StatusRejected || o.Status == order.StatusRefunded {
		ev.Kind = KindStatus
	}
	ev.Order = o
	return ev, nil
}
