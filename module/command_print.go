package module

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// The CLI's tables for people: aligned columns, amounts with their
// currency, times in RFC 3339, durations such as 45.2ms or 3m0s, "-" for
// nothing. --json prints the admin API's answer instead.

// table writes aligned columns; cells are made single-line.
type table struct {
	tw     *tabwriter.Writer
	indent string
}

func newTable(w io.Writer, header ...string) *table {
	return newIndentedTable(w, "", header...)
}

// newIndentedTable is a table whose rows start with indent.
func newIndentedTable(w io.Writer, indent string, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0), indent: indent}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, t.indent+strings.Join(cells, "\t"))
}

func (t *table) flush() { _ = t.tw.Flush() }

// cell makes a value fit one table cell: one line, no tabs, "-" for
// nothing, at most maxCell characters.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return clip(s, maxCell)
}

// maxCell bounds a table cell (an answer's snippet, a reason).
const maxCell = 80

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// rfc3339 formats a time, "-" for none.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// latency formats an attempt's latency as a duration: 45.2ms, 2.001s.
func latency(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// answer says what a network answered an attempt: "200 in 45.2ms", or
// "no answer after 2s: <error>".
func answer(at record.Attempt) string {
	if at.Status == 0 {
		s := "no answer after " + latency(at.LatencyMS)
		if at.Error != "" {
			s += ": " + at.Error
		}
		return s
	}
	return strconv.Itoa(at.Status) + " in " + latency(at.LatencyMS)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func printNextCursor(w io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(w, "\nmore: --cursor %s\n", next)
	}
}

func creditedNetworks(c record.Conversion) string {
	names := make([]string, 0, len(c.Credits))
	for _, cr := range c.Credits {
		names = append(names, cr.Network)
	}
	return strings.Join(names, ",")
}

func printConversions(w io.Writer, cs []conversionView) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "no conversions")
		return
	}
	t := newTable(w, "CREATED", "ID", "SOURCE", "EVENT", "ORDER", "AMOUNT", "STATUS", "CREDITED", "POSTBACKS")
	for _, c := range cs {
		sent := strconv.Itoa(len(c.Deliveries))
		if c.Held != "" {
			sent = "held"
		}
		t.row(rfc3339(c.CreatedAt), c.ID, c.Order.Source, c.Order.Event, c.Order.ID, c.Amount, string(c.Order.Status), creditedNetworks(c.Conversion), sent)
	}
	t.flush()
}

func printConversion(w io.Writer, c conversionDetail) {
	t := newTable(w, "Conversion", c.ID)
	t.row("Created", rfc3339(c.CreatedAt))
	t.row("Source", c.Order.Source)
	t.row("Event", c.Order.Event)
	t.row("Order", c.Order.ID)
	t.row("Amount", c.Amount)
	t.row("Status", string(c.Order.Status))
	t.row("Session", c.SessionID)
	t.row("Decision", c.Decision)
	if c.Held != "" {
		t.row("Held", c.Held)
	}
	for _, p := range c.Order.Problems {
		t.row("Problem", p)
	}
	t.flush()
	fmt.Fprintln(w)
	if len(c.Credits) == 0 {
		fmt.Fprintln(w, "Credited: none")
	} else {
		fmt.Fprintln(w, "Credited:")
		ct := newIndentedTable(w, "  ", "NETWORK", "CLICK ID", "CAPTURED", "WHY")
		for _, cr := range c.Credits {
			ct.row(cr.Network, cr.Touchpoint.ClickID, rfc3339(cr.Touchpoint.CapturedAt), cr.Reason)
		}
		ct.flush()
	}
	for _, s := range c.Skipped {
		fmt.Fprintf(w, "Not sent: %s\n", cell(s))
	}
	fmt.Fprintln(w)
	if len(c.DeliveryRecords) == 0 {
		fmt.Fprintln(w, "Postbacks: none")
		return
	}
	fmt.Fprintln(w, "Postbacks:")
	deliveriesTable(w, "  ", c.DeliveryRecords)
}

// deliveryNote says what comes next for a delivery: its next attempt
// while it waits, why it is dead, or when it was delivered.
func deliveryNote(d record.Delivery, at time.Time) string {
	switch {
	case d.State.Waiting() && !d.NextAttempt.IsZero():
		if wait := d.NextAttempt.Sub(at); wait > 0 {
			return "next try in " + wait.Round(time.Second).String()
		}
		return "due now"
	case d.State == record.StateRunning:
		return "sending"
	}
	return d.Reason
}

func lastAnswer(d record.Delivery) string {
	if n := len(d.Attempts); n > 0 {
		return answer(d.Attempts[n-1])
	}
	return ""
}

func printDeliveries(w io.Writer, ds []deliveryView) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "no deliveries")
		return
	}
	deliveriesTable(w, "", ds)
}

func deliveriesTable(w io.Writer, indent string, ds []deliveryView) {
	t := newIndentedTable(w, indent, "CREATED", "ID", "NETWORK", "EVENT", "ORDER", "STATE", "TRIES", "LAST ANSWER", "NOTE")
	at := time.Now()
	for _, d := range ds {
		t.row(rfc3339(d.CreatedAt), d.ID, d.Network, d.Event, d.OrderID, string(d.State), strconv.Itoa(d.Tries), lastAnswer(d.Delivery), deliveryNote(d.Delivery, at))
	}
	t.flush()
}

func printDelivery(w io.Writer, d deliveryView) {
	t := newTable(w, "Delivery", d.ID)
	t.row("Network", d.Network)
	t.row("Conversion", d.ConversionID)
	t.row("Event", d.Event)
	t.row("Order", d.OrderID+" ("+string(d.Status)+")")
	t.row("State", string(d.State))
	t.row("Created", rfc3339(d.CreatedAt))
	t.row("Queued", rfc3339(d.QueuedAt))
	if d.State.Waiting() {
		t.row("Next attempt", rfc3339(d.NextAttempt))
	}
	t.row("Max age", d.MaxAge)
	t.row("Tries", strconv.Itoa(d.Tries))
	if d.Reason != "" {
		t.row("Reason", d.Reason)
	}
	if d.Test {
		t.row("Test", "yes")
	}
	t.flush()
	fmt.Fprintln(w)
	if d.Request.URL != "" {
		fmt.Fprintln(w, "Request (secrets masked):")
		printRequest(w, d.Request, "  ")
		fmt.Fprintln(w)
	}
	if len(d.Attempts) == 0 {
		fmt.Fprintln(w, "Attempts: none yet")
		return
	}
	fmt.Fprintln(w, "Attempts:")
	at := newIndentedTable(w, "  ", "AT", "STATUS", "LATENCY", "OUTCOME", "ANSWER")
	for _, a := range d.Attempts {
		status := "-"
		if a.Status != 0 {
			status = strconv.Itoa(a.Status)
		}
		detail := a.Snippet
		if a.Error != "" {
			detail = a.Error
			if a.Snippet != "" {
				detail += ": " + a.Snippet
			}
		}
		at.row(rfc3339(a.At), status, latency(a.LatencyMS), a.Outcome, detail)
	}
	at.flush()
	if d.Tries > len(d.Attempts) {
		fmt.Fprintf(w, "  (%d earlier attempts not kept)\n", d.Tries-len(d.Attempts))
	}
}

// printRequest writes a request as it goes on the wire: the request line,
// the headers in order, then the body.
func printRequest(w io.Writer, r record.Request, indent string) {
	fmt.Fprintf(w, "%s%s %s\n", indent, r.Method, r.URL)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			fmt.Fprintf(w, "%s%s: %s\n", indent, k, v)
		}
	}
	if r.Body != "" {
		fmt.Fprintf(w, "%s\n%s%s\n", indent, indent, r.Body)
	}
}

func printClicks(w io.Writer, cs []clickView) {
	t := newTable(w, "CAPTURED", "NETWORK", "CLICK ID", "SESSION", "COUNTS UNTIL", "CONVERSIONS")
	for _, c := range cs {
		conv := strings.Join(c.Conversions, ",")
		if conv == "" {
			conv = "none"
		}
		t.row(rfc3339(c.Touchpoint.CapturedAt), c.Touchpoint.Network, c.Touchpoint.ClickID, c.SessionID, rfc3339(c.Touchpoint.ExpiresAt), conv)
	}
	t.flush()
}

func printWebhooks(w io.Writer, es []record.WebhookEntry) {
	if len(es) == 0 {
		fmt.Fprintln(w, "no webhooks")
		return
	}
	t := newTable(w, "RECEIVED", "ID", "PROVIDER", "PATH", "RESULT", "ORDER", "REASON")
	for _, e := range es {
		t.row(rfc3339(e.ReceivedAt), e.ID, e.Provider, e.Path, e.Result, e.OrderID, e.Reason)
	}
	t.flush()
}

func printQueue(w io.Writer, qs []queueView) {
	if len(qs) == 0 {
		fmt.Fprintln(w, "no networks and nothing queued")
		return
	}
	t := newTable(w, "NETWORK", "QUEUED", "RETRYING", "RUNNING", "DEAD", "OLDEST WAITING", "NEXT DUE", "PAUSED UNTIL")
	for _, q := range qs {
		name := q.Network
		if !q.Configured {
			name += " (not configured)"
		}
		t.row(name, strconv.Itoa(q.Queued), strconv.Itoa(q.Retrying), strconv.Itoa(q.Running), strconv.Itoa(q.Dead),
			q.OldestAge, rfc3339(q.NextDue), rfc3339(q.PausedUntil))
	}
	t.flush()
}

func printHealth(w io.Writer, h healthView) {
	if h.OK {
		fmt.Fprintf(w, "storage %s: ok\n", h.Storage)
		return
	}
	fmt.Fprintf(w, "storage %s: unavailable: %s\n", h.Storage, h.Error)
}

func printTestFire(w io.Writer, res TestFireResult) {
	printRequest(w, res.Request, "")
	fmt.Fprintln(w, "---")
	at := res.Attempt
	if at.Status == 0 && at.Error != "" {
		fmt.Fprintf(w, "failed after %s: %s\n", latency(at.LatencyMS), at.Error)
		return
	}
	fmt.Fprintf(w, "status %d in %s: %s\n", at.Status, latency(at.LatencyMS), at.Outcome)
	if at.Error != "" {
		fmt.Fprintf(w, "note: %s\n", at.Error)
	}
	if at.Snippet != "" {
		fmt.Fprintf(w, "%s\n", at.Snippet)
	}
}
