package dashboard

import (
	"errors"
	"net/http"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// conversionsPage lists conversions, newest first, with their filters.
type conversionsPage struct {
	Network, Event, Status, Source, Period string
	Networks, Statuses, Sources, Periods   []string
	Items                                  []record.Conversion
	Paging
}

func (conversionsPage) head() head { return head{Title: "Conversions", Nav: "conversions", Live: true} }

func (d *Dashboard) serveConversions(w http.ResponseWriter, r *http.Request) {
	f := newFilters(r, "network", "event", "status", "source", "period", "cursor")
	p := conversionsPage{Network: f.get("network"), Event: f.get("event"), Status: f.oneOf("status", store.FilterStatuses...),
		Source: f.oneOf("source", store.FilterSources...), Period: f.oneOf("period", periodNames...),
		Statuses: store.FilterStatuses, Sources: store.FilterSources, Periods: periodNames}
	if f.err != nil {
		d.fail(w, r, f.err)
		return
	}
	now := d.now()
	q := store.ConversionQuery{Network: p.Network, Event: p.Event, Status: order.Status(p.Status), Source: p.Source, Cursor: f.get("cursor")}
	if p.Period != "" {
		per, _ := ParsePeriod(p.Period)
		q.Since, _, _ = per.window(now)
	}
	ctx, cancel := d.context(r)
	defer cancel()
	items, next, err := d.st.Conversions(ctx, q, now)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	p.Items, p.Networks = items, d.networkNames(p.Network)
	p.Paging = pagingOf(requestOf(r).Base, "/conversions", f.keep("network", "event", "status", "source", "period"), q.Cursor, next)
	d.render(w, r, http.StatusOK, "conversions", p)
}

// conversionPage shows one conversion: the order, the attribution
// decision, the touchpoints and the deliveries.
type conversionPage struct {
	C *record.Conversion
	// Deliveries are the conversion's postbacks still in the log.
	Deliveries []record.Delivery
	// Others are the session's other clicks still in their windows (those
	// not credited), when the session is still stored.
	Others []record.Touchpoint
}

func (p conversionPage) head() head {
	return head{Title: "Conversion " + p.C.Order.ID, Nav: "conversions"}
}

func (d *Dashboard) serveConversion(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.context(r)
	defer cancel()
	now := d.now()
	c, err := d.st.Conversion(ctx, r.PathValue("id"), now)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	p := conversionPage{C: c}
	for _, id := range c.Deliveries {
		del, err := d.st.Delivery(ctx, id, now)
		if errors.Is(err, store.ErrNotFound) {
			continue // expired with the delivery log's retention
		}
		if err != nil {
			d.fail(w, r, err)
			return
		}
		p.Deliveries = append(p.Deliveries, *del)
	}
	if c.SessionID != "" {
		s, err := d.st.Session(ctx, c.SessionID, now)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			d.fail(w, r, err)
			return
		}
		if s != nil {
			for _, tp := range s.Touchpoints {
				if !credited(c, tp) {
					p.Others = append(p.Others, tp)
				}
			}
		}
	}
	d.render(w, r, http.StatusOK, "conversion", p)
}

// credited reports whether a touchpoint is one a conversion credited.
func credited(c *record.Conversion, tp record.Touchpoint) bool {
	for _, cr := range c.Credits {
		if cr.Network == tp.Network && cr.Touchpoint.ClickID == tp.ClickID {
			return true
		}
	}
	return false
}
