package dashboard

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Period is a span the overview sums, ending now, and the step of its
// charts.
type Period struct {
	Name string
	// Days is the number of UTC days covered (today included), or 0 for
	// the last 24 hours.
	Days int
}

// Periods are the overview's periods, shortest first.
var Periods = []Period{{Name: "24h"}, {Name: "7d", Days: 7}, {Name: "30d", Days: 30}}

// ParsePeriod reads a period's name; "" is the first (24h).
func ParsePeriod(name string) (Period, error) {
	if name == "" {
		return Periods[0], nil
	}
	for _, p := range Periods {
		if p.Name == name {
			return p, nil
		}
	}
	return Period{}, badInput{fmt.Sprintf("period=%q: want one of 24h, 7d, 30d", name)}
}

// window returns the hours the period sums (from since, inclusive, to
// until, exclusive) and its charts' step: the last 24 hours by the hour, or
// whole UTC days (today so far included) by the day.
func (p Period) window(now time.Time) (since, until time.Time, step time.Duration) {
	until = now.UTC().Truncate(time.Hour).Add(time.Hour)
	if p.Days == 0 {
		return until.Add(-24 * time.Hour), until, time.Hour
	}
	today := time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day(), 0, 0, 0, 0, time.UTC)
	return today.AddDate(0, 0, 1-p.Days), until, 24 * time.Hour
}

// Overview is what the tracker did in a period, and how its queue stands
// now: the dashboard's first page, and the admin API's /postback/stats.
type Overview struct {
	Period string    `json:"period"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// Clicks are the click IDs captured; Sessions the new sessions.
	Clicks   int64 `json:"clicks"`
	Sessions int64 `json:"sessions"`
	// Conversions counts the orders recorded (not counting duplicates of
	// an order already recorded); Revenue sums those that were not held,
	// per currency.
	Conversions int64   `json:"conversions"`
	Revenue     []Money `json:"revenue"`
	// Results counts the orders by what became of them: credited,
	// uncredited, held, duplicate.
	Results []Count `json:"conversions_by_result"`
	// Events breaks conversions and revenue down by event.
	Events []EventFigures `json:"events"`
	// Networks lists every configured network and every network with
	// counts or deliveries.
	Networks []NetworkFigures `json:"networks"`
	// Attempts sums the postback attempts of every network.
	Attempts AttemptFigures `json:"attempts"`
	// Waiting, Running and DeadLetters describe the queue now; the oldest
	// pending postback has waited OldestPendingAge.
	Waiting          int    `json:"waiting"`
	Running          int    `json:"running"`
	DeadLetters      int    `json:"dead_letters"`
	OldestPendingAge string `json:"oldest_pending_age,omitempty"`
	// Paused are the networks paused now.
	Paused []Paused `json:"paused"`
	// Webhooks counts the webhooks received, by provider and result.
	Webhooks []WebhookFigures `json:"webhooks"`
	// Series are the charts' buckets: hours for 24h, days otherwise.
	Series []Bucket `json:"series"`
	// Storage says where the data lives.
	Storage string `json:"storage"`

	oldestWaiting time.Duration
}

// Count is a count with its label.
type Count struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// EventFigures are the conversions of one event.
type EventFigures struct {
	Event       string  `json:"event"`
	Conversions int64   `json:"conversions"`
	Revenue     []Money `json:"revenue"`
}

// AttemptFigures describe postback attempts: how many ended in each state,
// the share that delivered, and their mean latency.
type AttemptFigures struct {
	Total       int64   `json:"total"`
	Delivered   int64   `json:"delivered"`
	Retrying    int64   `json:"retrying"`
	Dead        int64   `json:"dead"`
	SuccessRate float64 `json:"success_rate"`
	MeanLatency string  `json:"mean_latency,omitempty"`

	latencyUS int64
}

func (a *AttemptFigures) add(result string, count, sumUS int64) {
	a.Total += count
	a.latencyUS += sumUS
	switch record.State(result) {
	case record.StateDelivered:
		a.Delivered += count
	case record.StateRetrying:
		a.Retrying += count
	case record.StateDead:
		a.Dead += count
	}
}

func (a *AttemptFigures) finish() {
	if a.Total == 0 {
		return
	}
	a.SuccessRate = float64(a.Delivered) / float64(a.Total)
	mean := time.Duration(a.latencyUS/a.Total) * time.Microsecond
	a.MeanLatency = roundDuration(mean).String()
}

// NetworkFigures describe one network in the period and its queue now.
type NetworkFigures struct {
	Network    string `json:"network"`
	Configured bool   `json:"configured"`
	Clicks     int64  `json:"clicks"`
	// Conversions and Revenue are those credited to the network.
	Conversions int64          `json:"conversions"`
	Revenue     []Money        `json:"revenue"`
	Attempts    AttemptFigures `json:"attempts"`
	// Queue is the network's queue now.
	Queued           int       `json:"queued"`
	Retrying         int       `json:"retrying"`
	Running          int       `json:"running"`
	DeadLetters      int       `json:"dead_letters"`
	OldestPendingAge string    `json:"oldest_pending_age,omitempty"`
	PausedUntil      time.Time `json:"paused_until,omitzero"`

	revenue map[string]int64
}

// Paused is a network paused now.
type Paused struct {
	Network string    `json:"network"`
	Until   time.Time `json:"until"`
}

// WebhookFigures count one provider's webhooks by result.
type WebhookFigures struct {
	Provider string  `json:"provider"`
	Results  []Count `json:"results"`
	Total    int64   `json:"total"`
}

// Bucket is one bar of the charts.
type Bucket struct {
	Start       time.Time `json:"start"`
	Conversions int64     `json:"conversions"`
	Delivered   int64     `json:"delivered"`
	Retrying    int64     `json:"retrying"`
	Dead        int64     `json:"dead"`
}

// Conversion results, as the counters label them.
const (
	resultCredited   = "credited"
	resultUncredited = "uncredited"
	resultHeld       = "held"
	resultDuplicate  = "duplicate"
)

// BuildOverview sums the hourly counters of a period and reads the queue
// now. It reads a few thousand counters at most (hours × labels), however
// many clicks and orders the period saw.
func BuildOverview(ctx context.Context, st store.Store, host Host, p Period, now time.Time) (*Overview, error) {
	since, until, step := p.window(now)
	stats, err := st.Stats(ctx, since, until)
	if err != nil {
		return nil, fmt.Errorf("reading counters: %w", err)
	}
	queue, err := st.QueueStats(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("reading the queue: %w", err)
	}
	ov := &Overview{Period: p.Name, Since: since, Until: until, Storage: host.Storage(),
		Revenue: []Money{}, Results: []Count{}, Events: []EventFigures{}, Paused: []Paused{}, Webhooks: []WebhookFigures{}}

	nets := map[string]*NetworkFigures{}
	netOf := func(name string) *NetworkFigures {
		n := nets[name]
		if n == nil {
			n = &NetworkFigures{Network: name, revenue: map[string]int64{}}
			nets[name] = n
		}
		return n
	}
	for _, n := range host.Networks() {
		netOf(n.Name).Configured = true
	}
	buckets := make([]Bucket, 0, int(until.Sub(since)/step))
	for t := since; t.Before(until); t = t.Add(step) {
		buckets = append(buckets, Bucket{Start: t})
	}
	bucketOf := func(h time.Time) *Bucket {
		i := int(h.Sub(since) / step)
		if i < 0 || i >= len(buckets) {
			return nil
		}
		return &buckets[i]
	}
	revenue := map[string]int64{}
	results := map[string]int64{}
	type eventSums struct {
		count   int64
		revenue map[string]int64
	}
	events := map[string]*eventSums{}
	hooks := map[string]map[string]int64{}
	for _, s := range stats {
		switch s.Metric {
		case store.StatClicks:
			ov.Clicks += s.Count
			netOf(s.Network).Clicks += s.Count
		case store.StatSessions:
			ov.Sessions += s.Count
		case store.StatConversions:
			if s.Network != store.StatAllNetworks {
				if s.Result == resultCredited {
					n := netOf(s.Network)
					n.Conversions += s.Count
					n.revenue[s.Currency] += s.Sum
				}
				continue
			}
			results[s.Result] += s.Count
			if s.Result == resultDuplicate {
				continue
			}
			ov.Conversions += s.Count
			e := events[s.Event]
			if e == nil {
				e = &eventSums{revenue: map[string]int64{}}
				events[s.Event] = e
			}
			e.count += s.Count
			if s.Result != resultHeld {
				revenue[s.Currency] += s.Sum
				e.revenue[s.Currency] += s.Sum
			}
			if b := bucketOf(s.Hour); b != nil {
				b.Conversions += s.Count
			}
		case store.StatAttempts:
			ov.Attempts.add(s.Result, s.Count, s.Sum)
			netOf(s.Network).Attempts.add(s.Result, s.Count, s.Sum)
			if b := bucketOf(s.Hour); b != nil {
				switch record.State(s.Result) {
				case record.StateDelivered:
					b.Delivered += s.Count
				case record.StateRetrying:
					b.Retrying += s.Count
				case record.StateDead:
					b.Dead += s.Count
				}
			}
		case store.StatWebhooks:
			if hooks[s.Network] == nil {
				hooks[s.Network] = map[string]int64{}
			}
			hooks[s.Network][s.Result] += s.Count
		}
	}
	ov.Revenue = moneyOf(revenue)
	for _, name := range []string{resultCredited, resultUncredited, resultHeld, resultDuplicate} {
		ov.Results = append(ov.Results, Count{Name: name, Count: results[name]})
	}
	for _, name := range sortedKeys(events) {
		e := events[name]
		ov.Events = append(ov.Events, EventFigures{Event: name, Conversions: e.count, Revenue: moneyOf(e.revenue)})
	}
	sort.SliceStable(ov.Events, func(i, j int) bool { return ov.Events[i].Conversions > ov.Events[j].Conversions })
	for _, provider := range sortedKeys(hooks) {
		wf := WebhookFigures{Provider: provider, Results: []Count{}}
		for _, res := range sortedKeys(hooks[provider]) {
			wf.Results = append(wf.Results, Count{Name: res, Count: hooks[provider][res]})
			wf.Total += hooks[provider][res]
		}
		ov.Webhooks = append(ov.Webhooks, wf)
	}
	ov.Attempts.finish()

	paused := host.Paused()
	for _, name := range sortedKeys(paused) {
		ov.Paused = append(ov.Paused, Paused{Network: name, Until: paused[name]})
		netOf(name).PausedUntil = paused[name]
	}
	for _, q := range queue {
		n := netOf(q.Network)
		n.Queued, n.Retrying, n.Running, n.DeadLetters = q.Queued, q.Retrying, q.Running, q.Dead
		ov.Waiting += q.Queued + q.Retrying
		ov.Running += q.Running
		ov.DeadLetters += q.Dead
		if !q.OldestWaiting.IsZero() {
			age := max(now.Sub(q.OldestWaiting), 0)
			n.OldestPendingAge = roundDuration(age).String()
			if age > ov.oldestWaiting {
				ov.oldestWaiting = age
				ov.OldestPendingAge = n.OldestPendingAge
			}
		}
	}
	for _, name := range sortedKeys(nets) {
		n := nets[name]
		n.Revenue = moneyOf(n.revenue)
		n.Attempts.finish()
		ov.Networks = append(ov.Networks, *n)
	}
	if ov.Networks == nil {
		ov.Networks = []NetworkFigures{}
	}
	ov.Series = buckets
	return ov, nil
}

// Money is an amount with its currency, as text: "49.90" "USD".
type Money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency,omitempty"`
}

// String formats the amount with its currency: "49.90 USD".
func (m Money) String() string {
	if m.Currency == "" {
		return m.Amount
	}
	return m.Amount + " " + m.Currency
}

// moneyOf turns sums in minor units, by currency, into amounts, sorted by
// currency.
func moneyOf(sums map[string]int64) []Money {
	out := []Money{}
	for _, cur := range sortedKeys(sums) {
		out = append(out, Money{Amount: order.FromMinor(sums[cur], cur).ForCurrency(cur), Currency: cur})
	}
	return out
}

// roundDuration keeps a duration readable: milliseconds with one decimal
// below a second, whole seconds above.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	case d < time.Minute:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// overviewPage is the overview's data.
type overviewPage struct {
	*Overview
	Periods          []Period
	ConversionsChart template.HTML
	AttemptsChart    template.HTML
}

func (p overviewPage) head() head { return head{Title: "Overview", Nav: "overview", Live: true} }

func (d *Dashboard) serveOverview(w http.ResponseWriter, r *http.Request) {
	f := newFilters(r, "period")
	p, err := ParsePeriod(f.get("period"))
	if err == nil {
		err = f.err
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	ctx, cancel := d.context(r)
	defer cancel()
	ov, err := BuildOverview(ctx, d.st, d.host, p, d.now())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	hourly := p.Days == 0
	d.render(w, r, http.StatusOK, "overview", overviewPage{Overview: ov, Periods: Periods,
		ConversionsChart: barChart("Conversions per "+stepName(hourly), ov.Series, hourly, []series{
			{name: "conversions", class: "bar-conv", value: func(b Bucket) int64 { return b.Conversions }},
		}),
		AttemptsChart: barChart("Postback attempts per "+stepName(hourly)+" by outcome", ov.Series, hourly, []series{
			{name: "delivered", class: "bar-ok", value: func(b Bucket) int64 { return b.Delivered }},
			{name: "retrying", class: "bar-retry", value: func(b Bucket) int64 { return b.Retrying }},
			{name: "dead", class: "bar-dead", value: func(b Bucket) int64 { return b.Dead }},
		}),
	})
}

func stepName(hourly bool) string {
	if hourly {
		return "hour"
	}
	return "day"
}
