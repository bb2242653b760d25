package module

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

func tailCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "tail [--network <name>] [--lines <n>] [--interval <duration>]",
		Short: "Follow deliveries as they happen, until interrupted",
		Long: `Prints the latest deliveries, then a line for each new delivery and for
each attempt a delivery makes, until interrupted (Ctrl-C). It polls the
admin API's delivery listing.`,
		Args: cobra.NoArgs,
		RunE: caddycmd.WrapCommandFuncForCobra(cmdTail),
	}
	c.Flags().String("network", "", "Only this network's deliveries")
	c.Flags().IntP("lines", "n", 10, "Latest deliveries printed first")
	c.Flags().Duration("interval", time.Second, "How often to ask for new deliveries")
	return adminFlags(c)
}

func cmdTail(fl caddycmd.Flags) (int, error) {
	c, err := newAdminClient(fl)
	if err != nil {
		return caddy1, err
	}
	interval := fl.Duration("interval")
	if interval < 100*time.Millisecond {
		return caddy1, fmt.Errorf("--interval %s: want at least 100ms", interval)
	}
	lines := fl.Int("lines")
	if lines < 0 || lines > tailPage {
		return caddy1, fmt.Errorf("--lines %d: want 0 to %d", lines, tailPage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := &tailer{client: c, network: fl.String("network"), json: fl.Bool("json"), out: os.Stdout, seen: map[string]tailSeen{}}
	if err := t.start(lines); err != nil {
		return caddy1, err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, nil
		case <-tick.C:
		}
		if err := t.poll(); err != nil {
			// A Caddy that restarts or reloads is back in a moment: say
			// so and keep following.
			fmt.Fprintf(os.Stderr, "tail: %v\n", err)
		}
	}
}

// tailer follows the delivery listing. The listing is newest first, by ID,
// and IDs sort by creation time: each poll reads pages from the newest
// until it reaches deliveries made tailLookback before the newest one seen,
// so that a delivery committed late (by another node of a cluster) is not
// missed, and prints what it has not printed. It also follows the
// deliveries it has seen that are not final, printing each new attempt.
type tailer struct {
	client  *adminClient
	network string
	json    bool
	out     io.Writer
	// seen are the deliveries printed, by ID, with what was printed.
	seen map[string]tailSeen
	// newest is the highest ID seen.
	newest string
}

// tailSeen is what tail last printed of a delivery.
type tailSeen struct {
	state record.State
	tries int
}

// Tail bounds.
const (
	// tailPage is the page size of each listing call.
	tailPage = 100
	// tailLookback is how far before the newest delivery seen each poll
	// looks for ones it has not seen.
	tailLookback = 15 * time.Second
	// tailFollow bounds the deliveries followed for their attempts
	// beyond those on the latest pages.
	tailFollow = 200
)

func (t *tailer) list(cursor string, limit int) (page[deliveryView], error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if t.network != "" {
		q.Set("network", t.network)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var p page[deliveryView]
	_, err := t.client.get("/postback/deliveries?"+q.Encode(), &p)
	return p, err
}

// start prints the latest n deliveries, oldest first.
func (t *tailer) start(n int) error {
	p, err := t.list("", max(n, 1))
	if err != nil {
		return err
	}
	items := p.Items
	if n == 0 {
		items = nil
	}
	slices.Reverse(items)
	for _, d := range p.Items {
		t.note(d)
	}
	for _, d := range items {
		t.print(d)
	}
	return nil
}

// note records a delivery as seen without printing it.
func (t *tailer) note(d deliveryView) {
	t.seen[d.ID] = tailSeen{state: d.State, tries: d.Tries}
	if d.ID > t.newest {
		t.newest = d.ID
	}
}

func (t *tailer) poll() error {
	floor := ""
	if at, ok := record.IDTime(t.newest); ok {
		floor = record.IDFloor(at.Add(-tailLookback))
	}
	var fresh []deliveryView
	onPages := map[string]bool{}
	cursor := ""
	for {
		p, err := t.list(cursor, tailPage)
		if err != nil {
			return err
		}
		done := p.NextCursor == ""
		for _, d := range p.Items {
			if d.ID < floor {
				done = true
				break
			}
			onPages[d.ID] = true
			fresh = append(fresh, d)
		}
		if done {
			break
		}
		cursor = p.NextCursor
	}
	// Deliveries seen before that have left the latest pages and are not
	// final yet: ask for each (the most recent ones, up to tailFollow).
	var follow []string
	for id, s := range t.seen {
		if !onPages[id] && (s.state.Waiting() || s.state == record.StateRunning) {
			follow = append(follow, id)
		}
	}
	slices.Sort(follow)
	if len(follow) > tailFollow {
		for _, id := range follow[:len(follow)-tailFollow] {
			delete(t.seen, id)
		}
		follow = follow[len(follow)-tailFollow:]
	}
	for _, id := range follow {
		var d deliveryView
		if _, err := t.client.get("/postback/deliveries/"+url.PathEscape(id), &d); err != nil {
			delete(t.seen, id) // removed (erased, expired): nothing more to follow
			continue
		}
		fresh = append(fresh, d)
	}
	slices.SortFunc(fresh, func(a, b deliveryView) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	for _, d := range fresh {
		prev, ok := t.seen[d.ID]
		// A new delivery, or a new attempt of one; a delivery only being
		// claimed (running) is not news.
		if !ok || d.Tries != prev.tries || (d.State != prev.state && d.State != record.StateRunning) {
			t.print(d)
		}
		t.note(d)
	}
	// Forget final deliveries that have left the latest pages.
	for id, s := range t.seen {
		if !onPages[id] && !s.state.Waiting() && s.state != record.StateRunning {
			delete(t.seen, id)
		}
	}
	return nil
}

// print writes one line for a delivery as it stands: when (its last
// attempt, else its creation), network, event, order, state, tries, the
// last answer, what comes next, and its ID. With --json the line is the
// delivery as the API shows it.
func (t *tailer) print(d deliveryView) {
	if t.json {
		b, err := json.Marshal(d)
		if err == nil {
			fmt.Fprintf(t.out, "%s\n", b)
		}
		return
	}
	at := d.CreatedAt
	if n := len(d.Attempts); n > 0 {
		at = d.Attempts[n-1].At
	}
	fmt.Fprintf(t.out, "%-25s  %-14s  %-10s  %-16s  %-9s  try %-3d  %-22s  %s  %s\n",
		rfc3339(at), cell(d.Network), cell(d.Event), "order "+clip(d.OrderID, 10), d.State, d.Tries, cell(lastAnswer(d.Delivery)),
		cell(deliveryNote(d.Delivery, time.Now())), d.ID)
}
