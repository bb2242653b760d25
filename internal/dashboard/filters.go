package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// filters reads a page's query: only the names given are allowed, and a
// value outside its allowed set is a bad request that lists them, as the
// admin API answers.
type filters struct {
	q   url.Values
	err error
}

func newFilters(r *http.Request, allowed ...string) *filters {
	f := &filters{q: r.URL.Query()}
	for k := range f.q {
		if !slices.Contains(allowed, k) && f.err == nil {
			f.err = badInput{fmt.Sprintf("unknown parameter %q (allowed: %s)", k, strings.Join(allowed, ", "))}
		}
	}
	return f
}

func (f *filters) get(name string) string { return strings.TrimSpace(f.q.Get(name)) }

func (f *filters) oneOf(name string, values ...string) string {
	v := f.get(name)
	if v != "" && !slices.Contains(values, v) && f.err == nil {
		f.err = badInput{fmt.Sprintf("%s=%q: want one of %s", name, v, strings.Join(values, ", "))}
	}
	return v
}

// keep returns the query of the filters set, for the next page's link.
func (f *filters) keep(names ...string) url.Values {
	out := url.Values{}
	for _, n := range names {
		if v := f.get(n); v != "" {
			out.Set(n, v)
		}
	}
	return out
}

// periodNames are the overview's periods.
var periodNames = []string{"24h", "7d", "30d"}

// Paging holds the links of a listing's pages.
type Paging struct {
	// Next is the next page's link, "" after the last.
	Next string
	// First is the first page's link, "" on the first page.
	First string
}

func pagingOf(base, path string, q url.Values, cursor, next string) Paging {
	var p Paging
	if next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("cursor", next)
		p.Next = link(base, path, nq)
	}
	if cursor != "" {
		p.First = link(base, path, q)
	}
	return p
}

// networkNames lists the configured networks and any others given, sorted,
// for the filters' choices.
func (d *Dashboard) networkNames(more ...string) []string {
	var out []string
	for _, n := range d.host.Networks() {
		out = append(out, n.Name)
	}
	for _, m := range more {
		if m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}
