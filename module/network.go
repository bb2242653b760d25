package module

import (
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

// Network configures one click source and where its conversions are sent.
type Network struct {
	// Preset names the postback dialect: "get" (a plain URL template, the
	// default), "post", or a network preset such as "everflow" or
	// "meta_capi". A preset also brings the network's usual click-ID
	// parameters.
	Preset string `json:"preset,omitempty"`
	// ClickParams are the landing-URL query parameters that carry this
	// network's click ID, matched case-sensitively. Default: the preset's,
	// or those of the built-in network with the same name, unless
	// ClickCookies are set.
	ClickParams []string `json:"click_params,omitempty"`
	// ClickCookies are first-party cookies in which the network's own
	// script keeps the visitor's click ID (Rewardful's rewardful.referral,
	// FirstPromoter's _fprom_tid). They are read on any request of a
	// visitor who has them, and each value is captured once per session,
	// validated and capped as query click IDs are; the click counts from
	// when it is first seen. Default: the preset's (or the built-in
	// network's), unless ClickParams are set.
	ClickCookies []*ClickCookie `json:"click_cookies,omitempty"`
	// Consent is what a visitor must have granted for this network's
	// clicks to be captured, besides the global requirement: purpose
	// names of the consent option, TCF purpose numbers, or vendor:<id>.
	// Default: none.
	Consent []string `json:"consent,omitempty"`
	// Role is "affiliate" (competes for the conversion) or "platform" (told
	// of every conversion it has a click for). Default: the preset's, else
	// affiliate.
	Role string `json:"role,omitempty"`
	// Window is the attribution window. Default: 30 days.
	Window caddy.Duration `json:"window,omitempty"`
	// URL is the postback URL template, with tokens such as {click_id},
	// {order_id} and {amount}; {env.*} placeholders are replaced at load.
	// Default: none for get and post (required); a preset's own host.
	URL string `json:"url,omitempty"`
	// Method overrides the preset's HTTP method. Default: the preset's.
	Method string `json:"method,omitempty"`
	// Body is a request body template. Default: the preset's (none for get).
	Body string `json:"body,omitempty"`
	// BodyType is how Body is escaped and sent: "form" or "json".
	// Default: form.
	BodyType string `json:"body_type,omitempty"`
	// Headers are request header templates. Default: none.
	Headers map[string]string `json:"headers,omitempty"`
	// Params are the preset's account values (pixel_id, access_token, …).
	// Default: none; a preset says which it requires.
	Params map[string]string `json:"params,omitempty"`
	// SuccessBody is a regular expression a 2xx answer's body must match to
	// count as delivered. Default: none (any 2xx is success).
	SuccessBody string `json:"success_body,omitempty"`
	// Events limits the events reported to this network. Default: all.
	Events []string `json:"events,omitempty"`
	// MaxAge is how long a failing delivery is retried before it becomes a
	// dead letter. Default: 72h.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// Concurrency bounds parallel postbacks to this network; a change
	// applies at the next reload. Default: 8.
	Concurrency int `json:"concurrency,omitempty"`
	// RebillPeriod is how long after a subscription's first sale its
	// rebills are credited to this network. Default: the subscription's
	// lifetime.
	RebillPeriod caddy.Duration `json:"rebill_period,omitempty"`
}

// ClickCookie is a cookie that holds a network's click ID.
type ClickCookie struct {
	// Name is the cookie's name.
	Name string `json:"name"`
	// Field is the path of the click ID when the cookie holds a JSON
	// object (percent-encoded or not), such as "id". Default: none (the
	// value is the click ID).
	Field string `json:"field,omitempty"`
}

// networkName is what a network may be called: it is used in store keys,
// metrics labels and the admin API.
var networkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// capturePresetFor maps postback presets to the built-in click sources
// whose names differ; a preset named as a click source (google_ads,
// pinterest, rewardful, …) is its own.
var capturePresetFor = map[string]string{
	"meta_capi":     "meta",
	"ga4_mp":        "google_ads",
	"microsoft_ads": "microsoft",
}

// DefaultWindow is a network's attribution window when none is set.
const DefaultWindow = 30 * 24 * time.Hour

// provision fills defaults and builds the capture and postback sides. It
// returns the network's secret values, to be masked wherever shown.
func (n *Network) provision(name string, env *envExpander) (capture.Network, postback.Destination, []string, error) {
	cn, dest, cfg, err := n.build(name, env)
	if err != nil {
		return capture.Network{}, nil, nil, err
	}
	return cn, dest, postback.Secrets(cfg), nil
}

// Check builds the network as loading the configuration will, but with
// each {env.*} placeholder replaced by a stand-in value, so that a
// configuration front end can report mistakes in templates and preset
// values (with their line) before the environment is known. It reports
// whether a stand-in was used: an error about a value that came from the
// environment may then be the stand-in's, and only loading can tell. The
// network is not changed.
func (n *Network) Check(name string) (standIns bool, err error) {
	c := *n
	env := &envExpander{standIn: envStandIn}
	_, _, _, err = c.build(name, env)
	return env.standInUsed, err
}

// envStandIn is what Check puts in place of environment placeholders:
// digits, which pass as an account ID or a token wherever presets check
// their form.
const envStandIn = "1234567890"

func (n *Network) build(name string, env *envExpander) (capture.Network, postback.Destination, postback.Config, error) {
	if !networkName.MatchString(name) {
		return capture.Network{}, nil, postback.Config{}, fmt.Errorf("network name %q: use lower-case letters, digits, '_' and '-'", name)
	}
	preset, ok := capture.Presets[name]
	if cp, has := capturePresetFor[n.Preset]; has {
		preset, ok = capture.Presets[cp]
	} else if p, has := capture.Presets[n.Preset]; has {
		preset, ok = p, true
	}
	if len(n.ClickParams) == 0 && len(n.ClickCookies) == 0 {
		if !ok {
			return capture.Network{}, nil, postback.Config{}, fmt.Errorf("network %s: no click_param or click_cookie, and no built-in network of that name or preset", name)
		}
		n.ClickParams = preset.Params
		for _, c := range preset.Cookies {
			n.ClickCookies = append(n.ClickCookies, &ClickCookie{Name: c.Name, Field: c.Field})
		}
	}
	if n.Role == "" {
		n.Role = preset.Role
		if n.Role == "" {
			n.Role = "affiliate"
		}
	}
	if n.Role != "affiliate" && n.Role != "platform" {
		return capture.Network{}, nil, postback.Config{}, fmt.Errorf("network %s: role %q: want affiliate or platform", name, n.Role)
	}
	if n.Window == 0 {
		n.Window = caddy.Duration(DefaultWindow)
	}
	if n.Window < 0 {
		return capture.Network{}, nil, postback.Config{}, fmt.Errorf("network %s: negative window", name)
	}
	if n.Concurrency < 0 {
		return capture.Network{}, nil, postback.Config{}, fmt.Errorf("network %s: negative concurrency", name)
	}
	cfg := postback.Config{Preset: n.Preset, Method: n.Method, BodyType: n.BodyType, SuccessBody: n.SuccessBody, Events: n.Events,
		Client: presetClient()}
	var err error
	expand := func(what, v string) string {
		if err != nil {
			return ""
		}
		var out string
		out, err = env.expand(fmt.Sprintf("network %s: %s", name, what), v)
		return out
	}
	cfg.URL, cfg.Body = expand("url", n.URL), expand("body", n.Body)
	if len(n.Headers) > 0 {
		cfg.Headers = map[string]string{}
		for k, v := range n.Headers {
			cfg.Headers[k] = expand("header "+k, v)
		}
	}
	if len(n.Params) > 0 {
		cfg.Params = map[string]string{}
		for k, v := range n.Params {
			cfg.Params[k] = expand(k, v)
		}
	}
	if err != nil {
		return capture.Network{}, nil, postback.Config{}, err
	}
	dest, err := postback.New(cfg)
	if err != nil {
		return capture.Network{}, nil, postback.Config{}, fmt.Errorf("network %s: %w", name, err)
	}
	cn := capture.Network{Name: name, Params: n.ClickParams, Window: time.Duration(n.Window), Role: n.Role}
	for _, c := range n.ClickCookies {
		cn.Cookies = append(cn.Cookies, capture.ClickCookie{Name: c.Name, Field: c.Field})
	}
	return cn, dest, cfg, nil
}

// presetClient is the HTTP client presets make their own requests with
// (OAuth token refreshes): the one postbacks are sent with, which follows
// no redirect to another host and sends no Referer. One for the process,
// so its connections are shared across reloads.
var presetClient = sync.OnceValue(func() *http.Client { return outbox.NewClient(presetClientTimeout) })

// presetClientTimeout bounds the wait for a preset's own request's answer
// headers; presets bound the whole request themselves.
const presetClientTimeout = 30 * time.Second
