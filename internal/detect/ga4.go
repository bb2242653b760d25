package detect

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/js"
)

// GA4 reads the GA4 purchase event a page sends to Google: a data layer push
//
//	dataLayer.push({ event: 'purchase', ecommerce: { transaction_id: 'T-1', value: 49.9,
//	    currency: 'USD', coupon: 'X', items: [ … ] } })
//
// or a gtag call
//
//	gtag('event', 'purchase', { transaction_id: 'T-1', value: 49.9, currency: 'USD', … })
//
// inside <script> elements, and the legacy Universal Analytics shape
// ecommerce.purchase.actionField.{id, revenue, coupon} with
// ecommerce.purchase.products[] (pushed with or without an event).
//
// Scripts are parsed with a real JavaScript parser and only literals are
// evaluated (objects, arrays, strings, numbers, true/false/null, unary minus,
// and variables bound to such literals earlier on the page, as in
// `var dataLayer_content = {…}; dataLayer.push(dataLayer_content)`); any other
// expression is unknown and its field is treated as not found. The data
// layer is followed the way Google Tag Manager reads it: pushes merge into
// one ecommerce object, `ecommerce: null` clears it, and when several
// purchase events are on a page the last one wins. Scripts that do not
// contain the event name are not parsed at all.
//
// The customer data a page gives Google for enhanced conversions is read
// too: gtag('set', 'user_data', {…}), a user_data object pushed to the data
// layer, or user_data among the purchase parameters, the last one on the
// page winning. Its e-mail, phone_number and address (first_name,
// last_name, city, region, postal_code, country) are hashed at once
// (order.NewCustomer), and sha256_email_address and sha256_phone_number,
// which the page hashed by Google's rules, are kept as Google's forms.
type GA4 struct {
	// Event is the event name to read; "" means "purchase". Sites that name
	// their event differently (GA4_purchase, conversion) set it here.
	Event string
}

// Name returns "ga4".
func (GA4) Name() string { return "ga4" }

var (
	purchaseBytes = []byte("purchase")
	userDataBytes = []byte("user_data")
	// ErrSyntax is wrapped by GA4 errors for scripts that mention the
	// event but are not valid JavaScript (a truncated body often cuts the
	// last script short).
	ErrSyntax = errors.New("javascript syntax error")
)

// Extract returns the fields of the last purchase event on the page.
func (g GA4) Extract(p *Page) (Fields, error) {
	event := g.Event
	if event == "" {
		event = "purchase"
	}
	ev := []byte(event)
	// Every shape read here has the event name or, for Universal
	// Analytics, a "purchase" key in its script, so one byte search decides
	// whether a script (or, first, the whole page: most pages are not
	// confirmation pages) needs parsing.
	mentions := func(b []byte) bool {
		return bytes.Contains(b, ev) || (event != "purchase" && bytes.Contains(b, purchaseBytes))
	}
	if !mentions(p.Body) {
		return Fields{}, nil
	}
	w := ga4Walker{event: event}
	var firstErr error
	for _, s := range p.scripts() {
		if s.kind != kindJS {
			continue
		}
		text := p.text(s)
		if !mentions(text) && !bytes.Contains(text, userDataBytes) {
			continue
		}
		// text has no spare capacity, so the parser's NUL sentinel goes
		// into a copy and the body is never written to.
		ast, err := js.Parse(parse.NewInputBytes(text), js.Options{})
		if err != nil {
			if firstErr == nil {
				firstErr = syntaxError(err)
			}
			continue
		}
		js.Walk(&w, ast)
	}
	if !w.found && firstErr != nil {
		return Fields{}, firstErr
	}
	if w.found && w.userData != nil {
		w.result.Customer = userDataCustomer(w.userData)
	}
	return w.result, nil
}

// syntaxError shortens a parser error to its position and message (the
// parser's own message quotes the offending source line, which may be long).
func syntaxError(err error) error {
	var pe *parse.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: line %d column %d: %s", ErrSyntax, pe.Line, pe.Column, pe.Message)
	}
	return fmt.Errorf("%w: %w", ErrSyntax, err)
}

// ga4Walker visits a script's AST in source order, tracking literal
// bindings and the data layer's ecommerce state across all scripts of a page.
type ga4Walker struct {
	event  string
	ev     evaluator
	ecom   any // merged ecommerce object, nil after ecommerce: null
	result Fields
	found  bool
	// userData is the last user_data object seen on the page.
	userData jsObject
}

// Enter implements js.IVisitor.
func (w *ga4Walker) Enter(n js.INode) js.IVisitor {
	switch n := n.(type) {
	case *js.CallExpr:
		w.call(n)
	case *js.BindingElement:
		if v, ok := n.Binding.(*js.Var); ok && n.Default != nil {
			w.assign(string(v.Name()), n.Default)
		}
	case *js.BinaryExpr:
		if n.Op == js.EqToken {
			w.assign(lastName(n.X), n.Y)
		}
	}
	return w
}

// Exit implements js.IVisitor.
func (w *ga4Walker) Exit(js.INode) {}

// assign handles `name = value`: it binds the name for later references and,
// for `dataLayer = [{…}, …]`, treats the initial entries as pushes.
func (w *ga4Walker) assign(name string, x js.IExpr) {
	if name == "" {
		return
	}
	v := w.ev.eval(x, 0)
	w.ev.bind(name, v)
	if arr, ok := v.([]any); ok && isDataLayerName(name) {
		for _, el := range arr {
			if o, ok := el.(jsObject); ok {
				w.push(o)
			}
		}
	}
}

func (w *ga4Walker) call(n *js.CallExpr) {
	if dot, ok := n.X.(*js.DotExpr); ok && nameOf(dot.Y) == "push" {
		if !isDataLayerName(lastName(dot.X)) {
			return
		}
		for _, a := range n.Args.List {
			if a.Rest {
				continue
			}
			if o, ok := w.ev.eval(a.Value, 0).(jsObject); ok {
				w.push(o)
			}
		}
		return
	}
	if lastName(n.X) != "gtag" || len(n.Args.List) < 3 {
		return
	}
	args := n.Args.List
	command, name := str(w.ev.eval(args[0].Value, 0)), str(w.ev.eval(args[1].Value, 0))
	if command == "set" && name == "user_data" {
		if ud, ok := w.ev.eval(args[2].Value, 0).(jsObject); ok {
			w.userData = ud
		}
		return
	}
	if command != "event" || name != w.event {
		return
	}
	if params, ok := w.ev.eval(args[2].Value, 0).(jsObject); ok {
		if ud, ok := params["user_data"].(jsObject); ok {
			w.userData = ud
		}
		w.candidate(ecommerceFields(params))
	}
}

// push applies one data layer message.
func (w *ga4Walker) push(o jsObject) {
	if ud, ok := o["user_data"].(jsObject); ok {
		w.userData = ud
	}
	ec, hasEc := o["ecommerce"]
	if hasEc {
		switch t := ec.(type) {
		case nil:
			w.ecom = nil
		case jsObject:
			w.ecom = mergeObjects(w.ecom, t)
		}
	}
	isEvent := str(o["event"]) == w.event
	pushedEc, _ := ec.(jsObject)
	_, isUA := get(pushedEc, "purchase", "actionField").(jsObject)
	if !isEvent && !isUA {
		return
	}
	f := ecommerceFields(w.ecom)
	if f.OrderID == "" && isEvent {
		// Some sites put the purchase parameters beside the event rather
		// than under ecommerce.
		f.merge(ecommerceFields(o))
	}
	w.candidate(f)
}

func (w *ga4Walker) candidate(f Fields) {
	if f.OrderID == "" && f.Amount == "" {
		return
	}
	w.result, w.found = f, true
}

// ecommerceFields reads a GA4 ecommerce object (or gtag parameters), or the
// Universal Analytics purchase shape when it has one.
func ecommerceFields(ec any) Fields {
	if af, ok := get(ec, "purchase", "actionField").(jsObject); ok {
		f := Fields{
			OrderID:  str(af["id"]),
			Amount:   str(af["revenue"]),
			Currency: str(get(ec, "currencyCode")),
			Coupon:   str(af["coupon"]),
			Items:    items(get(ec, "purchase", "products"), "id", "name"),
		}
		if f.Currency == "" {
			f.Currency = str(af["currency"])
		}
		return f
	}
	return Fields{
		OrderID:  str(get(ec, "transaction_id")),
		Amount:   str(get(ec, "value")),
		Currency: str(get(ec, "currency")),
		Coupon:   str(get(ec, "coupon")),
		Items:    items(get(ec, "items"), "item_id", "item_name"),
	}
}

// userDataCustomer hashes the customer data of a gtag or data layer
// user_data object. Its address may be one object or a list of them; the
// first is read.
func userDataCustomer(ud jsObject) *order.Customer {
	addr := ud["address"]
	if list, ok := addr.([]any); ok && len(list) > 0 {
		addr = list[0]
	}
	c := order.NewCustomer(order.CustomerInfo{
		Email:      firstString(ud["email"]),
		Phone:      firstString(ud["phone_number"]),
		FirstName:  str(get(addr, "first_name")),
		LastName:   str(get(addr, "last_name")),
		City:       str(get(addr, "city")),
		Region:     str(get(addr, "region")),
		PostalCode: str(get(addr, "postal_code")),
		Country:    str(get(addr, "country")),
	})
	// Values the page hashed itself follow Google's rules: they can stand
	// only for Google's forms.
	var pre order.Customer
	if h := strings.ToLower(firstString(ud["sha256_email_address"])); order.IsHash(h) {
		pre.EmailGoogle = h
	}
	if h := strings.ToLower(firstString(ud["sha256_phone_number"])); order.IsHash(h) {
		pre.PhoneE164 = h
	}
	if pre != (order.Customer{}) {
		c = c.Merge(&pre)
	}
	return c
}

// firstString reads a string, or the first string of a list (gtag takes
// several e-mail addresses and phone numbers as a list).
func firstString(v any) string {
	if list, ok := v.([]any); ok {
		for _, el := range list {
			if s := str(el); s != "" {
				return s
			}
		}
		return ""
	}
	return str(v)
}

// maxItems bounds the lines read from one order.
const maxItems = 500

// items reads a list of item objects; idKey and nameKey differ between GA4
// (item_id, item_name) and Universal Analytics (id, name).
func items(v any, idKey, nameKey string) []order.Item {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil
	}
	out := make([]order.Item, 0, min(len(arr), maxItems))
	for _, el := range arr {
		o, ok := el.(jsObject)
		if !ok {
			continue
		}
		it := order.Item{ID: str(o[idKey]), Name: str(o[nameKey])}
		if it.ID == "" && idKey != "id" {
			it.ID = str(o["id"])
		}
		if it.Name == "" && nameKey != "name" {
			it.Name = str(o["name"])
		}
		it.Price, _ = order.ParseDecimal(str(o["price"]))
		it.Quantity = quantity(str(o["quantity"]))
		out = append(out, it)
		if len(out) == maxItems {
			break
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// quantity reads a whole item count written as 2, "2" or 2.0; anything else
// is 0 (unknown).
func quantity(s string) int64 {
	if s == "" {
		return 0
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	d, err := order.ParseDecimal(s)
	if err != nil {
		return 0
	}
	if n, err := strconv.ParseInt(d.Fixed(0), 10, 64); err == nil && d.Equal(order.Decimal{Coef: n}) {
		return n
	}
	return 0
}

// mergeObjects merges src into a copy of dst the way Google Tag Manager's
// data model does for objects (recursively); arrays and scalars replace.
// Neither argument is modified, since both may be bound to variables.
func mergeObjects(dst any, src jsObject) jsObject {
	d, _ := dst.(jsObject)
	out := make(jsObject, len(d)+len(src))
	for k, v := range d {
		out[k] = v
	}
	for k, v := range src {
		if so, ok := v.(jsObject); ok {
			if do, ok := out[k].(jsObject); ok {
				out[k] = mergeObjects(do, so)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// isDataLayerName reports whether a variable looks like a GTM data layer:
// dataLayer, window.dataLayer, or a renamed one such as dataLayerGA4.
func isDataLayerName(name string) bool {
	return containsFold([]byte(name), "datalayer")
}

// lastName returns the rightmost name of an expression: dataLayer,
// window.dataLayer, window['dataLayer'], (window.dataLayer = …).
func lastName(x js.IExpr) string {
	switch n := x.(type) {
	case *js.Var:
		return string(n.Name())
	case *js.DotExpr:
		return nameOf(n.Y)
	case *js.IndexExpr:
		if l, ok := n.Y.(*js.LiteralExpr); ok && l.TokenType == js.StringToken {
			s, _ := jsUnquote(l.Data)
			return s
		}
	case *js.GroupExpr:
		return lastName(n.X)
	case *js.BinaryExpr:
		if n.Op == js.EqToken {
			return lastName(n.X)
		}
	}
	return ""
}

// nameOf returns the property name on the right of a dot.
func nameOf(x js.IExpr) string {
	switch n := x.(type) {
	case js.LiteralExpr: // the parser stores dot names by value
		return string(n.Data)
	case *js.LiteralExpr:
		return string(n.Data)
	case *js.Var:
		return string(n.Name())
	}
	return ""
}
