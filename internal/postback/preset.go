package postback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/suggest"
)

// ErrPresetConfig is wrapped by every preset configuration error (a missing
// or unknown account value, a bad base URL, an unsupported status).
var ErrPresetConfig = errors.New("bad preset config")

// errorf builds a preset configuration error.
func errorf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrPresetConfig}, a...)...)
}

// presetParams holds each network preset's account values.
var presetParams = map[string]paramSpec{}

// register adds a network preset; each preset file calls it from init.
func register(name string, spec paramSpec, f presetFunc) {
	if _, dup := presets[name]; dup {
		panic("postback: preset " + name + " registered twice")
	}
	presets[name] = f
	presetParams[name] = spec
}

// ParamNames returns every account value name a network preset reads from
// Config.Params (pixel_id, nid, …), sorted, so a config front end can take
// them as options. Families such as Everflow's event_id_<event> are not
// listed; they go through a generic param option.
func ParamNames() []string {
	seen := map[string]bool{}
	for _, k := range commonParams {
		seen[k] = true
	}
	for _, spec := range presetParams {
		for _, list := range [][]string{spec.required, spec.optional} {
			for _, k := range list {
				seen[k] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// paramSpec lists the account values a preset reads from Config.Params.
type paramSpec struct {
	required []string
	optional []string
	// prefixes are families of optional keys, such as "event_id_" for
	// Everflow's per-event IDs.
	prefixes []string
	// secrets are the values that must never be shown (access tokens, API
	// secrets, keys in a URL path): see Secrets.
	secrets []string
}

// commonParams are read by every network preset.
var commonParams = []string{"events", "domain"}

// checkParams reports missing required values, else unknown keys, so a
// typo such as "pixelid" fails at load time instead of firing without it.
func checkParams(preset string, cfg Config, spec paramSpec) error {
	var missing []string
	for _, k := range spec.required {
		if strings.TrimSpace(cfg.Params[k]) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return &ParamError{Preset: preset, Missing: missing}
	}
	known := map[string]bool{}
	for _, list := range [][]string{spec.required, spec.optional, commonParams} {
		for _, k := range list {
			known[k] = true
		}
	}
	var unknown []string
next:
	for k := range cfg.Params {
		if known[k] {
			continue
		}
		for _, p := range spec.prefixes {
			if strings.HasPrefix(k, p) && len(k) > len(p) {
				continue next
			}
		}
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		all := append(append(append([]string{}, spec.required...), spec.optional...), commonParams...)
		for _, p := range spec.prefixes {
			all = append(all, p+"<event>")
		}
		return &ParamError{Preset: preset, Unknown: unknown, Known: all}
	}
	return nil
}

// ParamError is a preset's account values that are missing or unknown; it
// wraps ErrPresetConfig. A front end can point at the values it names.
type ParamError struct {
	// Preset is the preset's name.
	Preset string
	// Missing are required values not given; when there are any, Unknown
	// is not checked.
	Missing []string
	// Unknown are values the preset does not read, sorted; Known lists
	// those it does.
	Unknown []string
	Known   []string
}

// Error names the missing values, or the unknown ones with the nearest
// known one and every known value.
func (e *ParamError) Error() string {
	if len(e.Missing) > 0 {
		return fmt.Sprintf("%v: preset %s needs %s", ErrPresetConfig, e.Preset, strings.Join(e.Missing, ", "))
	}
	hint := ""
	if len(e.Unknown) == 1 {
		hint = suggest.DidYouMean(e.Unknown[0], e.Known)
	}
	return fmt.Sprintf("%v: preset %s does not know %s%s; known: %s",
		ErrPresetConfig, e.Preset, strings.Join(e.Unknown, ", "), hint, strings.Join(e.Known, ", "))
}

// Unwrap returns ErrPresetConfig.
func (e *ParamError) Unwrap() error { return ErrPresetConfig }

// endpoint is where a preset sends its requests: a URL template whose
// scheme, host and path are literal, followed by the preset's own query
// parameters.
type endpoint struct {
	tmpl *Template
	// hasQuery is true when the user's URL already carries a query, so the
	// preset's parameters continue it with '&'.
	hasQuery bool
}

// baseOptions says how a preset finds its endpoint.
type baseOptions struct {
	// def is the preset's default scheme and host ("https://www.awin1.com");
	// empty for trackers, where every customer has a tracking domain.
	def string
	// path is the preset's default path, used when the user's URL has none.
	path string
	// reserved are the query keys the preset sets itself; the user's URL
	// may not set them too.
	reserved []string
}

// resolveEndpoint builds a preset's endpoint from Config.URL or the domain
// param. Config.URL replaces the default scheme and host; its path, if not
// empty or "/", replaces the preset's path; its query (tokens allowed) is
// kept and the preset's parameters are appended. The domain param is a
// shorthand for "https://<domain>".
func resolveEndpoint(preset string, cfg Config, o baseOptions) (endpoint, error) {
	raw := strings.TrimSpace(cfg.URL)
	if d := strings.TrimSpace(cfg.Params["domain"]); d != "" {
		if raw != "" {
			return endpoint{}, fmt.Errorf("%w: preset %s: give url or domain, not both", ErrPresetConfig, preset)
		}
		if strings.ContainsAny(d, "/?#@{}\\ ") {
			return endpoint{}, fmt.Errorf("%w: preset %s: domain %q must be a bare host name", ErrPresetConfig, preset, d)
		}
		raw = "https://" + d
	}
	if raw == "" {
		if o.def == "" {
			return endpoint{}, fmt.Errorf("%w: preset %s needs url or domain (your tracking domain)", ErrPresetConfig, preset)
		}
		raw = o.def
	}
	if strings.Contains(raw, "#") {
		return endpoint{}, fmt.Errorf("%w: preset %s: url %q may not have a fragment", ErrPresetConfig, preset, raw)
	}
	head, query, hasQuery := strings.Cut(raw, "?")
	if strings.ContainsAny(head, "{}") {
		return endpoint{}, fmt.Errorf("%w: preset %s: url %q: tokens may only stand in the query", ErrPresetConfig, preset, raw)
	}
	u, err := url.Parse(head)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return endpoint{}, fmt.Errorf("%w: preset %s: url %q: want http(s)://host[/path]", ErrPresetConfig, preset, raw)
	}
	if u.Path == "" || u.Path == "/" {
		head = u.Scheme + "://" + u.Host + o.path
	}
	full := head
	if hasQuery {
		full += "?" + query
		// Keys are literal (ParseURL refuses tokens in them), so the keys
		// can be read from the template with its braces taken out.
		q, err := url.ParseQuery(strings.NewReplacer("{", "", "}", "").Replace(query))
		if err != nil {
			return endpoint{}, fmt.Errorf("%w: preset %s: url query %q: %w", ErrPresetConfig, preset, query, err)
		}
		for _, k := range o.reserved {
			if _, ok := q[k]; ok {
				return endpoint{}, fmt.Errorf("%w: preset %s sets %s itself; leave it out of the url", ErrPresetConfig, preset, k)
			}
		}
	}
	t, err := ParseURL(full)
	if err != nil {
		return endpoint{}, fmt.Errorf("preset %s: %w", preset, err)
	}
	return endpoint{tmpl: t, hasQuery: hasQuery && query != ""}, nil
}

// field is one query or form parameter a preset sends.
type field struct {
	key string
	// value returns the parameter's value, or false to leave it out.
	value func(c *record.Postback) (string, bool)
}

// tok sends a token's value, even when empty (the network expects the key).
func tok(name string) func(*record.Postback) (string, bool) {
	return func(c *record.Postback) (string, bool) {
		v, _ := value(c, name)
		return v, true
	}
}

// optTok sends a token's value only when it is not empty.
func optTok(name string) func(*record.Postback) (string, bool) {
	return func(c *record.Postback) (string, bool) {
		v, _ := value(c, name)
		return v, v != ""
	}
}

// lit sends a fixed value from the preset's config.
func lit(v string) func(*record.Postback) (string, bool) {
	return func(*record.Postback) (string, bool) { return v, true }
}

// optLit sends a fixed value when it is not empty.
func optLit(v string) func(*record.Postback) (string, bool) {
	return func(*record.Postback) (string, bool) { return v, v != "" }
}

// appendFields writes key=value pairs, each escaped as a query component,
// the first after sep (none if sep is 0), the others after '&'.
func appendFields(b *strings.Builder, sep byte, fields []field, c *record.Postback) {
	for _, f := range fields {
		v, ok := f.value(c)
		if !ok {
			continue
		}
		if sep != 0 {
			b.WriteByte(sep)
		}
		sep = '&'
		b.WriteString(url.QueryEscape(f.key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
}

func fieldKeys(fields []field) []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// render fills the endpoint and appends the fields as query parameters.
func (e endpoint) render(c *record.Postback, fields []field) (string, error) {
	base, err := e.tmpl.Render(c)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(base) + 32*len(fields))
	b.WriteString(base)
	sep := byte('?')
	if e.hasQuery {
		sep = '&'
	}
	appendFields(&b, sep, fields, c)
	return b.String(), nil
}

// support decides which conversions a preset is told of.
type support struct {
	// events is nil for every event, else the accepted event names.
	events map[string]bool
	// statuses the destination takes; refunds and rejections only where
	// the network accepts status updates.
	statuses map[order.Status]bool
}

// newSupport reads Config.Events, else the "events" param (comma-separated
// event names, or "*" for all; default defEvents), and Config.Statuses
// (default approved and pending, those of them the preset can report), and
// refuses statuses the preset cannot report.
func newSupport(preset string, cfg Config, defEvents string, capable ...order.Status) (support, error) {
	s := support{statuses: map[order.Status]bool{}}
	ev := strings.TrimSpace(cfg.Params["events"])
	if len(cfg.Events) > 0 {
		ev = strings.Join(cfg.Events, ",")
	}
	if ev == "" {
		ev = defEvents
	}
	if ev != "*" {
		s.events = map[string]bool{}
		for _, e := range strings.Split(ev, ",") {
			if e = strings.TrimSpace(e); e != "" {
				s.events[e] = true
			}
		}
	}
	can := map[order.Status]bool{}
	for _, st := range capable {
		can[st] = true
	}
	want := cfg.Statuses
	if len(want) == 0 {
		// Default: approved and pending orders, as far as the preset can
		// report them (commission programs take paid sales only).
		for _, st := range []order.Status{order.StatusApproved, order.StatusPending} {
			if can[st] {
				want = append(want, st)
			}
		}
	}
	for _, st := range want {
		if !can[st] {
			return support{}, fmt.Errorf("%w: preset %s cannot report %s orders", ErrPresetConfig, preset, st)
		}
		s.statuses[st] = true
	}
	// A preset that takes refunds takes them whether they come as a status
	// update or as a "refund" event.
	if len(cfg.Statuses) == 0 {
		for _, st := range capable {
			s.statuses[st] = true
		}
	}
	return s, nil
}

// refundLike reports whether a conversion undoes an earlier one.
func refundLike(event string, status order.Status) bool {
	return event == "refund" || status == order.StatusRefunded || status == order.StatusRejected
}

// allows reports whether the preset is told of (event, status). A "refund"
// event counts as a refunded status and passes the event filter, since it
// undoes an event that did pass it. A cancellation passes only an event
// list that names it: "*" does not take it, since a destination that
// counts sales would read it as a rejected sale.
func (s support) allows(event string, status order.Status) bool {
	if event == "refund" {
		return s.statuses[order.StatusRefunded]
	}
	if event == order.EventCancel && !s.events[event] {
		return false
	}
	if s.events != nil && !s.events[event] {
		return false
	}
	return s.statuses[status]
}

// eventTime is when the order happened if the source said, else when the
// conversion was detected.
func eventTime(c *record.Postback) time.Time {
	if !c.Order.OccurredAt.IsZero() {
		return c.Order.OccurredAt
	}
	return c.Time
}

// amountOrZero formats the order amount for networks whose amount parameter
// is mandatory (a lead with no value is worth 0).
func amountOrZero(c *record.Postback) string {
	if !c.Order.HasAmount {
		return order.Decimal{}.ForCurrency(c.Order.Currency)
	}
	return c.Order.Amount.ForCurrency(c.Order.Currency)
}

// newTrackerGET builds the common tracker preset: no account values of its
// own, a per-customer domain (url or domain required), one GET with fields
// in the query at path, every event reported, approved and pending only.
func newTrackerGET(name string, cfg Config, spec paramSpec, path string, fields []field) (Destination, error) {
	if err := checkParams(name, cfg, spec); err != nil {
		return nil, err
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{path: path, reserved: fieldKeys(fields)})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &queryPreset{method: "GET", ep: ep, fields: fields, sup: sup}, nil
}

// queryPreset is a preset that reports a conversion as one request whose
// parameters are all in the URL query (affiliate networks and trackers).
type queryPreset struct {
	method   string
	ep       endpoint
	fields   []field
	sup      support
	classify func(status int, header http.Header, body []byte) (Outcome, string)
}

// Render implements Destination.
func (d *queryPreset) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	u, err := d.ep.render(c, d.fields)
	if err != nil {
		return record.Request{}, err
	}
	return record.Request{Method: d.method, URL: u, Header: http.Header{}}, nil
}

// Classify implements Destination.
func (d *queryPreset) Classify(status int, header http.Header, body []byte) (Outcome, string) {
	if d.classify != nil {
		return d.classify(status, header, body)
	}
	return ClassifyStatus(status), ""
}

// Supports implements Destination.
func (d *queryPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*queryPreset)(nil)

// snippet shortens an answer body for a classification reason.
func snippet(body []byte) string {
	const max = 200
	s := strings.TrimSpace(string(body))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
