package dashboard

import (
	"errors"
	"net/http"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// clicksPage looks up a click ID, or a session by its cookie value or ID.
type clicksPage struct {
	Q string
	// Rows are the clicks found, each with the conversions it earned.
	Rows []clickRow
	// SessionID is set when Q named a session; Conversions are then all of
	// its conversions.
	SessionID   string
	Conversions []record.Conversion
	Searched    bool
}

// clickRow is one click found.
type clickRow struct {
	SessionID  string
	Touchpoint record.Touchpoint
	// Earned are the conversions credited to this very click.
	Earned []record.Conversion
}

func (clicksPage) head() head { return head{Title: "Click lookup", Nav: "clicks"} }

// maxClickRows bounds a lookup's answer.
const maxClickRows = 50

func (d *Dashboard) serveClicks(w http.ResponseWriter, r *http.Request) {
	f := newFilters(r, "q")
	p := clicksPage{Q: f.get("q")}
	if f.err != nil {
		d.fail(w, r, f.err)
		return
	}
	if p.Q == "" {
		d.render(w, r, http.StatusOK, "clicks", p)
		return
	}
	p.Searched = true
	ctx, cancel := d.context(r)
	defer cancel()
	now := d.now()
	matches, err := d.st.FindClicks(ctx, p.Q, now, maxClickRows)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if len(matches) == 0 {
		// Not a click ID: perhaps a session, given as its cookie's value or
		// its ID.
		id := d.host.SessionID(ctx, p.Q)
		s, err := d.st.Session(ctx, id, now)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			d.fail(w, r, err)
			return
		}
		if s != nil {
			p.SessionID = s.ID
			for _, tp := range s.Touchpoints {
				matches = append(matches, store.ClickMatch{SessionID: s.ID, Touchpoint: tp})
			}
		}
		cs, _, err := d.st.Conversions(ctx, store.ConversionQuery{SessionID: id, Limit: maxClickRows}, now)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		if len(cs) > 0 {
			p.SessionID, p.Conversions = id, cs
		}
	}
	bySession := map[string][]record.Conversion{}
	for _, m := range matches {
		cs, seen := bySession[m.SessionID]
		if !seen {
			cs, _, err = d.st.Conversions(ctx, store.ConversionQuery{SessionID: m.SessionID, Limit: maxClickRows}, now)
			if err != nil {
				d.fail(w, r, err)
				return
			}
			bySession[m.SessionID] = cs
		}
		row := clickRow{SessionID: m.SessionID, Touchpoint: m.Touchpoint}
		for _, c := range cs {
			for _, cr := range c.Credits {
				if cr.Network == m.Touchpoint.Network && cr.Touchpoint.ClickID == m.Touchpoint.ClickID {
					row.Earned = append(row.Earned, c)
					break
				}
			}
		}
		p.Rows = append(p.Rows, row)
	}
	d.render(w, r, http.StatusOK, "clicks", p)
}
