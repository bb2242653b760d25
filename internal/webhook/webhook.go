// Package webhook verifies and parses e-commerce platform webhooks (Stripe,
// Shopify, WooCommerce, Paddle Billing, Lemon Squeezy, Gumroad and a generic
// HMAC scheme) and digital marketplaces' instant payment notifications
// (ClickBank, JVZoo, WarriorPlus) into order records. It is plain Go: the
// Caddy module hands it the raw body and headers and acts on the Event it
// returns.
//
// A caller runs Verify first and Parse only when Verify succeeded. The
// errors map onto HTTP answers:
//
//   - ErrBadRequest (empty body, wrong content type, not a notification of
//     the platform): 400, nothing recorded.
//   - ErrSignature (missing, invalid or mismatched signature, stale
//     timestamp): 401, nothing recorded.
//   - ErrMalformed (authentic but unparseable): record the body for
//     inspection and answer 2xx (5xx if it cannot be recorded), because the
//     provider would only resend the same bytes.
//
// Error messages never include a secret.
package webhook

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/suggest"
)

// Errors every provider wraps; test them with errors.Is.
var (
	// ErrSignature means the signature (Gumroad's URL token, WarriorPlus's
	// security key, ClickBank's encryption) is missing, malformed or wrong,
	// or its timestamp is outside the tolerance.
	ErrSignature = errors.New("invalid webhook signature")
	// ErrMalformed means the webhook is authentic but its body cannot be
	// understood.
	ErrMalformed = errors.New("malformed webhook")
	// ErrBadRequest means the request is not a webhook of this provider at
	// all: empty body, wrong content type, or none of the fields that every
	// notification of the platform has.
	ErrBadRequest = errors.New("bad webhook request")
)

// Defaults applied by the constructors when a Config field is zero.
const (
	// DefaultSessionField is the checkout metadata key that carries the
	// session reference.
	DefaultSessionField = "pb_session"
	// DefaultEvent is the conversion event name given to webhook orders.
	DefaultEvent = "purchase"
	// DefaultTolerance is the timestamp tolerance for providers that sign
	// time (Stripe, Paddle, generic with a timestamp header). It matches
	// stripe-go's DefaultTolerance.
	DefaultTolerance = 5 * time.Minute
)

// maxClickIDs bounds how many query or metadata entries are copied into
// Order.ClickIDs, so a crafted landing URL cannot blow up memory.
const maxClickIDs = 64

// Request is a received webhook: the raw body (already size-capped by the
// caller), headers, the URL path and query, and the time of receipt.
type Request struct {
	// Header holds the request headers as received.
	Header http.Header
	// Body is the raw body, exactly the bytes the provider signed.
	Body []byte
	// Path is the URL path (Gumroad's token is its last segment).
	Path string
	// Query is the URL query.
	Query url.Values
	// Now is the time of receipt; zero means time.Now().
	Now time.Time
}

func (r *Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// Kind says what an event means for conversions.
type Kind int

// Kinds of events. The zero value is KindIgnore so that a forgotten
// assignment never turns into a conversion.
const (
	// KindIgnore is a ping, a topic that is not used, or an unpaid session;
	// Event.Reason says which.
	KindIgnore Kind = iota
	// KindOrder is a new or updated order (status approved or pending).
	KindOrder
	// KindStatus is a refund, cancellation or rejection of an order that
	// may be known already (status rejected or refunded).
	KindStatus
)

// String names the kind for logs.
func (k Kind) String() string {
	switch k {
	case KindOrder:
		return "order"
	case KindStatus:
		return "status"
	case KindIgnore:
		return "ignore"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a verified, parsed webhook.
type Event struct {
	// Kind says whether this is an order, a status change or ignored.
	Kind Kind
	// ID is the provider's event or delivery ID, for dropping retries.
	ID string
	// Topic is the provider's event type (checkout.session.completed,
	// orders/paid, …).
	Topic string
	// Order is filled for KindOrder and KindStatus: Source
	// "webhook:<provider>", Event, ID, Amount, Currency, Status, Customer,
	// SessionRef, ClickIDs, Coupon.
	Order order.Order
	// Reason says why an event is ignored, or notes something about a kept
	// one (a test sale).
	Reason string
}

// Provider verifies and parses one platform's webhooks.
type Provider interface {
	// Name is the provider's short name (stripe, shopify, …).
	Name() string
	// Verify checks the request's shape and signature over the raw body.
	Verify(r *Request) error
	// Parse turns a verified request into an Event. It never panics on
	// any input.
	Parse(r *Request) (Event, error)
}

// Config configures one of the built-in providers.
type Config struct {
	// Secrets are the signing secrets (for Gumroad: URL tokens). Several are
	// allowed during rotation; any may match.
	Secrets []string
	// Tolerance is the timestamp tolerance where the provider signs time
	// (Stripe, Paddle); 0 means DefaultTolerance.
	Tolerance time.Duration
	// SessionField is the checkout metadata / custom-data key that carries
	// the session reference; default DefaultSessionField.
	SessionField string
	// Event is the conversion event name; default DefaultEvent.
	Event string
}

// normalize applies the defaults and validates the secrets.
func (c Config) normalize(provider string) (Config, error) {
	if len(c.Secrets) == 0 {
		return c, fmt.Errorf("webhook: %s: no secret configured", provider)
	}
	secrets := make([]string, len(c.Secrets))
	for i, s := range c.Secrets {
		if err := checkSecret(s); err != nil {
			return c, fmt.Errorf("webhook: %s: secret #%d: %w", provider, i+1, err)
		}
		secrets[i] = s
	}
	c.Secrets = secrets
	if c.Tolerance < 0 {
		return c, fmt.Errorf("webhook: %s: negative tolerance %v", provider, c.Tolerance)
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	c.SessionField = strings.TrimSpace(c.SessionField)
	if c.SessionField == "" {
		c.SessionField = DefaultSessionField
	}
	c.Event = strings.TrimSpace(c.Event)
	if c.Event == "" {
		c.Event = DefaultEvent
	}
	return c, nil
}

// checkSecret rejects empty secrets and ones with surrounding white space: a
// trailing newline from an env file would otherwise fail every delivery
// with nothing in the logs but "signature mismatch".
func checkSecret(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if strings.TrimSpace(s) != s {
		return errors.New("has leading or trailing white space")
	}
	return nil
}

// New builds a built-in provider by name: stripe, shopify, woocommerce,
// paddle, lemonsqueezy, gumroad, clickbank, jvzoo or warriorplus (case and
// the aliases Lookup knows do not matter). The generic provider is built
// with NewGeneric.
func New(name string, cfg Config) (Provider, error) {
	canonical, ok := Lookup(name)
	if !ok || canonical == GenericName {
		return nil, fmt.Errorf("webhook: %w", &UnknownProviderError{Provider: name})
	}
	return builders[canonical](cfg)
}

// GenericName names the generic provider, built with NewGeneric.
const GenericName = "generic"

// builders are the built-in providers, by canonical name.
var builders = map[string]func(Config) (Provider, error){
	"stripe": builder(NewStripe), "shopify": builder(NewShopify), "woocommerce": builder(NewWooCommerce),
	"paddle": builder(NewPaddle), "lemonsqueezy": builder(NewLemonSqueezy), "gumroad": builder(NewGumroad),
	"clickbank": builder(NewClickBank), "jvzoo": builder(NewJVZoo), "warriorplus": builder(NewWarriorPlus),
}

// builder adapts a provider's constructor to builders; a failed one
// returns a nil Provider, not a typed nil.
func builder[P Provider](f func(Config) (P, error)) func(Config) (Provider, error) {
	return func(cfg Config) (Provider, error) {
		p, err := f(cfg)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// aliases are other spellings of the providers' names.
var aliases = map[string]string{
	"woo": "woocommerce", "lemon_squeezy": "lemonsqueezy", "lemon-squeezy": "lemonsqueezy",
	"warrior_plus": "warriorplus", "warrior-plus": "warriorplus",
}

// Lookup returns the canonical name of a provider given by any of its
// names, case ignored: a built-in provider's (woo for woocommerce) or
// GenericName. It reports false for an unknown provider.
func Lookup(name string) (string, bool) {
	name = strings.ToLower(name)
	if a, ok := aliases[name]; ok {
		name = a
	}
	if _, ok := builders[name]; ok || name == GenericName {
		return name, true
	}
	return "", false
}

// Names lists the built-in providers New accepts (generic is built with
// NewGeneric).
func Names() []string {
	return []string{"stripe", "shopify", "woocommerce", "paddle", "lemonsqueezy", "gumroad", "clickbank", "jvzoo", "warriorplus"}
}

// ProviderNames lists every provider a webhook can name: the built-in
// ones and GenericName.
func ProviderNames() []string { return append(Names(), GenericName) }

// UnknownProviderError is a webhook provider name that is not known. Its
// message lists every provider, generic included, and suggests the
// nearest.
type UnknownProviderError struct {
	// Provider is the name given.
	Provider string
}

// Error names the provider, the nearest known one and every provider.
func (e *UnknownProviderError) Error() string {
	return fmt.Sprintf("unknown provider %q%s; want one of %s", e.Provider,
		suggest.DidYouMean(strings.ToLower(e.Provider), ProviderNames()), strings.Join(ProviderNames(), ", "))
}

// Media types checked by checkShape.
const (
	mediaJSON = "application/json"
	mediaForm = "application/x-www-form-urlencoded"
)

// checkShape rejects an empty body and a Content-Type that is present but
// not the expected one. A missing Content-Type is tolerated: the signature
// is the real check, and some relays drop the header.
func checkShape(provider string, r *Request, want string) error {
	if len(r.Body) == 0 {
		return fmt.Errorf("%s: %w: empty body", provider, ErrBadRequest)
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	if !mediaIs(ct, want) {
		return fmt.Errorf("%s: %w: content type %q, want %s", provider, ErrBadRequest, truncate(ct, 64), want)
	}
	return nil
}

// mediaIs compares the media type of a Content-Type value without
// allocating; for JSON any "+json" suffix type also matches.
func mediaIs(ct, want string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if strings.EqualFold(ct, want) {
		return true
	}
	return want == mediaJSON && len(ct) > 5 && strings.EqualFold(ct[len(ct)-5:], "+json")
}

// truncate shortens untrusted values quoted in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// headerAny returns the first non-empty value among the given header names.
func headerAny(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// validJSON returns ErrMalformed unless body is one JSON object.
func validJSON(provider string, body []byte) error {
	if !gjson.ValidBytes(body) {
		return fmt.Errorf("%s: %w: body is not valid JSON", provider, ErrMalformed)
	}
	if !gjson.ParseBytes(body).IsObject() {
		return fmt.Errorf("%s: %w: body is not a JSON object", provider, ErrMalformed)
	}
	return nil
}

// idString reads an ID that a platform sends as a JSON string or as an
// integer. Numbers are taken from their raw text, because a float64
// round-trip would corrupt IDs above 2^53.
func idString(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return strings.TrimSpace(r.Str)
	case gjson.Number:
		if isInteger(r.Raw) {
			return r.Raw
		}
	}
	return ""
}

// scalarString renders a JSON string, number or boolean as text; objects,
// arrays and null give "".
func scalarString(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number, gjson.True, gjson.False:
		return r.Raw
	}
	return ""
}

func isInteger(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
	}
	return s != "" && allDigits(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// objectString finds key in a JSON object by exact name. It walks the object
// instead of building a gjson path because a configured key may hold path
// syntax (".", "*", "?").
func objectString(obj gjson.Result, key string) string {
	var out string
	if !obj.IsObject() {
		return ""
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		if k.Str == key {
			out = scalarString(v)
			return false
		}
		return true
	})
	return out
}

// setDecimalAmount parses a decimal-string amount into o, recording a
// problem instead of failing: the order is still worth keeping.
func setDecimalAmount(o *order.Order, r gjson.Result, field string) {
	s := scalarString(r)
	if s == "" {
		if r.Exists() && r.Type != gjson.Null {
			o.Invalid = append(o.Invalid, field+": not a number")
		}
		return
	}
	setDecimalText(o, s, field)
}

// setMinorAmount parses an amount in minor units (integer or integer string)
// into o using o.Currency's exponent.
func setMinorAmount(o *order.Order, r gjson.Result, field string) {
	s := scalarString(r)
	if s == "" {
		if r.Exists() && r.Type != gjson.Null {
			o.Invalid = append(o.Invalid, field+": not a number")
		}
		return
	}
	d, err := order.ParseMinor(s, o.Currency)
	if err != nil {
		o.Invalid = append(o.Invalid, field+": "+err.Error())
		return
	}
	o.Amount, o.HasAmount = d, true
}

// setCurrency normalizes a currency code into o, noting a bad one.
func setCurrency(o *order.Order, raw string) {
	o.Currency = order.NormalizeCurrency(raw)
	if o.Currency == "" && raw != "" {
		o.Invalid = append(o.Invalid, "currency: not an ISO 4217 code: "+strconv.Quote(truncate(raw, 16)))
	}
}

// queryClickIDs copies the query parameters of a landing URL (absolute or
// relative) into a map; the caller keeps only known click parameters.
func queryClickIDs(landing string) map[string]string {
	i := strings.IndexByte(landing, '?')
	if i < 0 {
		return nil
	}
	q := landing[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	vals, _ := url.ParseQuery(q) // keep what parsed; a stray bad escape must not lose the rest
	return firstValues(vals, "")
}

// firstValues flattens url.Values to the first value per key, skipping
// skip, empty values and anything beyond maxClickIDs.
func firstValues(vals url.Values, skip string) map[string]string {
	var out map[string]string
	for k, v := range vals {
		if k == "" || k == skip || len(v) == 0 || v[0] == "" {
			continue
		}
		if out == nil {
			out = make(map[string]string, min(len(vals), maxClickIDs))
		}
		if len(out) >= maxClickIDs {
			break
		}
		out[k] = v[0]
	}
	return out
}

// parseTime reads an event time sent as unix seconds or RFC 3339.
func parseTime(r gjson.Result) time.Time {
	switch r.Type {
	case gjson.Number:
		if n, err := strconv.ParseInt(r.Raw, 10, 64); err == nil && n > 0 {
			return time.Unix(n, 0).UTC()
		}
	case gjson.String:
		if t, err := time.Parse(time.RFC3339Nano, r.Str); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// checkTimestamp applies a tolerance to a signed unix timestamp. With
// pastOnly, a timestamp ahead of the clock passes (stripe-go's rule);
// otherwise |now-ts| must be within tolerance (Paddle's rule).
func checkTimestamp(provider string, ts int64, now time.Time, tol time.Duration, pastOnly bool) error {
	age := now.Sub(time.Unix(ts, 0))
	if age > tol {
		return fmt.Errorf("%s: %w: timestamp %s old, tolerance %s", provider, ErrSignature, age.Round(time.Second), tol)
	}
	if !pastOnly && age < -tol { // not -age > tol: -age overflows when age saturates
		return fmt.Errorf("%s: %w: timestamp %s in the future, tolerance %s", provider, ErrSignature, (-age).Round(time.Second), tol)
	}
	return nil
}

// decodeHex decodes s, which must be exactly 2*len(dst) hex digits (either
// case), into dst without allocating.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeBase64MAC decodes a standard base64 MAC of n bytes (padded or not)
// into dst[:n].
func decodeBase64MAC(dst []byte, s string) bool {
	s = strings.TrimRight(s, "=")
	if base64.RawStdEncoding.DecodedLen(len(s)) != len(dst) {
		return false
	}
	n, err := base64.RawStdEncoding.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

// sigEncoding is how a provider writes its MAC in a header.
type sigEncoding int

const (
	encHex sigEncoding = iota
	encBase64
)

// macMatch computes HMAC(secret, message) for each secret, where write
// feeds the message, and reports whether any candidate signature (decoded
// per enc) equals any of them. Every pair is compared in constant time.
func macMatch(newHash func() hash.Hash, secrets, sigs []string, enc sigEncoding, write func(io.Writer)) bool {
	var buf [sha512.Size]byte
	matched := false
	for _, secret := range secrets {
		m := hmac.New(newHash, []byte(secret))
		write(m)
		want := m.Sum(buf[:0:0])
		for _, sig := range sigs {
			got := buf[:len(want)]
			var ok bool
			if enc == encBase64 {
				ok = decodeBase64MAC(got, sig)
			} else {
				ok = decodeHex(got, sig)
			}
			if ok && hmac.Equal(want, got) {
				matched = true
			}
		}
	}
	return matched
}
