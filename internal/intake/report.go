package intake

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Source is the order source of reports ("endpoint").
const Source = "endpoint"

// Limits on report values besides click IDs and order IDs.
const (
	maxEventLength   = 64
	maxCouponLength  = 255
	maxSessionLength = 200
)

// Read authenticates a request and reads its conversion report. The token
// is checked before anything else is read, so a caller without one learns
// nothing of the fields; the caller checks the allowlist (Allowed) before
// it reads the body.
func (e *Endpoint) Read(r *Request) (Report, error) {
	p, perr := readParams(r)
	if err := e.authenticate(r, p); err != nil {
		return Report{}, err
	}
	if perr != nil {
		return Report{}, perr
	}
	var rep Report
	o := &rep.Order
	o.Source, o.Status = Source, order.StatusApproved

	id, err := e.text(p, FieldOrderID)
	if err != nil {
		return Report{}, err
	}
	if id == "" {
		return Report{}, fmt.Errorf("%w: no order ID: send it as %s", ErrBadInput, e.nameList(FieldOrderID))
	}
	if err := checkText(id, order.MaxIDLength); err != nil {
		return Report{}, fmt.Errorf("%w: order ID: %v", ErrBadInput, err)
	}
	o.ID = id

	if rep.ClickID, err = e.clickID(p); err != nil {
		return Report{}, err
	}
	if rep.SessionRef, err = e.text(p, FieldSession); err != nil {
		return Report{}, err
	}
	if err := checkText(rep.SessionRef, maxSessionLength); err != nil {
		return Report{}, fmt.Errorf("%w: session reference: %v", ErrBadInput, err)
	}

	if o.Event, err = e.text(p, FieldEvent); err != nil {
		return Report{}, err
	}
	if o.Event == "" {
		o.Event = e.cfg.Event
	} else if o.Event, err = checkEvent(o.Event); err != nil {
		return Report{}, fmt.Errorf("%w: event: %v", ErrBadInput, err)
	}

	status, err := e.text(p, FieldStatus)
	if err != nil {
		return Report{}, err
	}
	if status != "" {
		s, ok := statusWords[strings.ToLower(status)]
		if !ok {
			return Report{}, fmt.Errorf("%w: status %s: want approved, pending, rejected or refunded", ErrBadInput, quoted(status))
		}
		o.Status = s
	}

	payout, hasPayout, err := e.amounts(p, o)
	if err != nil {
		return Report{}, err
	}

	cur, err := e.text(p, FieldCurrency)
	if err != nil {
		return Report{}, err
	}
	switch {
	case cur != "":
		c := order.NormalizeCurrency(cur)
		if !order.KnownCurrency(c) {
			return Report{}, fmt.Errorf("%w: currency %s is not an ISO 4217 code such as USD", ErrBadInput, quoted(cur))
		}
		o.Currency = c
	default:
		o.Currency = e.cfg.DefaultCurrency
	}
	if hasPayout {
		o.Values = map[string]string{ValuePayout: payout.ForCurrency(o.Currency)}
	}

	if o.Coupon, err = e.text(p, FieldCoupon); err != nil {
		return Report{}, err
	}
	if err := checkText(o.Coupon, maxCouponLength); err != nil {
		return Report{}, fmt.Errorf("%w: coupon: %v", ErrBadInput, err)
	}

	if problems := o.Check(); len(problems) > 0 {
		return Report{}, fmt.Errorf("%w: %s", ErrBadInput, strings.Join(problems, "; "))
	}
	return rep, nil
}

// ValuePayout names the order value that carries a reported payout
// ({value.payout} in a network's template).
const ValuePayout = "payout"

// amounts reads the amount and the payout into o (the payout is the amount
// when the report gives none) and returns the payout.
func (e *Endpoint) amounts(p params, o *order.Order) (order.Decimal, bool, error) {
	read := func(f Field) (order.Decimal, bool, error) {
		s, err := e.text(p, f)
		if err != nil || s == "" {
			return order.Decimal{}, false, err
		}
		d, err := order.ParseDecimal(s)
		if err != nil {
			return order.Decimal{}, false, fmt.Errorf("%w: %s %s is not a number", ErrBadInput, f, quoted(s))
		}
		return d, true, nil
	}
	amount, hasAmount, err := read(FieldAmount)
	if err != nil {
		return order.Decimal{}, false, err
	}
	payout, hasPayout, err := read(FieldPayout)
	if err != nil {
		return order.Decimal{}, false, err
	}
	update := o.Status == order.StatusRefunded || o.Status == order.StatusRejected
	if hasPayout && payout.Coef < 0 && !update {
		return order.Decimal{}, false, fmt.Errorf("%w: negative payout %s for a %s", ErrBadInput, payout, o.Event)
	}
	if hasPayout && !hasAmount {
		amount, hasAmount = payout, true
	}
	o.Amount, o.HasAmount = amount, hasAmount
	return payout, hasPayout, nil
}

// clickID reads the click ID, decoded as a click ID (a '+' stays a '+')
// and checked as capture checks one.
func (e *Endpoint) clickID(p params) (string, error) {
	v, name, err := e.lookup(p, FieldClickID, param.clickID)
	if err != nil || v == "" {
		return "", err
	}
	if err := capture.ValidClickID(v, e.cfg.MaxClickIDLength); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBadInput, name, err)
	}
	return v, nil
}

// text reads a field as trimmed text, "" when absent.
func (e *Endpoint) text(p params, f Field) (string, error) {
	v, _, err := e.lookup(p, f, param.text)
	return strings.TrimSpace(v), err
}

// lookup returns the value of a field under the first of its names that
// the request has, and that name. A name sent twice with different values
// is an error: the report is ambiguous.
func (e *Endpoint) lookup(p params, f Field, decode func(param) (string, error)) (string, string, error) {
	for _, name := range e.names[f] {
		vs := p[name]
		if len(vs) == 0 {
			continue
		}
		var out string
		for i, pv := range vs {
			v, err := decode(pv)
			if err != nil {
				return "", name, fmt.Errorf("%w: %s: bad escape", ErrBadInput, name)
			}
			if i > 0 && v != out {
				return "", name, fmt.Errorf("%w: %s sent %d times with different values", ErrBadInput, name, len(vs))
			}
			out = v
		}
		return out, name, nil
	}
	return "", "", nil
}

// nameList names a field's parameters for an error message.
func (e *Endpoint) nameList(f Field) string {
	names := e.names[f]
	if len(names) == 1 {
		return names[0]
	}
	return names[0] + " (or " + strings.Join(names[1:], ", ") + ")"
}

// statusWords maps the statuses senders write to order statuses.
var statusWords = func() map[string]order.Status {
	m := map[string]order.Status{}
	for status, words := range map[order.Status][]string{
		order.StatusApproved: {"approved", "approve", "confirmed", "paid", "completed", "complete", "sale", "success"},
		order.StatusPending:  {"pending", "hold", "on_hold", "processing"},
		order.StatusRejected: {"rejected", "declined", "cancelled", "canceled", "reversed", "invalid"},
		order.StatusRefunded: {"refunded", "refund", "chargeback"},
	} {
		for _, w := range words {
			m[w] = status
		}
	}
	return m
}()

// checkEvent lower-cases an event name and checks that it is one plain
// word: letters, digits, '_', '-' and '.', at most maxEventLength bytes.
func checkEvent(ev string) (string, error) {
	ev = strings.ToLower(strings.TrimSpace(ev))
	if ev == "" || len(ev) > maxEventLength {
		return "", fmt.Errorf("%s: want a name of 1 to %d characters", quoted(ev), maxEventLength)
	}
	for i := 0; i < len(ev); i++ {
		c := ev[i]
		if c != '_' && c != '-' && c != '.' && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return "", fmt.Errorf("%s: use a plain name such as purchase, lead or ftd", quoted(ev))
		}
	}
	return ev, nil
}

// checkText rejects a value over max bytes or with control characters.
func checkText(v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%d bytes, over %d", len(v), max)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return errors.New("control characters")
		}
	}
	return nil
}

// quoted renders an untrusted value for an error message.
func quoted(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strconv.Quote(s)
}
