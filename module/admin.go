package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/dashboard"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin serves the postback routes on Caddy's admin endpoint, one pattern
// per route; a wrong method is answered 405. Answers are JSON that people
// can read: amounts as decimal strings with their currency, times in RFC
// 3339, durations as "72h0m0s", [] for empty lists; listings page with a
// cursor ("next_cursor"). No answer ever holds a secret: stored requests
// and errors are masked when they are stored.
//
//	GET    /postback/conversions?network=&event=&status=&source=&since=&until=&cursor=&limit=
//	GET    /postback/conversions/{id}                 a conversion with its deliveries
//	GET    /postback/deliveries?state=&network=&conversion=&cursor=&limit=
//	GET    /postback/deliveries/{id}                  a delivery with every attempt
//	POST   /postback/deliveries/{id}/replay           queue a dead or delivered postback again
//	POST   /postback/networks/{name}/replay           queue every dead letter of a network again
//	GET    /postback/queue                            the queue per network, paused networks
//	GET    /postback/clicks?click_id=|session=        look up a click ID, or a session
//	DELETE /postback/sessions/{cookie value}          erase a visitor's session and its personal data
//	GET    /postback/webhooks?provider=&result=&cursor=&limit=
//	GET    /postback/webhooks/{id}                    one webhook, with its payload if it was kept
//	GET    /postback/stats?period=24h|7d|30d          the dashboard overview's figures
//	GET    /postback/health                           whether the storage serves
//	POST   /postback/test                             send a test conversion, report request and answer
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.postback", New: func() caddy.Module { return new(Admin) }}
}

// Routes returns the admin routes.
func (Admin) Routes() []caddy.AdminRoute {
	route := func(pattern, method string, fn func(*App, http.ResponseWriter, *http.Request) error) caddy.AdminRoute {
		return caddy.AdminRoute{Pattern: pattern, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.Method != method {
				w.Header().Set("Allow", method)
				return apiErr(http.StatusMethodNotAllowed, fmt.Errorf("%s: method %s not allowed; use %s", r.URL.Path, r.Method, method))
			}
			a := currentApp()
			if a == nil {
				return apiErr(http.StatusServiceUnavailable, errors.New("the postback app is not running"))
			}
			return fn(a, w, r)
		})}
	}
	return []caddy.AdminRoute{
		route("/postback/conversions", http.MethodGet, (*App).serveConversions),
		route("/postback/conversions/{id}", http.MethodGet, (*App).serveConversion),
		route("/postback/deliveries", http.MethodGet, (*App).serveDeliveries),
		route("/postback/deliveries/{id}", http.MethodGet, (*App).serveDelivery),
		route("/postback/deliveries/{id}/replay", http.MethodPost, (*App).serveReplay),
		route("/postback/networks/{name}/replay", http.MethodPost, (*App).serveReplayDead),
		route("/postback/queue", http.MethodGet, (*App).serveQueue),
		route("/postback/clicks", http.MethodGet, (*App).serveClicks),
		route("/postback/sessions/{ref}", http.MethodDelete, (*App).serveErase),
		route("/postback/webhooks", http.MethodGet, (*App).serveWebhooks),
		route("/postback/webhooks/{id}", http.MethodGet, (*App).serveWebhookEntry),
		route("/postback/stats", http.MethodGet, (*App).serveStats),
		route("/postback/health", http.MethodGet, (*App).serveHealth),
		route("/postback/test", http.MethodPost, (*App).serveTestFire),
	}
}

func apiErr(status int, err error) error { return caddy.APIError{HTTPStatus: status, Err: err} }

// storeErr answers a storage error: 404 for a missing record, 503 while
// the storage is unavailable, 500 otherwise.
func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return apiErr(http.StatusNotFound, err)
	case errors.Is(err, store.ErrState):
		return apiErr(http.StatusConflict, err)
	case errors.Is(err, store.ErrUnavailable):
		return apiErr(http.StatusServiceUnavailable, err)
	}
	return apiErr(http.StatusInternalServerError, err)
}

// query reads and validates listing parameters: only the names given are
// allowed, and a value outside its allowed set is a 400 that lists them.
type query struct {
	q   map[string][]string
	err error
}

func newQuery(r *http.Request, allowed ...string) *query {
	q := &query{q: r.URL.Query()}
	for k := range q.q {
		if !slices.Contains(allowed, k) {
			q.err = fmt.Errorf("unknown parameter %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return q
}

func (q *query) get(name string) string {
	if vs := q.q[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (q *query) oneOf(name string, values ...string) string {
	v := q.get(name)
	if v != "" && !slices.Contains(values, v) && q.err == nil {
		q.err = fmt.Errorf("%s=%q: want one of %s", name, v, strings.Join(values, ", "))
	}
	return v
}

func (q *query) time(name string) time.Time {
	v := q.get(name)
	if v == "" {
		return time.Time{}
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now().Add(-d) // "24h": that long ago
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil && q.err == nil {
		q.err = fmt.Errorf("%s=%q: want an RFC 3339 time or a duration such as 24h", name, v)
	}
	return t
}

func (q *query) limit() int {
	v := q.get("limit")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if (err != nil || n <= 0 || n > store.MaxLimit) && q.err == nil {
		q.err = fmt.Errorf("limit=%q: want 1 to %d", v, store.MaxLimit)
	}
	return n
}

func (q *query) done() error {
	if q.err != nil {
		return apiErr(http.StatusBadRequest, q.err)
	}
	return nil
}

// page is a listing's answer.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (a *App) adminContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

func (a *App) serveConversions(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "network", "event", "status", "source", "since", "until", "session", "cursor", "limit")
	cq := store.ConversionQuery{Network: q.get("network"), Event: q.get("event"), Status: order.Status(q.oneOf("status", store.FilterStatuses...)),
		Source: q.oneOf("source", store.FilterSources...), SessionID: q.get("session"), Since: q.time("since"), Until: q.time("until"),
		Cursor: q.get("cursor"), Limit: q.limit()}
	if err := q.done(); err != nil {
		return err
	}
	ctx, cancel := a.adminContext(r)
	defer cancel()
	cs, next, err := a.rt.store.Conversions(ctx, cq, now())
	if err != nil {
		return storeErr(err)
	}
	out := page[conversionView]{Items: []conversionView{}, NextCursor: next}
	for _, c := range cs {
		out.Items = append(out.Items, viewConversion(c))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *App) serveConversion(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.adminContext(r)
	defer cancel()
	c, err := a.rt.store.Conversion(ctx, r.PathValue("id"), now())
	if err != nil {
		return storeErr(err)
	}
	out := conversionDetail{conversionView: viewConversion(*c), DeliveryRecords: []deliveryView{}}
	for _, id := range c.Deliveries {
		d, err := a.rt.store.Delivery(ctx, id, now())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return storeErr(err)
		}
		out.DeliveryRecords = append(out.DeliveryRecords, viewDelivery(*d))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *App) serveDeliveries(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "state", "network", "conversion", "cursor", "limit")
	dq := store.DeliveryQuery{State: record.State(q.oneOf("state", store.FilterStates...)), Network: q.get("network"),
		ConversionID: q.get("conversion"), Cursor: q.get("cursor"), Limit: q.limit()}
	if err := q.done(); err != nil {
		return err
	}
	ctx, cancel := a.adminContext(r)
	defer cancel()
	ds, next, err := a.rt.store.Deliveries(ctx, dq, now())
	if err != nil {
		return storeErr(err)
	}
	out := page[deliveryView]{Items: []deliveryView{}, NextCursor: next}
	for _, d := range ds {
		out.Items = append(out.Items, viewDelivery(d))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *App) serveDelivery(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.adminContext(r)
	defer cancel()
	d, err := a.rt.store.Delivery(ctx, r.PathValue("id"), now())
	if err != nil {
		return storeErr(err)
	}
	return writeJSON(w, http.StatusOK, viewDelivery(*d))
}

func (a *App) serveReplay(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.adminContext(r)
	defer cancel()
	d, err := a.rt.store.Replay(ctx, r.PathValue("id"), now())
	if err != nil {
		return storeErr(err)
	}
	a.rt.dispatcher.Wake()
	return writeJSON(w, http.StatusOK, viewDelivery(*d))
}

func (a *App) serveReplayDead(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.adminContext(r)
	defer cancel()
	n, err := a.rt.store.ReplayDead(ctx, r.PathValue("name"), now())
	if err != nil {
		return storeErr(err)
	}
	a.rt.dispatcher.Wake()
	return writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
}

// queueView is the queue of one network as the admin API shows it.
type queueView struct {
	store.NetworkQueue
	OldestAge   string    `json:"oldest_age,omitempty"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Configured  bool      `json:"configured"`
}

func (a *App) serveQueue(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.adminContext(r)
	defer cancel()
	stats, err := a.rt.store.QueueStats(ctx, now())
	if err != nil {
		return storeErr(err)
	}
	paused := a.rt.dispatcher.Paused()
	out := []queueView{}
	seen := map[string]bool{}
	for _, s := range stats {
		v := queueView{NetworkQueue: s, PausedUntil: paused[s.Network], Configured: a.Networks[s.Network] != nil}
		if !s.OldestWaiting.IsZero() {
			v.OldestAge = now().Sub(s.OldestWaiting).Round(time.Second).String()
		}
		seen[s.Network] = true
		out = append(out, v)
	}
	for _, name := range sortedKeys(a.Networks) {
		if !seen[name] {
			out = append(out, queueView{NetworkQueue: store.NetworkQueue{Network: name}, PausedUntil: paused[name], Configured: true})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *App) serveClicks(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "click_id", "session", "limit")
	clickID, sess, limit := q.get("click_id"), q.get("session"), q.limit()
	if err := q.done(); err != nil {
		return err
	}
	if (clickID == "") == (sess == "") {
		return apiErr(http.StatusBadRequest, errors.New("give click_id or session (a session ID or cookie value)"))
	}
	ctx, cancel := a.adminContext(r)
	defer cancel()
	t := now()
	var matches []store.ClickMatch
	if clickID != "" {
		var err error
		if matches, err = a.rt.store.FindClicks(ctx, clickID, t, limit); err != nil {
			return storeErr(err)
		}
	} else {
		id := a.sessionID(ctx, sess)
		s, err := a.rt.store.Session(ctx, id, t)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return storeErr(err)
		}
		if s != nil {
			for _, tp := range s.Touchpoints {
				matches = append(matches, store.ClickMatch{SessionID: id, Touchpoint: tp})
			}
		}
	}
	out := []clickView{}
	for _, m := range matches {
		cs, _, err := a.rt.store.Conversions(ctx, store.ConversionQuery{SessionID: m.SessionID, Network: m.Touchpoint.Network, Limit: 20}, t)
		if err != nil {
			return storeErr(err)
		}
		v := clickView{ClickMatch: m, Conversions: []string{}}
		for _, c := range cs {
			for _, cr := range c.Credits {
				if cr.Touchpoint.ClickID == m.Touchpoint.ClickID && cr.Network == m.Touchpoint.Network {
					v.Conversions = append(v.Conversions, c.ID)
				}
			}
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

// clickView is a click found by its click ID or session, with the
// conversions it earned.
type clickView struct {
	store.ClickMatch
	Conversions []string `json:"conversions"`
}

// sessionID reads a session given as a cookie value (verified) or as a
// bare session ID.
func (a *App) sessionID(ctx context.Context, ref string) string {
	if s := a.loadSigner(ctx); s != nil {
		if id, ok := s.Verify(ref); ok {
			return id
		}
	}
	return ref
}

func (a *App) serveErase(w http.ResponseWriter, r *http.Request) error {
	ref := r.PathValue("ref")
	signer := a.loadSigner(r.Context())
	if signer == nil {
		return apiErr(http.StatusServiceUnavailable, errors.New("the storage is unavailable; retry later"))
	}
	id, ok := signer.Verify(ref)
	if !ok {
		return apiErr(http.StatusBadRequest, errors.New("not a valid session cookie value"))
	}
	ctx, cancel := a.adminContext(r)
	defer cancel()
	keep := time.Duration(a.Delivery.DeadRetention)
	if keep <= 0 {
		keep = 90 * 24 * time.Hour
	}
	t := now()
	found, err := a.rt.store.EraseSession(ctx, id, t, t.Add(keep))
	if err != nil {
		return storeErr(err)
	}
	return writeJSON(w, http.StatusOK, map[string]bool{"erased": found})
}

func (a *App) serveWebhooks(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "provider", "result", "cursor", "limit")
	wq := store.WebhookQuery{Provider: q.get("provider"), Result: q.oneOf("result", store.FilterWebhookResults...), Cursor: q.get("cursor"), Limit: q.limit()}
	if err := q.done(); err != nil {
		return err
	}
	ctx, cancel := a.adminContext(r)
	defer cancel()
	es, next, err := a.rt.store.WebhookLog(ctx, wq, now())
	if err != nil {
		return storeErr(err)
	}
	if es == nil {
		es = []record.WebhookEntry{}
	}
	return writeJSON(w, http.StatusOK, page[record.WebhookEntry]{Items: es, NextCursor: next})
}

func (a *App) serveWebhookEntry(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.adminContext(r)
	defer cancel()
	e, err := a.rt.store.Webhook(ctx, r.PathValue("id"), now())
	if err != nil {
		return storeErr(err)
	}
	return writeJSON(w, http.StatusOK, e)
}

// serveStats answers the dashboard overview's figures of a period.
func (a *App) serveStats(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "period")
	name := q.oneOf("period", "24h", "7d", "30d")
	if err := q.done(); err != nil {
		return err
	}
	p, err := dashboard.ParsePeriod(name)
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	ctx, cancel := a.adminContext(r)
	defer cancel()
	ov, err := dashboard.BuildOverview(ctx, a.rt.store, appHost{a}, p, now())
	if err != nil {
		return storeErr(err)
	}
	return writeJSON(w, http.StatusOK, ov)
}

func (a *App) serveHealth(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := a.adminContext(r)
	defer cancel()
	out := healthView{Storage: a.engine.Describe(), OK: true}
	if err := a.rt.store.Check(ctx); err != nil {
		out.OK, out.Error = false, err.Error()
		return writeJSON(w, http.StatusServiceUnavailable, out)
	}
	return writeJSON(w, http.StatusOK, out)
}

// healthView is the storage's health as the admin API shows it.
type healthView struct {
	// Storage says where the data lives (never a secret).
	Storage string `json:"storage"`
	OK      bool   `json:"ok"`
	// Error says why the storage does not serve.
	Error string `json:"error,omitempty"`
}

// TestFire asks for a test conversion.
type TestFire struct {
	// Network is the configured network to test. Required.
	Network string `json:"network"`
	// ClickID is the click ID sent. Default: "test-click".
	ClickID string `json:"click_id,omitempty"`
	// Amount is the order amount. Default: none.
	Amount string `json:"amount,omitempty"`
	// Order is the order ID. Default: "TEST-<unix time>".
	Order string `json:"order,omitempty"`
	// Event is the conversion event. Default: "purchase".
	Event string `json:"event,omitempty"`
	// Currency of the test amount. Default: USD.
	Currency string `json:"currency,omitempty"`
}

// TestFireResult is the exact request sent, secrets masked, and the answer.
type TestFireResult struct {
	Request record.Request `json:"request"`
	Attempt record.Attempt `json:"attempt"`
}

// serveTestFire renders a test conversion with the network's real template
// (in its test mode, where it has one) and sends it once, outside the
// queue, reporting what happened.
func (a *App) serveTestFire(w http.ResponseWriter, r *http.Request) error {
	var tf TestFire
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&tf); err != nil {
		return apiErr(http.StatusBadRequest, fmt.Errorf("decoding test request: %w", err))
	}
	res, err := a.testFire(r.Context(), tf)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (a *App) testFire(ctx context.Context, tf TestFire) (*TestFireResult, error) {
	if _, ok := a.tracker.Networks[tf.Network]; !ok {
		return nil, apiErr(http.StatusNotFound, fmt.Errorf("no network %q (configured: %s)", tf.Network, strings.Join(sortedKeys(a.tracker.Networks), ", ")))
	}
	if tf.ClickID == "" {
		tf.ClickID = "test-click"
	}
	if err := capture.ValidClickID(tf.ClickID, a.MaxClickIDLength); err != nil {
		return nil, apiErr(http.StatusBadRequest, err)
	}
	if tf.Order == "" {
		tf.Order = "TEST-" + strconv.FormatInt(now().Unix(), 10)
	}
	if tf.Event == "" {
		tf.Event = "purchase"
	}
	if tf.Currency == "" {
		tf.Currency = "USD"
	}
	o := order.Order{Source: "test", Event: tf.Event, ID: tf.Order, Currency: order.NormalizeCurrency(tf.Currency), Status: order.StatusApproved}
	if tf.Amount != "" {
		amt, err := order.ParseDecimal(tf.Amount)
		if err != nil {
			return nil, apiErr(http.StatusBadRequest, err)
		}
		o.Amount, o.HasAmount = amt, true
	}
	t := now()
	pb := record.Postback{ConversionID: record.NewID(t), Network: tf.Network, Order: o, Time: t, Test: true,
		Touchpoint: record.Touchpoint{Network: tf.Network, Param: a.testParam(tf.Network), ClickID: tf.ClickID,
			CapturedAt: t.Add(-time.Minute), ExpiresAt: t.Add(time.Hour)}}
	req, at, err := a.rt.dispatcher.Fire(ctx, &pb)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, err)
	}
	return &TestFireResult{Request: req, Attempt: at}, nil
}

// testParam is the parameter a test click comes under: the network's
// first click parameter (or click cookie), as a real click of the network
// would, so that presets that send the click by its kind (gclid, epik,
// _fprom_tid) send the test one.
func (a *App) testParam(network string) string {
	if i := a.networkIndex(network); i >= 0 {
		n := a.recognizer.Networks()[i]
		if len(n.Params) > 0 {
			return n.Params[0]
		}
		if len(n.Cookies) > 0 {
			return n.Cookies[0].Name
		}
	}
	return ""
}

// deliveryView is a delivery as the admin API shows it.
type deliveryView struct {
	record.Delivery
	MaxAge string `json:"max_age"`
}

func viewDelivery(d record.Delivery) deliveryView {
	if d.Attempts == nil {
		d.Attempts = []record.Attempt{}
	}
	return deliveryView{Delivery: d, MaxAge: d.MaxAge.String()}
}

// conversionDetail is one conversion with its deliveries.
type conversionDetail struct {
	conversionView
	DeliveryRecords []deliveryView `json:"delivery_records"`
}

// conversionView is a conversion as the admin API shows it.
type conversionView struct {
	record.Conversion
	Amount string `json:"amount,omitempty"`
}

func viewConversion(c record.Conversion) conversionView {
	for _, p := range []*[]string{&c.Deliveries, &c.Skipped} {
		if *p == nil {
			*p = []string{}
		}
	}
	if c.Credits == nil {
		c.Credits = []record.Credit{}
	}
	v := conversionView{Conversion: c}
	if c.Order.HasAmount {
		v.Amount = strings.TrimSpace(c.Order.Amount.ForCurrency(c.Order.Currency) + " " + c.Order.Currency)
	}
	return v
}

// Interface guards
var _ caddy.AdminRouter = Admin{}
