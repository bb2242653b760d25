package dashboard

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// deliveriesPage lists deliveries, newest first, by state and network, and
// offers to replay each network's dead letters.
type deliveriesPage struct {
	State, Network   string
	States, Networks []string
	Items            []record.Delivery
	Paging
	// Dead are the networks with dead letters now.
	Dead []store.NetworkQueue
	// Replayed reports a "replay all" just done: how many, of which network.
	Replayed        string
	ReplayedNetwork string
}

func (deliveriesPage) head() head { return head{Title: "Deliveries", Nav: "deliveries", Live: true} }

func (d *Dashboard) serveDeliveries(w http.ResponseWriter, r *http.Request) {
	f := newFilters(r, "state", "network", "cursor", "replayed")
	p := deliveriesPage{State: f.oneOf("state", store.FilterStates...), Network: f.get("network"), States: store.FilterStates, Replayed: f.get("replayed")}
	if f.err != nil {
		d.fail(w, r, f.err)
		return
	}
	if p.Replayed != "" {
		p.ReplayedNetwork = p.Network
	}
	now := d.now()
	q := store.DeliveryQuery{State: record.State(p.State), Network: p.Network, Cursor: f.get("cursor")}
	ctx, cancel := d.context(r)
	defer cancel()
	items, next, err := d.st.Deliveries(ctx, q, now)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	queue, err := d.st.QueueStats(ctx, now)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	var seen []string
	for _, nq := range queue {
		seen = append(seen, nq.Network)
		if nq.Dead > 0 && (p.Network == "" || p.Network == nq.Network) {
			p.Dead = append(p.Dead, nq)
		}
	}
	p.Items, p.Networks = items, d.networkNames(append(seen, p.Network)...)
	p.Paging = pagingOf(requestOf(r).Base, "/deliveries", f.keep("state", "network"), q.Cursor, next)
	d.render(w, r, http.StatusOK, "deliveries", p)
}

// deliveryPage shows one delivery: every attempt and the request.
type deliveryPage struct {
	D        *record.Delivery
	Replayed bool
}

func (p deliveryPage) head() head {
	return head{Title: "Delivery to " + p.D.Network, Nav: "deliveries", Live: p.D.State.Waiting() || p.D.State == record.StateRunning}
}

func (d *Dashboard) serveDelivery(w http.ResponseWriter, r *http.Request) {
	f := newFilters(r, "replayed")
	if f.err != nil {
		d.fail(w, r, f.err)
		return
	}
	ctx, cancel := d.context(r)
	defer cancel()
	del, err := d.st.Delivery(ctx, r.PathValue("id"), d.now())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "delivery", deliveryPage{D: del, Replayed: f.get("replayed") != ""})
}

// serveReplay queues a dead or delivered postback again and shows it.
func (d *Dashboard) serveReplay(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.context(r)
	defer cancel()
	id := r.PathValue("id")
	if _, err := d.st.Replay(ctx, id, d.now()); err != nil {
		d.fail(w, r, err)
		return
	}
	d.host.Wake()
	http.Redirect(w, r, link(requestOf(r).Base, "/deliveries/"+url.PathEscape(id), url.Values{"replayed": {"1"}}), http.StatusSeeOther)
}

// serveReplayDead queues every dead letter of a network again.
func (d *Dashboard) serveReplayDead(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.context(r)
	defer cancel()
	name := r.PathValue("name")
	n, err := d.st.ReplayDead(ctx, name, d.now())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.host.Wake()
	http.Redirect(w, r, link(requestOf(r).Base, "/deliveries", url.Values{"network": {name}, "replayed": {strconv.Itoa(n)}}), http.StatusSeeOther)
}
