package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Destination is how the dispatcher treats one network.
type Destination struct {
	// Classify reads answers; nil uses the default status reading.
	Classify func(status int, header http.Header, body []byte) (postback.Outcome, string)
	// Concurrency bounds parallel requests to the network; default 8.
	Concurrency int
}

// Options configures a Dispatcher.
type Options struct {
	// Timeout bounds one attempt; default 10s.
	Timeout time.Duration
	// Retry is the backoff policy.
	Retry RetryPolicy
	// PauseAfter consecutive transient failures pause a network; default 5.
	PauseAfter int
	// PauseBase is the first pause, doubled on each further failure up to
	// PauseMax; defaults 5s and 10m.
	PauseBase time.Duration
	PauseMax  time.Duration
	// Logger receives delivery outcomes.
	Logger *zap.Logger
	// OnOutcome is called after each attempt (metrics).
	OnOutcome func(network string, outcome string)
	// OnPause is called when a network is paused or resumed (metrics).
	OnPause func(network string, paused bool)
	// Client sends the requests; default a client tuned for many small
	// requests to few hosts.
	Client *http.Client
}

// Dispatcher sends due deliveries. One runs per store: it lives with the
// store, not with a config, so a reload never runs two.
type Dispatcher struct {
	ob      *Outbox
	opts    Options
	client  *http.Client
	logger  *zap.Logger
	dests   atomic.Pointer[map[string]Destination]
	wake    chan struct{}
	mu      sync.Mutex
	nets    map[string]*netState
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started atomic.Bool
	stopped chan struct{}
}

// netState is the in-memory state of one destination.
type netState struct {
	name        string
	queue       chan *Delivery
	workers     int
	failures    int       // consecutive transient failures
	pausedUntil time.Time // zero when not paused
	// held are the IDs this process has claimed and not yet finished (in
	// queue or in an attempt), guarded by Dispatcher.mu. A lease in the store
	// only matters after a crash; while a delivery is held here the poll
	// must not claim it again even if its lease has run out (a slow network
	// keeps it queued that long), or it would be sent twice.
	held map[string]struct{}
	// floor is where the next scan of the due index starts. Claimed and
	// finished entries leave deletion markers at the front of the index
	// until the store compacts them away; starting every scan at the very
	// front would step over all of them, at every poll, under load.
	floor time.Time
	// fullScanAt is when the floor is next reset, so that nothing is ever
	// left behind it for long (a due key whose finish failed, say).
	fullScanAt time.Time
}

// floorMargin is how far behind the scan time the floor stays: every new
// due key is written with a due time taken at most this long before its
// transaction commits (enqueue, replay and requeue use the current time).
const floorMargin = time.Second

// fullScanEvery bounds how long a due key behind the floor can wait.
const fullScanEvery = 30 * time.Second

// minPollGap coalesces the wake-ups of a busy outbox: one poll claims
// everything due since the last, instead of one poll per enqueue.
const minPollGap = 2 * time.Millisecond

// snippetLen caps the answer body kept with an attempt; readLimit caps what
// is read at all (the rest is discarded with the connection).
const (
	snippetLen = 512
	readLimit  = 64 << 10
)

// NewDispatcher returns a dispatcher for ob. It wakes whenever ob records
// new deliveries.
func NewDispatcher(ob *Outbox, opts Options) *Dispatcher {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.PauseAfter <= 0 {
		opts.PauseAfter = 5
	}
	if opts.PauseBase <= 0 {
		opts.PauseBase = 5 * time.Second
	}
	if opts.PauseMax <= 0 {
		opts.PauseMax = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	opts.Retry = opts.Retry.withDefaults()
	d := &Dispatcher{ob: ob, opts: opts, logger: opts.Logger, wake: make(chan struct{}, 1),
		nets: map[string]*netState{}, stopped: make(chan struct{})}
	d.client = opts.Client
	if d.client == nil {
		d.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          256,
				MaxIdleConnsPerHost:   64,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   5 * time.Second,
				ResponseHeaderTimeout: opts.Timeout,
			},
			CheckRedirect: func(_ *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("stopped after 5 redirects")
				}
				return nil
			},
		}
	}
	empty := map[string]Destination{}
	d.dests.Store(&empty)
	ob.notify = d.enqueued
	return d
}

// SetDestinations replaces the per-network settings (on config load).
func (d *Dispatcher) SetDestinations(m map[string]Destination) {
	d.dests.Store(&m)
	d.Wake()
}

// enqueued makes sure the networks are polled, then wakes the loop.
func (d *Dispatcher) enqueued(networks ...string) {
	for _, n := range networks {
		d.state(n)
	}
	d.Wake()
}

// Wake makes the dispatcher look for due work now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the dispatcher until Stop.
func (d *Dispatcher) Start() {
	if !d.started.CompareAndSwap(false, true) {
		return
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.run()
}

// Stop ends the dispatcher: attempts in flight finish (each is bounded by
// the timeout), and claimed deliveries not yet sent go back to the queue.
func (d *Dispatcher) Stop() {
	if !d.started.Load() {
		return
	}
	d.cancel()
	<-d.stopped
	d.wg.Wait()
	d.mu.Lock()
	var back []*Delivery
	for _, ns := range d.nets {
		for len(ns.queue) > 0 {
			back = append(back, <-ns.queue)
		}
		clear(ns.held)
	}
	d.mu.Unlock()
	for _, del := range back {
		if err := d.requeue(del, now()); err != nil {
			d.logger.Warn("returning claimed delivery to the queue", zap.String("delivery", del.ID), zap.Error(err))
		}
	}
}

func (d *Dispatcher) run() {
	defer close(d.stopped)
	if err := d.discover(); err != nil {
		d.logger.Error("listing queued deliveries", zap.Error(err))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		polled := time.Now()
		next := d.poll()
		if gap := minPollGap - time.Since(polled); gap > 0 {
			time.Sleep(gap)
		}
		wait := time.Second // look again at least this often
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// discover finds the networks that have queued deliveries (after a restart,
// or for a network removed from config).
func (d *Dispatcher) discover() error {
	from := []byte(store.PrefixDue)
	for {
		var name string
		err := d.ob.store.View(func(txn store.Txn) error {
			return txn.Scan([]byte(store.PrefixDue), from, func(k, _ []byte) error {
				rest := k[len(store.PrefixDue):]
				if i := bytes.IndexByte(rest, '/'); i > 0 {
					name = string(rest[:i])
				}
				return store.ErrStop
			})
		})
		if err != nil || name == "" {
			return err
		}
		d.state(name)
		from = append(store.DuePrefix(name), 0xff)
	}
}

func (d *Dispatcher) dest(name string) Destination {
	ds := *d.dests.Load()
	dst := ds[name]
	if dst.Concurrency <= 0 {
		dst.Concurrency = 8
	}
	return dst
}

// state returns a network's state, creating it (and its workers).
func (d *Dispatcher) state(name string) *netState {
	d.mu.Lock()
	defer d.mu.Unlock()
	ns, ok := d.nets[name]
	if !ok {
		c := d.dest(name).Concurrency
		ns = &netState{name: name, queue: make(chan *Delivery, c*8), held: map[string]struct{}{}}
		d.nets[name] = ns
	}
	return ns
}

// poll claims due deliveries of every network that has room, and returns
// when the earliest not-yet-due delivery is due.
func (d *Dispatcher) poll() time.Time {
	for name := range *d.dests.Load() {
		d.state(name)
	}
	d.mu.Lock()
	nets := make([]*netState, 0, len(d.nets))
	for _, ns := range d.nets {
		nets = append(nets, ns)
	}
	d.mu.Unlock()
	var next time.Time
	t := now()
	for _, ns := range nets {
		d.mu.Lock()
		paused := t.Before(ns.pausedUntil)
		pausedUntil := ns.pausedUntil
		room := cap(ns.queue) - len(ns.queue)
		d.mu.Unlock()
		if paused {
			next = earliest(next, pausedUntil)
			continue
		}
		if room <= 0 {
			continue
		}
		claimed, due, err := d.claim(ns, t, room)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				d.logger.Error("claiming due deliveries", zap.String("network", ns.name), zap.Error(err))
			}
			continue
		}
		next = earliest(next, due)
		d.mu.Lock()
		for _, del := range claimed {
			ns.held[del.ID] = struct{}{}
		}
		d.mu.Unlock()
		for _, del := range claimed {
			ns.queue <- del
		}
		if len(claimed) > 0 {
			d.ensureWorkers(ns)
		}
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// claim leases up to limit due deliveries of a network: their due time moves
// to after the attempt's timeout, so if the process dies mid-attempt the
// delivery comes due again and is retried (at least once, never lost).
// Deliveries this process still holds are skipped, whatever their lease.
func (d *Dispatcher) claim(ns *netState, t time.Time, limit int) ([]*Delivery, time.Time, error) {
	network := ns.name
	var claimed []*Delivery
	var next time.Time
	lease := t.Add(d.opts.Timeout + 30*time.Second)
	var scanned, advanced time.Time
	err := d.ob.store.Update(func(txn store.Txn) error {
		claimed, next = claimed[:0], time.Time{}
		var ids []string
		var keys [][]byte
		until := store.DueUntil(network, t)
		d.mu.Lock()
		floor := ns.floor
		if !t.Before(ns.fullScanAt) {
			floor, ns.fullScanAt = time.Time{}, t.Add(fullScanEvery)
		}
		d.mu.Unlock()
		var from []byte
		if !floor.IsZero() {
			from = store.DueKey(network, floor, "")
		}
		newFloor := t.Add(-floorMargin)
		err := txn.Scan(store.DuePrefix(network), from, func(k, _ []byte) error {
			if bytes.Compare(k, until) >= 0 {
				if due, _, ok := store.ParseDueKey(network, k); ok {
					next = due
				}
				return store.ErrStop
			}
			if len(ids) >= limit {
				next = t
				if due, _, ok := store.ParseDueKey(network, k); ok && due.Before(newFloor) {
					newFloor = due // the rest waits for room; start there next time
				}
				return store.ErrStop
			}
			_, id, ok := store.ParseDueKey(network, k)
			if ok && d.holds(ns, id) {
				return nil // queued or in an attempt here; its lease ran out while it waited
			}
			if ok {
				ids = append(ids, id)
				keys = append(keys, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		scanned, advanced = floor, newFloor
		for i, id := range ids {
			if err := txn.Delete(keys[i]); err != nil {
				return err
			}
			del, err := getDelivery(txn, id)
			if errors.Is(err, ErrNotFound) {
				continue // a stale index entry
			}
			if err != nil {
				return err
			}
			if del.State != StateQueued && del.State != StateRetrying {
				continue
			}
			// Only the due key moves: rewriting the whole record here would
			// add a third full write per delivery (and most of the store's
			// compaction work while a backlog drains). The lease time
			// travels in memory; after a crash the due key alone says when
			// the delivery is due again.
			del.NextAttempt = lease
			if err := txn.Set(store.DueKey(network, lease, id), nil, 0); err != nil {
				return err
			}
			claimed = append(claimed, del)
		}
		return nil
	})
	if err == nil && advanced.After(scanned) {
		// Only a committed claim moves the floor: a retried transaction
		// must scan the same range again.
		d.mu.Lock()
		if advanced.After(ns.floor) {
			ns.floor = advanced
		}
		d.mu.Unlock()
	}
	return claimed, next, err
}

// holds reports whether this process has claimed a delivery and not yet
// finished with it.
func (d *Dispatcher) holds(ns *netState, id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := ns.held[id]
	return ok
}

// release ends this process's hold on a delivery, after its attempt's
// outcome (or its return to the queue) is committed, so a later poll may
// claim it again if it is still due.
func (d *Dispatcher) release(ns *netState, id string) {
	d.mu.Lock()
	delete(ns.held, id)
	d.mu.Unlock()
}

func (d *Dispatcher) ensureWorkers(ns *netState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := d.dest(ns.name).Concurrency
	for ns.workers < want {
		ns.workers++
		d.wg.Add(1)
		go d.worker(ns)
	}
}

func (d *Dispatcher) worker(ns *netState) {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case del := <-ns.queue:
			d.attempt(ns, del)
			d.release(ns, del.ID)
			d.Wake()
		}
	}
}

// attempt sends one delivery and records the outcome.
func (d *Dispatcher) attempt(ns *netState, del *Delivery) {
	d.mu.Lock()
	pausedUntil := ns.pausedUntil
	d.mu.Unlock()
	if now().Before(pausedUntil) {
		if err := d.requeue(del, pausedUntil); err != nil {
			d.logger.Warn("postponing delivery of a paused network", zap.String("delivery", del.ID), zap.Error(err))
		}
		return
	}
	dst := d.dest(ns.name)
	at, header, body := d.send(d.ctx, del.Request)
	outcome := postback.Retry
	if at.Error == "" {
		classify := dst.Classify
		if classify == nil {
			classify = func(s int, _ http.Header, _ []byte) (postback.Outcome, string) { return postback.ClassifyStatus(s), "" }
		}
		var why string
		outcome, why = classify(at.Status, header, body)
		if why != "" {
			at.Error = why
		}
	} else if d.ctx.Err() != nil {
		// Stopping: the attempt was cut short by us, not by the network.
		if err := d.requeue(del, now()); err != nil {
			d.logger.Warn("returning interrupted delivery to the queue", zap.String("delivery", del.ID), zap.Error(err))
		}
		return
	}
	at.Outcome = outcome.String()
	retryAfter := parseRetryAfter(header, now())
	final, err := d.finish(del, at, outcome, retryAfter)
	if err != nil {
		d.logger.Error("recording delivery attempt", zap.String("delivery", del.ID), zap.Error(err))
		return
	}
	d.track(ns, outcome)
	if d.opts.OnOutcome != nil {
		d.opts.OnOutcome(ns.name, string(final.State))
	}
	fields := []zap.Field{zap.String("network", ns.name), zap.String("delivery", del.ID),
		zap.Int("status", at.Status), zap.Float64("latency_ms", at.LatencyMS), zap.Int("tries", final.Tries),
		zap.String("state", string(final.State))}
	switch final.State {
	case StateDelivered:
		if c := d.logger.Check(zap.DebugLevel, "postback delivered"); c != nil {
			c.Write(fields...)
		}
	case StateDead:
		d.logger.Warn("postback dead-lettered", append(fields, zap.String("reason", final.Reason))...)
	default:
		d.logger.Info("postback will be retried", append(fields, zap.String("error", at.Error), zap.Time("next_attempt", final.NextAttempt))...)
	}
}

// track updates a network's consecutive-failure count and pause.
func (d *Dispatcher) track(ns *netState, o postback.Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch o {
	case postback.Delivered:
		if !ns.pausedUntil.IsZero() {
			d.logger.Info("network resumed", zap.String("network", ns.name))
			if d.opts.OnPause != nil {
				d.opts.OnPause(ns.name, false)
			}
		}
		ns.failures, ns.pausedUntil = 0, time.Time{}
	case postback.Retry:
		ns.failures++
		if ns.failures >= d.opts.PauseAfter {
			p := d.opts.PauseBase
			for i := d.opts.PauseAfter; i < ns.failures && p < d.opts.PauseMax; i++ {
				p *= 2
			}
			p = min(p, d.opts.PauseMax)
			ns.pausedUntil = now().Add(p)
			d.logger.Warn("network keeps failing; pausing its deliveries", zap.String("network", ns.name),
				zap.Int("consecutive_failures", ns.failures), zap.Duration("pause", p))
			if d.opts.OnPause != nil {
				d.opts.OnPause(ns.name, true)
			}
		}
	}
}

// send performs one HTTP attempt.
func (d *Dispatcher) send(ctx context.Context, r postback.Request) (Attempt, http.Header, []byte) {
	at := Attempt{At: now()}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		at.Error = fmt.Sprintf("building request: %v", err)
		return at, nil, nil
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "caddy-postback/1")
	}
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		at.LatencyMS = msSince(start)
		at.Error = err.Error()
		return at, nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, readLimit))
	at.LatencyMS = msSince(start)
	at.Status = resp.StatusCode
	if err != nil && len(b) == 0 {
		at.Error = fmt.Sprintf("reading answer: %v", err)
	}
	at.Snippet = string(b[:min(len(b), snippetLen)])
	return at, resp.Header, b
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// finish records an attempt and moves the delivery to its next state.
func (d *Dispatcher) finish(del *Delivery, at Attempt, o postback.Outcome, retryAfter time.Duration) (*Delivery, error) {
	var out *Delivery
	err := d.ob.store.Update(func(txn store.Txn) error {
		cur, err := getDelivery(txn, del.ID)
		if err != nil {
			return err
		}
		if err := txn.Delete(store.DueKey(cur.Network, del.NextAttempt, cur.ID)); err != nil {
			return err // the lease taken by claim
		}
		cur.Tries++
		cur.Attempts = append(cur.Attempts, at)
		if n := len(cur.Attempts); n > maxAttemptsKept {
			cur.Attempts = append(cur.Attempts[:1], cur.Attempts[n-maxAttemptsKept+1:]...)
		}
		t := now()
		switch o {
		case postback.Delivered:
			cur.State, cur.NextAttempt, cur.Reason = StateDelivered, time.Time{}, ""
			err = putDelivery(txn, cur, d.ob.logRetention())
		case postback.Reject:
			cur.Reason = fmt.Sprintf("rejected by the network (status %d)", at.Status)
			if at.Error != "" {
				cur.Reason += ": " + at.Error
			}
			err = d.bury(txn, cur)
		default:
			wait := d.opts.Retry.Backoff(cur.Tries, retryAfter)
			if t.Add(wait).Sub(cur.QueuedAt) > cur.MaxAge {
				cur.Reason = fmt.Sprintf("gave up after %d tries: max age %s reached", cur.Tries, cur.MaxAge)
				err = d.bury(txn, cur)
				break
			}
			cur.State, cur.NextAttempt = StateRetrying, t.Add(wait)
			if err = putDelivery(txn, cur, 0); err == nil {
				err = txn.Set(store.DueKey(cur.Network, cur.NextAttempt, cur.ID), nil, 0)
			}
		}
		out = cur
		return err
	})
	return out, err
}

// bury moves a delivery to the dead letters.
func (d *Dispatcher) bury(txn store.Txn, del *Delivery) error {
	del.State, del.NextAttempt = StateDead, time.Time{}
	if err := putDelivery(txn, del, d.ob.deadRetention()); err != nil {
		return err
	}
	return txn.Set(store.Key(store.PrefixDead, del.ID), nil, d.ob.deadRetention())
}

// requeue makes a claimed delivery due at t again, without counting a try.
func (d *Dispatcher) requeue(del *Delivery, t time.Time) error {
	return d.ob.store.Update(func(txn store.Txn) error {
		cur, err := getDelivery(txn, del.ID)
		if err != nil {
			return err
		}
		if cur.State != StateQueued && cur.State != StateRetrying {
			return nil
		}
		if err := txn.Delete(store.DueKey(cur.Network, del.NextAttempt, cur.ID)); err != nil {
			return err // the lease taken by claim
		}
		cur.NextAttempt = t
		if err := putDelivery(txn, cur, 0); err != nil {
			return err
		}
		return txn.Set(store.DueKey(cur.Network, t, cur.ID), nil, 0)
	})
}

// Fire sends a request once, outside the queue (a test fire), and reads
// the answer with the destination's rules.
func (d *Dispatcher) Fire(ctx context.Context, r postback.Request, dst postback.Destination) Attempt {
	at, header, body := d.send(ctx, r)
	if at.Error == "" {
		o, why := dst.Classify(at.Status, header, body)
		at.Outcome = o.String()
		at.Error = why
	} else {
		at.Outcome = postback.Retry.String()
	}
	return at
}
