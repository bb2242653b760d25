package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-postback/caddy-postback/internal/capture"
	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/outbox"
	"github.com/caddy-postback/caddy-postback/internal/postback"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin serves the postback admin routes on Caddy's admin endpoint:
//
//	GET    /postback/conversions?limit=N           recent conversions
//	GET    /postback/deliveries?state=S&network=N   recent deliveries (the delivery log)
//	GET    /postback/deliveries/<id>                one delivery with its attempts
//	GET    /postback/dead                           dead letters
//	POST   /postback/deliveries/<id>/replay         queue a dead or delivered postback again
//	GET    /postback/pending                        queued deliveries per network
//	POST   /postback/test                           send a test conversion, report request and answer
//	DELETE /postback/sessions/<cookie value>        erase a visitor's session
//
// Responses never include secrets: request headers such as Authorization
// and query values named like tokens are masked.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.postback", New: func() caddy.Module { return new(Admin) }}
}

// Routes returns the admin routes.
func (Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/postback/", Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	a := active.Load()
	if a == nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the postback app is not running")}
	}
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/postback/"), "/")
	parts := strings.Split(path, "/")
	ob := a.rt.outbox
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	switch {
	case parts[0] == "conversions" && len(parts) == 1 && r.Method == http.MethodGet:
		cs, err := ob.Conversions(limit)
		if err != nil {
			return apiErr(http.StatusInternalServerError, err)
		}
		return writeJSON(w, http.StatusOK, cs)
	case parts[0] == "deliveries" && len(parts) == 1 && r.Method == http.MethodGet:
		ds, err := ob.Deliveries(outbox.Filter{State: outbox.State(q.Get("state")), Network: q.Get("network"), Limit: limit})
		if err != nil {
			return apiErr(http.StatusInternalServerError, err)
		}
		return writeJSON(w, http.StatusOK, maskAll(ds))
	case parts[0] == "dead" && len(parts) == 1 && r.Method == http.MethodGet:
		ds, err := ob.Deliveries(outbox.Filter{State: outbox.StateDead, Limit: limit})
		if err != nil {
			return apiErr(http.StatusInternalServerError, err)
		}
		return writeJSON(w, http.StatusOK, maskAll(ds))
	case parts[0] == "deliveries" && len(parts) == 2 && r.Method == http.MethodGet:
		d, err := ob.Delivery(parts[1])
		if errors.Is(err, outbox.ErrNotFound) {
			return apiErr(http.StatusNotFound, err)
		} else if err != nil {
			return apiErr(http.StatusInternalServerError, err)
		}
		return writeJSON(w, http.StatusOK, mask(*d))
	case parts[0] == "deliveries" && len(parts) == 3 && parts[2] == "replay" && r.Method == http.MethodPost:
		d, err := ob.Replay(parts[1])
		if errors.Is(err, outbox.ErrNotFound) {
			return apiErr(http.StatusNotFound, err)
		} else if err != nil {
			return apiErr(http.StatusConflict, err)
		}
		return writeJSON(w, http.StatusOK, mask(*d))
	case parts[0] == "pending" && len(parts) == 1 && r.Method == http.MethodGet:
		p, err := ob.Pending()
		if err != nil {
			return apiErr(http.StatusInternalServerError, err)
		}
		return writeJSON(w, http.StatusOK, p)
	case parts[0] == "test" && len(parts) == 1 && r.Method == http.MethodPost:
		return a.serveTestFire(w, r)
	case parts[0] == "sessions" && len(parts) == 2 && r.Method == http.MethodDelete:
		id, ok := a.signer.Verify(parts[1])
		if !ok {
			return apiErr(http.StatusBadRequest, errors.New("not a valid session cookie value"))
		}
		found, err := a.sessions.Erase(id)
		if err != nil {
			return apiErr(http.StatusInternalServerError, err)
		}
		return writeJSON(w, http.StatusOK, map[string]bool{"erased": found})
	}
	return apiErr(http.StatusNotFound, fmt.Errorf("no route %s %s", r.Method, r.URL.Path))
}

func apiErr(status int, err error) error { return caddy.APIError{HTTPStatus: status, Err: err} }

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

// TestFireResult is the exact request sent and the answer.
type TestFireResult struct {
	// Request is the request sent, secrets masked.
	Request postback.Request `json:"request"`
	// Attempt is the network's answer: status, latency, body snippet.
	Attempt outbox.Attempt `json:"attempt"`
}

// serveTestFire renders a test conversion with the network's real template
// and sends it once, outside the queue, reporting what happened.
func (a *App) serveTestFire(w http.ResponseWriter, r *http.Request) error {
	var tf TestFire
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&tf); err != nil {
		return apiErr(http.StatusBadRequest, fmt.Errorf("decoding test request: %w", err))
	}
	n, ok := a.tracker.Networks[tf.Network]
	if !ok {
		return apiErr(http.StatusNotFound, fmt.Errorf("no network %q (configured: %s)", tf.Network, strings.Join(sortedKeys(a.tracker.Networks), ", ")))
	}
	if tf.ClickID == "" {
		tf.ClickID = "test-click"
	}
	if err := capture.ValidClickID(tf.ClickID, a.MaxClickIDLength); err != nil {
		return apiErr(http.StatusBadRequest, err)
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
			return apiErr(http.StatusBadRequest, err)
		}
		o.Amount, o.HasAmount = amt, true
	}
	t := now()
	pc := postback.Conversion{ID: outbox.NewID(), Network: tf.Network, Order: o, Time: t, Test: true,
		Touchpoint: capture.Touchpoint{Network: tf.Network, ClickID: tf.ClickID, CapturedAt: t.Add(-time.Minute), ExpiresAt: t.Add(time.Hour)}}
	req, err := n.Destination.Render(&pc)
	if err != nil {
		return apiErr(http.StatusBadRequest, fmt.Errorf("rendering postback: %w", err))
	}
	at := a.rt.dispatcher.Fire(r.Context(), req, n.Destination)
	return writeJSON(w, http.StatusOK, TestFireResult{Request: req.Redacted(), Attempt: at})
}

func mask(d outbox.Delivery) outbox.Delivery {
	d.Request = d.Request.Redacted()
	return d
}

func maskAll(ds []outbox.Delivery) []outbox.Delivery {
	for i := range ds {
		ds[i] = mask(ds[i])
	}
	return ds
}

// Interface guards
var _ caddy.AdminRouter = Admin{}
