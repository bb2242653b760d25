package dashboard

import (
	"net/http"
	"strings"
)

// networksPage lists the configured networks with their health over the
// last 24 hours and their queue now.
type networksPage struct {
	Rows []networkRow
}

// networkRow is a network's configuration and figures.
type networkRow struct {
	Network
	Figures NetworkFigures
	// Failing: its last day's attempts mostly did not deliver.
	Failing bool
}

func (networksPage) head() head { return head{Title: "Networks", Nav: "networks", Live: true} }

// figures returns the last 24 hours' figures of every network, by name.
func (d *Dashboard) figures(r *http.Request) (map[string]NetworkFigures, error) {
	ctx, cancel := d.context(r)
	defer cancel()
	ov, err := BuildOverview(ctx, d.st, d.host, Periods[0], d.now())
	if err != nil {
		return nil, err
	}
	out := map[string]NetworkFigures{}
	for _, n := range ov.Networks {
		out[n.Network] = n
	}
	return out, nil
}

func failing(f NetworkFigures) bool {
	return f.Attempts.Total > 0 && f.Attempts.SuccessRate < 0.5
}

func (d *Dashboard) serveNetworks(w http.ResponseWriter, r *http.Request) {
	figs, err := d.figures(r)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	var p networksPage
	for _, n := range d.host.Networks() {
		p.Rows = append(p.Rows, networkRow{Network: n, Figures: figs[n.Name], Failing: failing(figs[n.Name])})
	}
	d.render(w, r, http.StatusOK, "networks", p)
}

// networkPage shows one network: its configuration, its health, and the
// test-fire form with the last test's request and answer.
type networkPage struct {
	networkRow
	Form   TestFire
	Result *TestResult
	Error  string
}

func (p networkPage) head() head { return head{Title: "Network " + p.Name, Nav: "networks"} }

func (d *Dashboard) network(w http.ResponseWriter, r *http.Request) (networkPage, bool) {
	name := r.PathValue("name")
	for _, n := range d.host.Networks() {
		if n.Name == name {
			figs, err := d.figures(r)
			if err != nil {
				d.fail(w, r, err)
				return networkPage{}, false
			}
			return networkPage{networkRow: networkRow{Network: n, Figures: figs[name], Failing: failing(figs[name])},
				Form: TestFire{Network: name, ClickID: "test-click", Amount: "1.00", Currency: "USD", Event: "purchase"}}, true
		}
	}
	d.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found", Message: "No network " + name + " is configured."})
	return networkPage{}, false
}

func (d *Dashboard) serveNetwork(w http.ResponseWriter, r *http.Request) {
	if p, ok := d.network(w, r); ok {
		d.render(w, r, http.StatusOK, "network", p)
	}
}

// serveTestFire sends a test conversion from the form and shows the
// request as sent and the answer.
func (d *Dashboard) serveTestFire(w http.ResponseWriter, r *http.Request) {
	p, ok := d.network(w, r)
	if !ok {
		return
	}
	field := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	p.Form = TestFire{Network: p.Name, ClickID: field("click_id"), Amount: field("amount"), Currency: field("currency"),
		Order: field("order"), Event: field("event")}
	ctx, cancel := d.context(r)
	defer cancel()
	res, err := d.host.TestFire(ctx, p.Form)
	status := http.StatusOK
	if err != nil {
		p.Error, status = err.Error(), http.StatusBadRequest
	}
	p.Result = res
	d.render(w, r, status, "network", p)
}
