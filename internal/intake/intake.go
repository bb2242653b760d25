// Package intake reads the conversions that a shop's backend, CRM, call
// centre or tracker reports to the universal postback endpoint. It checks
// who is calling (a secret token, an allowlist of source networks, or both)
// and reads the request's parameters (query string, form or JSON body) into
// an order and the visitor reference it names: a click ID captured earlier,
// or a signed session reference. It is plain Go: the Caddy module hands it
// the request's parts and records the Report it returns.
//
// The errors map onto HTTP answers:
//
//   - ErrForbidden (the client's address is outside the allowlist): 403.
//   - ErrUnauthorized (no token, or a wrong one): 401.
//   - ErrBadInput (no order ID, an amount that is not a number, a currency
//     that is not an ISO 4217 code, …): 400, with the error as the reason.
//
// In every case nothing is recorded. Error messages never include a token.
package intake

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Errors Read and Allowed return; test them with errors.Is.
var (
	// ErrForbidden: the request comes from outside the allowlist.
	ErrForbidden = errors.New("source address not allowed")
	// ErrUnauthorized: the token is missing or wrong.
	ErrUnauthorized = errors.New("missing or wrong token")
	// ErrBadInput: the request cannot be read as a conversion.
	ErrBadInput = errors.New("bad conversion report")
)

// Field is a value the endpoint reads from a request.
type Field string

// Fields of a conversion report.
const (
	// FieldClickID is a click ID captured on a landing URL, of any network.
	FieldClickID Field = "click_id"
	// FieldSession is a signed session reference (the session cookie's
	// value), for senders that kept it instead of a click ID.
	FieldSession Field = "session"
	// FieldOrderID is the order's (or transaction's) ID. Required.
	FieldOrderID Field = "order_id"
	// FieldAmount is the order value.
	FieldAmount Field = "amount"
	// FieldPayout is the commission the sender means the network to be
	// told: the order's value "payout" ({value.payout}), and its amount
	// when no amount is given.
	FieldPayout Field = "payout"
	// FieldCurrency is the ISO 4217 code of the amount.
	FieldCurrency Field = "currency"
	// FieldEvent is the conversion event (purchase, lead, …).
	FieldEvent Field = "event"
	// FieldStatus is the order's status (approved, pending, rejected,
	// refunded, and common synonyms).
	FieldStatus Field = "status"
	// FieldCoupon is the coupon code used.
	FieldCoupon Field = "coupon"
)

// Fields lists every field, in the order the endpoint reads them.
func Fields() []Field {
	return []Field{FieldClickID, FieldSession, FieldOrderID, FieldAmount, FieldPayout, FieldCurrency, FieldEvent, FieldStatus, FieldCoupon}
}

// DefaultNames are the parameter names each field is read from, in order
// of preference: the names trackers and networks use in their postbacks.
var DefaultNames = map[Field][]string{
	FieldClickID:  {"click_id", "clickid", "cid", "subid", "cnv_id"},
	FieldSession:  {"session", "pb_session"},
	FieldOrderID:  {"order_id", "txn_id", "txid", "transaction_id"},
	FieldAmount:   {"amount", "revenue", "sale_amount"},
	FieldPayout:   {"payout"},
	FieldCurrency: {"currency", "cur", "cnv_currency"},
	FieldEvent:    {"event", "goal", "et"},
	FieldStatus:   {"status", "cnv_status"},
	FieldCoupon:   {"coupon_code", "coupon"},
}

// Default token places, used by a Token with no place of its own.
const (
	DefaultTokenParam  = "token"
	DefaultTokenHeader = "X-Postback-Token"
)

// MinTokenLength is the shortest token accepted: a token is a password
// that anyone on the internet may try, so it must be long and random.
const MinTokenLength = 16

// Place says where a request carries a token.
type Place int

// Token places.
const (
	// InParamOrHeader: the parameter DefaultTokenParam (query string or
	// body) or the header DefaultTokenHeader.
	InParamOrHeader Place = iota
	// InParam: the parameter Token.Name, in the query string or the body.
	InParam
	// InHeader: the header Token.Name.
	InHeader
	// InPath: the path segment after the endpoint's path.
	InPath
)

// Token is a secret a sender proves itself with.
type Token struct {
	// Secret is the token itself.
	Secret string
	// In is where the request carries it; Name the parameter or header.
	In   Place
	Name string
}

// Config configures an endpoint.
type Config struct {
	// Tokens are the accepted secret tokens (several during a rotation);
	// a request must carry one of them.
	Tokens []Token
	// Allow lists the source networks a request must come from.
	Allow []netip.Prefix
	// Insecure accepts requests from anyone, with neither tokens nor an
	// allowlist. It must be said explicitly, and only then.
	Insecure bool
	// Names renames fields: the parameter names a field is read from,
	// replacing DefaultNames for that field.
	Names map[Field][]string
	// Event is the event of reports that name none. Default: purchase.
	Event string
	// DefaultCurrency is the currency of reports that name none. Default:
	// none.
	DefaultCurrency string
	// MaxClickIDLength caps click IDs. Default:
	// capture.DefaultMaxClickIDLength.
	MaxClickIDLength int
}

// DefaultEvent is the event of reports that name none.
const DefaultEvent = "purchase"

// Endpoint reads conversion reports for one configured endpoint. It is
// safe for concurrent use.
type Endpoint struct {
	cfg   Config
	names map[Field][]string
	// tokens are the configured tokens with their secrets' digests.
	tokens []token
}

// New checks a configuration and builds its endpoint.
func New(cfg Config) (*Endpoint, error) {
	if len(cfg.Tokens) == 0 && len(cfg.Allow) == 0 && !cfg.Insecure {
		return nil, errors.New("no token and no allow: an endpoint that anyone can call must be declared insecure")
	}
	if cfg.Insecure && (len(cfg.Tokens) > 0 || len(cfg.Allow) > 0) {
		return nil, errors.New("insecure with a token or an allowlist: drop one of them")
	}
	if cfg.Event == "" {
		cfg.Event = DefaultEvent
	}
	ev, err := checkEvent(cfg.Event)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	cfg.Event = ev
	if cfg.DefaultCurrency != "" {
		c := order.NormalizeCurrency(cfg.DefaultCurrency)
		if !order.KnownCurrency(c) {
			return nil, fmt.Errorf("default_currency %q: want an ISO 4217 code such as USD", cfg.DefaultCurrency)
		}
		cfg.DefaultCurrency = c
	}
	if cfg.MaxClickIDLength <= 0 {
		cfg.MaxClickIDLength = capture.DefaultMaxClickIDLength
	}
	cfg.Allow = slices.Clone(cfg.Allow)
	for i, p := range cfg.Allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("allow #%d: not a network", i+1)
		}
		cfg.Allow[i] = p.Masked()
	}
	e := &Endpoint{cfg: cfg, names: map[Field][]string{}}
	owner := map[string]Field{}
	for _, f := range Fields() {
		names := DefaultNames[f]
		if n, ok := cfg.Names[f]; ok {
			names = n
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("param %s: no parameter name", f)
		}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, "&=#? \t") {
				return nil, fmt.Errorf("param %s: %q is not a parameter name", f, n)
			}
			if g, dup := owner[n]; dup && g != f {
				return nil, fmt.Errorf("param %s: parameter %q is read for %s already", f, n, g)
			}
			owner[n] = f
		}
		e.names[f] = names
	}
	for f := range cfg.Names {
		if !slices.Contains(Fields(), f) {
			return nil, fmt.Errorf("param %s: unknown field (want one of %s)", f, fieldList())
		}
	}
	for i, t := range cfg.Tokens {
		tk, err := newToken(t)
		if err != nil {
			return nil, fmt.Errorf("token #%d: %w", i+1, err)
		}
		if tk.param != "" {
			if f, taken := owner[tk.param]; taken {
				return nil, fmt.Errorf("token #%d: parameter %q is read for %s: give the token another name", i+1, tk.param, f)
			}
		}
		e.tokens = append(e.tokens, tk)
	}
	return e, nil
}

// PathToken reports whether a token rides in the path, so that the
// endpoint serves the paths one segment below its own.
func (e *Endpoint) PathToken() bool {
	return slices.ContainsFunc(e.tokens, func(t token) bool { return t.in == InPath })
}

// Request is a received conversion report.
type Request struct {
	// Header holds the request headers.
	Header http.Header
	// RawQuery is the URL's query string, as received (not decoded).
	RawQuery string
	// Body is the request body, already size-capped by the caller.
	Body []byte
	// PathToken is the path segment after the endpoint's path ("" when
	// the request names the endpoint's path itself).
	PathToken string
}

// Report is a conversion report read from a request.
type Report struct {
	// Order is the reported order: Source "endpoint", Event, ID, Amount,
	// Currency, Status, Coupon, and Values["payout"] when a payout was
	// given.
	Order order.Order
	// ClickID is the click ID the sender named, exactly as captured (a
	// '+' stays a '+'), or "".
	ClickID string
	// SessionRef is the session reference the sender named, to be
	// verified before use, or "".
	SessionRef string
}

func fieldList() string {
	var names []string
	for _, f := range Fields() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}
