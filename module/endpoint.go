package module

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/intake"
	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Endpoint is the universal postback endpoint: a URL that a shop's backend,
// CRM, call centre or tracker calls (GET or POST: query string, form or
// JSON) to report a conversion for a click ID captured here, or for a
// session reference. The conversion goes through the same attribution,
// deduplication and outbox as one seen on a confirmation page.
type Endpoint struct {
	// Path is the endpoint's exact URL path; with a token in the path, the
	// paths one segment below it ("/postback/in/<token>").
	Path string `json:"path"`
	// Tokens are the secret tokens a request must carry one of (several
	// during a rotation). Default: none.
	Tokens []*EndpointToken `json:"tokens,omitempty"`
	// Allow lists the networks (CIDR, a single address, or
	// "private_ranges") requests must come from, by the client address
	// Caddy determined (trusted proxies taken into account). Default: none.
	Allow []string `json:"allow,omitempty"`
	// Insecure accepts requests from anyone: required when there is
	// neither a token nor an allowlist, refused with either. Default: false.
	Insecure bool `json:"insecure,omitempty"`
	// Params renames fields: for a field (click_id, session, order_id,
	// amount, payout, currency, event, status, coupon), the parameter names
	// it is read from, replacing the usual ones. Default: none.
	Params map[string][]string `json:"params,omitempty"`
	// Event is the event of reports that name none. Default: purchase.
	Event string `json:"event,omitempty"`
	// DefaultCurrency is the currency of reports that name none.
	// Default: none.
	DefaultCurrency string `json:"default_currency,omitempty"`
	// Relay names a network that is sent a postback for a click ID that
	// was never captured here, with that click ID. Default: none (such a
	// report is recorded, credited to nobody).
	Relay string `json:"relay,omitempty"`
	// Values are per-offer values for the networks' templates
	// ({value.<name>}); a payout the report gives wins over a configured
	// value "payout". Default: none.
	Values map[string]string `json:"values,omitempty"`
	// MaxBody caps the request body. Default: 64 KiB.
	MaxBody int64 `json:"max_body,omitempty"`

	intake *intake.Endpoint
	masker *postback.Masker
	// relayWindow is the relay network's attribution window.
	relayWindow time.Duration
}

// EndpointToken is one secret token of an endpoint.
type EndpointToken struct {
	// Secret is the token: at least 16 characters; {env.*} placeholders
	// are replaced at load.
	Secret string `json:"secret"`
	// In says where requests carry it: "query" (a parameter of the query
	// string or the body, named Name), "header" (the header Name) or
	// "path" (the segment after the endpoint's path). Default: the
	// parameter "token" or the header X-Postback-Token.
	In string `json:"in,omitempty"`
	// Name is the parameter or header name.
	Name string `json:"name,omitempty"`
}

// Endpoint defaults and names.
const (
	// DefaultEndpointMaxBody caps an endpoint request's body.
	DefaultEndpointMaxBody = 64 << 10
	// endpointProvider is the endpoint's name in the webhook log, the
	// metrics and the hourly tally.
	endpointProvider = "endpoint"
)

// endpointPrefix is an endpoint with a token in the path.
type endpointPrefix struct {
	prefix string
	ep     *Endpoint
}

func (h *Handler) provisionEndpoints() error {
	if len(h.Endpoints) == 0 {
		return nil
	}
	h.endpoints = map[string]*Endpoint{}
	for _, ep := range h.Endpoints {
		if err := ep.provision(h.app); err != nil {
			return fmt.Errorf("endpoint %s: %w", ep.Path, err)
		}
		if _, dup := h.webhooks[ep.Path]; dup {
			return fmt.Errorf("endpoint %s: path declared twice", ep.Path)
		}
		if _, dup := h.endpoints[ep.Path]; dup {
			return fmt.Errorf("endpoint %s: path declared twice", ep.Path)
		}
		h.endpoints[ep.Path] = ep
		if ep.intake.PathToken() {
			h.endpointPrefixes = append(h.endpointPrefixes, endpointPrefix{prefix: strings.TrimSuffix(ep.Path, "/") + "/", ep: ep})
		}
	}
	return nil
}

func (ep *Endpoint) provision(a *App) error {
	if !strings.HasPrefix(ep.Path, "/") {
		return errors.New("path must start with /")
	}
	if ep.MaxBody == 0 {
		ep.MaxBody = DefaultEndpointMaxBody
	}
	if ep.MaxBody < 0 {
		return errors.New("negative max_body")
	}
	env := &envExpander{}
	cfg := intake.Config{Insecure: ep.Insecure, Event: ep.Event, DefaultCurrency: ep.DefaultCurrency, MaxClickIDLength: a.MaxClickIDLength}
	var secrets []string
	for i, t := range ep.Tokens {
		v, err := env.expand(fmt.Sprintf("token #%d", i+1), t.Secret)
		if err != nil {
			return err
		}
		tk := intake.Token{Secret: v, Name: t.Name}
		switch t.In {
		case "":
		case "query":
			tk.In = intake.InParam
		case "header":
			tk.In = intake.InHeader
		case "path":
			tk.In = intake.InPath
		default:
			return fmt.Errorf("token #%d: in %q: want query, header or path", i+1, t.In)
		}
		cfg.Tokens = append(cfg.Tokens, tk)
		secrets = append(secrets, v)
	}
	ep.masker = postback.NewMasker(secrets...)
	for _, s := range ep.Allow {
		if s == "private_ranges" {
			for _, c := range caddyhttp.PrivateRangesCIDR() {
				cfg.Allow = append(cfg.Allow, netip.MustParsePrefix(c))
			}
			continue
		}
		p, err := parseNetwork(s)
		if err != nil {
			return fmt.Errorf("allow %q: %w", s, err)
		}
		cfg.Allow = append(cfg.Allow, p)
	}
	if len(ep.Params) > 0 {
		cfg.Names = map[intake.Field][]string{}
		for f, names := range ep.Params {
			cfg.Names[intake.Field(f)] = names
		}
	}
	in, err := intake.New(cfg)
	if err != nil {
		return ep.masked(err)
	}
	ep.intake = in
	if ep.Relay != "" {
		n, ok := a.Networks[ep.Relay]
		if !ok {
			return fmt.Errorf("relay %s: no such network (configured: %s)", ep.Relay, orNone(strings.Join(sortedKeys(a.Networks), ", ")))
		}
		ep.relayWindow = time.Duration(n.Window)
	}
	vals, err := provisionValues("endpoint "+ep.Path, ep.Values)
	if err != nil {
		return err
	}
	ep.Values = vals
	return nil
}

// masked returns err with the endpoint's tokens masked.
func (ep *Endpoint) masked(err error) error {
	return errors.New(ep.masker.String(err.Error()))
}

// parseNetwork reads a CIDR network or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// endpointFor returns the endpoint serving path, and the token segment
// for an endpoint with a token in the path.
func (h *Handler) endpointFor(path string) (*Endpoint, string, bool) {
	if ep, ok := h.endpoints[path]; ok {
		return ep, "", true
	}
	for _, p := range h.endpointPrefixes {
		if rest, ok := strings.CutPrefix(path, p.prefix); ok && !strings.Contains(rest, "/") {
			return p.ep, rest, true
		}
	}
	return nil, "", false
}

// serveEndpoint checks, reads and records one conversion report. It
// answers 2xx only after the conversion and its postbacks are committed,
// and 503 when the storage cannot take them, so that the sender retries;
// a refused report writes nothing but its log entry.
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, ep *Endpoint, pathToken string) error {
	a := h.app
	t := now()
	entry := record.WebhookEntry{ID: record.NewID(t), Provider: endpointProvider, Path: ep.Path, ReceivedAt: t, ExpiresAt: t.Add(webhookLogRetention)}
	answer := func(status int, result, reason string, body map[string]any) error {
		return h.answerLogged(w, r, &entry, ep.masker, status, result, reason, body)
	}
	refuse := func(status int, err error) error {
		msg := ep.masker.String(err.Error())
		h.logger.Warn("conversion report refused", zap.String("endpoint", ep.Path), zap.Int("status", status),
			zap.String("remote_ip", clientIP(r)), zap.String("error", msg))
		return answer(status, record.WebhookRejected, msg, map[string]any{"error": msg})
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		return answer(http.StatusMethodNotAllowed, record.WebhookRejected, "not GET or POST", map[string]any{"error": "send conversions with GET or POST"})
	}
	if err := ep.intake.Allowed(endpointClientIP(r)); err != nil {
		return refuse(http.StatusForbidden, err)
	}
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, ep.MaxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return answer(http.StatusRequestEntityTooLarge, record.WebhookRejected, "body too large",
					map[string]any{"error": fmt.Sprintf("body larger than %d bytes", ep.MaxBody)})
			}
			return answer(http.StatusBadRequest, record.WebhookRejected, "reading the body failed", map[string]any{"error": "reading body failed"})
		}
	}
	rep, err := ep.intake.Read(&intake.Request{Header: r.Header, RawQuery: r.URL.RawQuery, Body: body, PathToken: pathToken})
	switch {
	case errors.Is(err, intake.ErrUnauthorized):
		return refuse(http.StatusUnauthorized, err)
	case err != nil:
		return refuse(http.StatusBadRequest, err)
	}
	entry.OrderID = rep.Order.ID
	vals, problems := requestValues(r, ep.Values)
	// The report's own values (its payout) win over the configured ones.
	o := withValues(rep.Order, vals, problems)

	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	v, err := a.reportedVisitor(ctx, rep, ep)
	if err == nil {
		var res conversion.Result
		res, err = a.tracker.Convert(ctx, o, v.session, "", "")
		if err == nil {
			return h.answerReport(answer, &entry, res, v)
		}
	}
	status, why := http.StatusInternalServerError, "could not record the conversion"
	if errors.Is(err, store.ErrUnavailable) {
		status, why = http.StatusServiceUnavailable, "storage unavailable; retry later"
	}
	h.logger.Error("conversion report not recorded; the sender should retry", zap.String("endpoint", ep.Path), zap.Error(err))
	return answer(status, record.WebhookFailed, err.Error(), map[string]any{"error": why})
}

// answerReport answers a recorded report: 200 "recorded" when networks
// were credited, 200 "duplicate" when the order and event were recorded
// before, 202 "unmatched" when the report named no visitor this tracker
// knows (the order is recorded, credited to nobody), and 202 "relayed"
// when such a click ID was sent on to the endpoint's relay network.
func (h *Handler) answerReport(answer func(int, string, string, map[string]any) error, entry *record.WebhookEntry, res conversion.Result, v reportVisitor) error {
	c := res.Conversion
	if c == nil {
		return answer(http.StatusOK, record.WebhookDuplicate, "order and event reported before",
			map[string]any{"status": "duplicate", "postbacks": 0})
	}
	h.app.logConversion(h.logger, res)
	entry.ConversionID = c.ID
	body := map[string]any{"postbacks": res.Queued, "conversion": c.ID}
	if res.Duplicates > 0 {
		body["duplicates"] = res.Duplicates
	}
	if res.Held != "" {
		body["held"] = res.Held
	}
	if len(res.Skipped) > 0 {
		body["not_sent"] = res.Skipped
	}
	switch {
	case v.relayed != "" && len(c.Credits) > 0 && c.Credits[0].Network == v.relayed:
		body["status"], body["relayed_to"] = "relayed", v.relayed
		body["reason"] = v.why + ": relayed to " + v.relayed
		return answer(http.StatusAccepted, record.WebhookRecorded, body["reason"].(string), body)
	case len(c.Credits) == 0:
		why := v.why
		if why == "" {
			why = c.Decision
		}
		body["status"], body["reason"] = "unmatched", why
		return answer(http.StatusAccepted, record.WebhookRecorded, "unmatched: "+why, body)
	}
	credited := make([]string, 0, len(c.Credits))
	for _, cr := range c.Credits {
		credited = append(credited, cr.Network)
	}
	body["status"], body["credited"] = "recorded", credited
	return answer(http.StatusOK, record.WebhookRecorded, "", body)
}

// reportVisitor is the visitor a report names, as far as it is known.
type reportVisitor struct {
	// session is the visitor's session (nil when none was found).
	session *record.Session
	// why says why no session was found, "" when one was or the report
	// named none.
	why string
	// relayed is the relay network when the session is a one-off made
	// for a click ID never captured here.
	relayed string
}

// reportedVisitor finds the visitor of a report: the session of a signed
// session reference, else the session that captured the click ID (of any
// network), else, for an endpoint with a relay network, a one-off session
// that holds the click ID as that network's click.
func (a *App) reportedVisitor(ctx context.Context, rep intake.Report, ep *Endpoint) (reportVisitor, error) {
	var v reportVisitor
	t := now()
	if rep.SessionRef != "" {
		signer := a.loadSigner(ctx)
		if signer == nil {
			return v, fmt.Errorf("%w: the session signing key cannot be read", store.ErrUnavailable)
		}
		id, ok := signer.Verify(rep.SessionRef)
		if !ok {
			v.why = "the session reference does not verify (forged, truncated or signed with another key)"
		} else {
			s, err := a.rt.store.Session(ctx, id, t)
			switch {
			case err == nil:
				v.session = s
				return v, nil
			case errors.Is(err, store.ErrNotFound):
				v.why = "the session has expired or was erased"
			default:
				return v, err
			}
		}
	}
	if rep.ClickID == "" {
		return v, nil
	}
	ms, err := a.rt.store.FindClicks(ctx, rep.ClickID, t, 1)
	if err != nil {
		return v, err
	}
	if len(ms) > 0 {
		s, err := a.rt.store.Session(ctx, ms[0].SessionID, t)
		switch {
		case err == nil:
			v.session, v.why = s, ""
			return v, nil
		case !errors.Is(err, store.ErrNotFound):
			return v, err
		}
	}
	v.why = "click ID not captured here, or its attribution window has closed"
	if ep.Relay == "" {
		return v, nil
	}
	window := ep.relayWindow
	if window <= 0 {
		window = DefaultWindow
	}
	v.relayed = ep.Relay
	v.session = &record.Session{CreatedAt: t, Touchpoints: []record.Touchpoint{{
		Network: ep.Relay, Param: "relay", ClickID: rep.ClickID, CapturedAt: t, ExpiresAt: t.Add(window),
	}}}
	return v, nil
}

// endpointClientIP is the client address as Caddy determined it (trusted
// proxies taken into account), without a port.
func endpointClientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
