package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// minGumroadToken is the shortest URL token accepted: the token is the only
// thing authenticating a Gumroad ping, so it must not be guessable.
const minGumroadToken = 16

// Gumroad verifies and parses Gumroad Ping (sale notification) requests.
//
// Gumroad signs nothing. The endpoint URL ends in a secret token (the last
// path segment, configured in Config.Secrets), compared in constant time; a
// request whose path ends otherwise is ErrSignature.
//
// Order ID: sale_id. Event ID: "gumroad_<sale_id>_<sale|refund|dispute>":
// a ping has no delivery ID, Gumroad's hourly retries resend the same sale,
// and a later refund ping of the same sale must not be mistaken for a retry.
type Gumroad struct {
	cfg    Config
	tokens [][sha256.Size]byte
}

// NewGumroad builds a Gumroad provider. cfg.Secrets are URL tokens of at
// least 16 characters from [A-Za-z0-9._~-]; cfg.Tolerance is unused.
func NewGumroad(cfg Config) (*Gumroad, error) {
	c, err := cfg.normalize("gumroad")
	if err != nil {
		return nil, err
	}
	g := &Gumroad{cfg: c}
	for i, t := range c.Secrets {
		if err := checkToken(t); err != nil {
			return nil, fmt.Errorf("webhook: gumroad: token #%d: %w", i+1, err)
		}
		// Comparing digests keeps the comparison constant-time even when
		// the lengths differ.
		g.tokens = append(g.tokens, sha256.Sum256([]byte(t)))
	}
	return g, nil
}

func checkToken(t string) error {
	if len(t) < minGumroadToken {
		return fmt.Errorf("shorter than %d characters", minGumroadToken)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return errors.New("has characters outside [A-Za-z0-9._~-]")
		}
	}
	return nil
}

// Name returns "gumroad".
func (g *Gumroad) Name() string { return "gumroad" }

// Verify checks that the form-encoded request arrived on a path whose last
// segment is one of the tokens.
func (g *Gumroad) Verify(r *Request) error {
	if err := checkShape("gumroad", r, mediaForm); err != nil {
		return err
	}
	p := strings.TrimRight(r.Path, "/")
	tok := p[strings.LastIndexByte(p, '/')+1:]
	if tok == "" {
		return fmt.Errorf("gumroad: %w: no token in the URL path", ErrSignature)
	}
	sum := sha256.Sum256([]byte(tok))
	matched := 0
	for i := range g.tokens {
		matched |= subtle.ConstantTimeCompare(sum[:], g.tokens[i][:])
	}
	if matched != 1 {
		return fmt.Errorf("gumroad: %w: URL token does not match", ErrSignature)
	}
	return nil
}

// Parse reads a sale ping: an approved order, or refunded when
// refunded=true, or refunded when disputed=true and the dispute was not won
// (a chargeback takes the money back). price is in the minor units of
// currency (USD cents when currency is absent). test=true keeps the order
// but notes "test sale" in Problems and Reason.
func (g *Gumroad) Parse(r *Request) (Event, error) {
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		return Event{}, fmt.Errorf("gumroad: %w: form body: %v", ErrMalformed, err)
	}
	saleID := strings.TrimSpace(form.Get("sale_id"))
	if saleID == "" {
		return Event{}, fmt.Errorf("gumroad: %w: no sale_id", ErrMalformed)
	}
	ev := Event{Topic: "sale", Kind: KindOrder}
	o := order.Order{
		Source: "webhook:gumroad",
		Event:  g.cfg.Event,
		ID:     saleID,
		Status: order.StatusApproved,
		Customer: order.NewCustomer(order.CustomerInfo{
			Email: form.Get("email"), FullName: form.Get("full_name"),
		}),
		Coupon: form.Get("offer_code"),
	}
	switch {
	case form.Get("refunded") == "true":
		ev.Topic, ev.Kind, o.Status = "refund", KindStatus, order.StatusRefunded
	case form.Get("disputed") == "true" && form.Get("dispute_won") != "true":
		ev.Topic, ev.Kind, o.Status = "dispute", KindStatus, order.StatusRefunded
	}
	ev.ID = "gumroad_" + saleID + "_" + ev.Topic
	o.EventID = ev.ID
	cur := form.Get("currency")
	if cur == "" {
		cur = "usd"
	}
	setCurrency(&o, cur)
	if price := strings.TrimSpace(form.Get("price")); price != "" {
		if d, err := order.ParseMinor(price, o.Currency); err == nil {
			o.Amount, o.HasAmount = d, true
		} else {
			o.Invalid = append(o.Invalid, "price: "+err.Error())
		}
	}
	if t, err := time.Parse(time.RFC3339, form.Get("sale_timestamp")); err == nil {
		o.OccurredAt = t.UTC()
	}
	params := gumroadURLParams(form)
	o.SessionRef = strings.TrimSpace(params[g.cfg.SessionField])
	delete(params, g.cfg.SessionField)
	if len(params) > 0 {
		o.ClickIDs = params
	}
	if form.Get("test") == "true" {
		o.Problems = append(o.Problems, "test sale")
		ev.Reason = "test sale"
	}
	ev.Order = o
	return ev, nil
}

// gumroadURLParams collects the buyer's product-URL parameters, which
// Gumroad's documentation shows as a Ruby-hash-like string
// ({'campaignid' : 'c123'}) and which form encoders send as
// url_params[campaignid]=c123. Both are read, as is a JSON object string.
func gumroadURLParams(form url.Values) map[string]string {
	out := map[string]string{}
	if s := form.Get("url_params"); s != "" {
		parseLooseHash(s, out)
	}
	for k, v := range form {
		name, ok := strings.CutPrefix(k, "url_params[")
		if !ok || len(v) == 0 || len(out) >= maxClickIDs {
			continue
		}
		name, ok = strings.CutSuffix(name, "]")
		if ok && name != "" && v[0] != "" {
			out[name] = v[0]
		}
	}
	return out
}

// parseLooseHash reads 'key' : 'value' / "key"=>"value" / JSON pairs from a
// hash-like string into out. Values may be percent-encoded, as Gumroad's
// example shows, and are decoded when they decode cleanly.
func parseLooseHash(s string, out map[string]string) {
	if gjson.Valid(s) {
		gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
			if val := scalarString(v); k.Str != "" && val != "" {
				out[k.Str] = val
			}
			return len(out) < maxClickIDs
		})
		return
	}
	for len(out) < maxClickIDs {
		key, rest, ok := nextQuoted(s)
		if !ok {
			return
		}
		rest = strings.TrimLeft(rest, " \t\r\n")
		switch {
		case strings.HasPrefix(rest, "=>"):
			rest = rest[2:]
		case strings.HasPrefix(rest, ":"):
			rest = rest[1:]
		default:
			s = rest // a quoted value without a key: resume after it
			continue
		}
		rest = strings.TrimLeft(rest, " \t\r\n")
		var val string
		if rest != "" && (rest[0] == '\'' || rest[0] == '"') {
			val, rest, ok = nextQuoted(rest)
			if !ok {
				return
			}
		} else {
			// A bare value (a number, nil) runs to the next comma or brace.
			end := strings.IndexAny(rest, ",}")
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		if dec, err := url.QueryUnescape(val); err == nil {
			val = dec
		}
		if key != "" && val != "" && val != "nil" {
			out[key] = val
		}
		s = rest
	}
}

// nextQuoted finds the next '…' or "…" string in s and returns its content
// and what follows it. There are no escapes in Gumroad's hash strings.
func nextQuoted(s string) (content, rest string, ok bool) {
	i := strings.IndexAny(s, `'"`)
	if i < 0 {
		return "", "", false
	}
	q := s[i]
	j := strings.IndexByte(s[i+1:], q)
	if j < 0 {
		return "", "", false
	}
	return s[i+1 : i+1+j], s[i+1+j+1:], true
}
