package postback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/suggest"
)

// Outcome is what a destination's answer means for a delivery.
type Outcome int

// Delivery outcomes.
const (
	// Delivered: the destination took the conversion.
	Delivered Outcome = iota
	// Retry: a transient failure; try again later.
	Retry
	// Reject: a permanent failure; the delivery goes to dead letters.
	Reject
)

// String names the outcome for logs and the delivery log.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Reject:
		return "rejected"
	}
	return "unknown"
}

// Errors a Render can return besides template errors: ErrRejected makes
// the delivery a dead letter at once with the error as its reason (a
// platform's limit, such as an event too old to report); ErrTransient makes
// it wait and retry (a token endpoint that did not answer). Any other render
// error is permanent too.
var (
	ErrRejected  = errors.New("not sendable")
	ErrTransient = errors.New("temporarily not renderable")
)

// Destination renders conversions for one network and reads its answers.
type Destination interface {
	// Render builds the request for a conversion. It runs at every
	// attempt, with the configuration current then.
	Render(ctx context.Context, c *record.Postback) (record.Request, error)
	// Classify reads the destination's answer.
	Classify(status int, header http.Header, body []byte) (Outcome, string)
	// Supports reports whether the destination can be told of this event
	// and status (for example, refunds only where it takes status updates).
	Supports(event string, status order.Status) bool
}

// ClassifyStatus is the default reading of an HTTP status: 2xx delivered;
// 408, 425, 429 and 5xx transient; any other status permanent.
func ClassifyStatus(status int) Outcome {
	switch {
	case status >= 200 && status < 300:
		return Delivered
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500:
		return Retry
	}
	return Reject
}

// Config configures a destination. Preset picks the dialect; the other
// fields are the user's account values and overrides.
type Config struct {
	// Preset names the dialect: "get" (default), "post", or a network preset.
	Preset string
	// URL is the postback URL template.
	URL string
	// Method overrides the preset's HTTP method.
	Method string
	// Body is a body template; BodyType is "form" or "json".
	Body     string
	BodyType string
	// Headers are header templates.
	Headers map[string]string
	// Params are preset account values (pixel_id, access_token, …).
	Params map[string]string
	// SuccessBody, if set, is a regular expression a 2xx answer body must
	// match to count as delivered; a 2xx that does not match is rejected.
	SuccessBody string
	// Statuses lists the order statuses to report. Default for a plain
	// template: approved and pending, and rejected and refunded too when a
	// template uses {status}.
	Statuses []order.Status
	// Events lists the events to report. Default: every event for a plain
	// template; a preset's own default (purchase only for awin, cj and
	// impact, which also read a comma-separated "events" param).
	// order.EventCancel is reported only where it is listed by name.
	Events []string
	// Client makes the requests a preset sends itself, such as OAuth token
	// refreshes; deliveries are sent by the dispatcher, not with it. It
	// never follows a redirect. Default: a client with a 30-second timeout.
	Client *http.Client
	// Now returns the current time, for the platforms' age limits on
	// events. Default: time.Now.
	Now func() time.Time
}

// presetFunc builds a preset destination.
type presetFunc func(Config) (Destination, error)

// presets holds the network presets by name.
var presets = map[string]presetFunc{
	"get":  newGenericGET,
	"post": newGenericPOST,
}

// PresetNames returns the known preset names, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New builds a destination from config. Template errors, unknown presets and
// missing account values are reported here, at load time.
func New(cfg Config) (Destination, error) {
	name := cfg.Preset
	if name == "" {
		name = "get"
	}
	f, ok := presets[name]
	if !ok {
		return nil, &UnknownPresetError{Preset: name}
	}
	return f(cfg)
}

// UnknownPresetError is a preset name that is not known. Its message
// suggests the nearest known preset and lists them all.
type UnknownPresetError struct {
	// Preset is the name given.
	Preset string
}

// Error names the preset, the nearest known one and every known preset.
func (e *UnknownPresetError) Error() string {
	return fmt.Sprintf("unknown preset %q%s; known: %s", e.Preset, suggest.DidYouMean(e.Preset, PresetNames()), strings.Join(PresetNames(), ", "))
}

// TemplateDestination is the generic destination: a URL template, optional body and
// header templates, and an optional success test on the answer body.
type TemplateDestination struct {
	// Method is the HTTP method, upper case.
	Method string
	// URL is the postback URL template.
	URL *Template
	// Body is the body template, nil for none; ContentType goes with it.
	Body        *Template
	ContentType string
	// Headers are header value templates by canonical header name.
	Headers map[string]*Template
	// Success, if set, must match a 2xx answer's body for it to count.
	Success *regexp.Regexp
	// Statuses are the order statuses reported.
	Statuses []order.Status
	// Events, when not empty, are the only events reported.
	Events []string
}

func newGenericGET(cfg Config) (Destination, error) {
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	return NewTemplateDestination(cfg)
}

func newGenericPOST(cfg Config) (Destination, error) {
	if cfg.Method == "" {
		cfg.Method = http.MethodPost
	}
	return NewTemplateDestination(cfg)
}

// NewTemplateDestination builds a destination from templates in cfg.
func NewTemplateDestination(cfg Config) (*TemplateDestination, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("%w: no url", ErrTemplate)
	}
	d := &TemplateDestination{Method: strings.ToUpper(cfg.Method), Statuses: cfg.Statuses, Events: cfg.Events}
	if d.Method == "" {
		d.Method = http.MethodGet
	}
	var err error
	if d.URL, err = ParseURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Body != "" {
		switch cfg.BodyType {
		case "", "form":
			d.Body, err = ParseForm(cfg.Body)
			d.ContentType = "application/x-www-form-urlencoded"
		case "json":
			d.Body, err = ParseJSON(cfg.Body)
			d.ContentType = "application/json"
		default:
			return nil, fmt.Errorf("body type %q: want form or json", cfg.BodyType)
		}
		if err != nil {
			return nil, err
		}
	}
	for name, v := range cfg.Headers {
		t, err := ParseHeader(v)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", name, err)
		}
		if d.Headers == nil {
			d.Headers = map[string]*Template{}
		}
		d.Headers[http.CanonicalHeaderKey(name)] = t
	}
	if cfg.SuccessBody != "" {
		if d.Success, err = regexp.Compile(cfg.SuccessBody); err != nil {
			return nil, fmt.Errorf("success body pattern: %w", err)
		}
	}
	if len(d.Statuses) == 0 {
		d.Statuses = []order.Status{order.StatusApproved, order.StatusPending}
		// A template that says {status} can tell the network of a refund
		// or a rejection; one that does not would report it as a sale.
		if d.uses("status") {
			d.Statuses = append(d.Statuses, order.StatusRejected, order.StatusRefunded)
		}
	}
	return d, nil
}

// uses reports whether any of the destination's templates uses token.
func (d *TemplateDestination) uses(token string) bool {
	ts := []*Template{d.URL, d.Body}
	for _, t := range d.Headers {
		ts = append(ts, t)
	}
	for _, t := range ts {
		if t != nil && t.Uses(token) {
			return true
		}
	}
	return false
}

// Render implements Destination.
func (d *TemplateDestination) Render(_ context.Context, c *record.Postback) (record.Request, error) {
	u, err := d.URL.Render(c)
	if err != nil {
		return record.Request{}, err
	}
	r := record.Request{Method: d.Method, URL: u, Header: http.Header{}}
	if d.Body != nil {
		body, err := d.Body.Render(c)
		if err != nil {
			return record.Request{}, err
		}
		r.Body = body
		r.Header.Set("Content-Type", d.ContentType)
	}
	for name, t := range d.Headers {
		v, err := t.Render(c)
		if err != nil {
			return record.Request{}, fmt.Errorf("header %s: %w", name, err)
		}
		r.Header.Set(name, v)
	}
	return r, nil
}

// Classify implements Destination.
func (d *TemplateDestination) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	o := ClassifyStatus(status)
	if o == Delivered && d.Success != nil && !d.Success.Match(body) {
		return Reject, "answer body does not match the success pattern"
	}
	return o, ""
}

// Supports implements Destination. A cancellation is reported only when
// the template's events name it.
func (d *TemplateDestination) Supports(event string, status order.Status) bool {
	if len(d.Events) > 0 && !slices.Contains(d.Events, event) {
		return false
	}
	if event == order.EventCancel && len(d.Events) == 0 {
		return false
	}
	return slices.Contains(d.Statuses, status)
}

// Interface guards
var _ Destination = (*TemplateDestination)(nil)
