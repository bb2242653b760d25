// Package outbox sends the queued postbacks: a dispatcher claims due
// deliveries from the store's queue, as many as its free workers can send,
// with a lease; renders each with its network's current configuration;
// sends it; and records the outcome (delivered, retry with backoff, dead
// letter) only while it still holds the lease. Several dispatchers, one
// per Caddy node, can share one queue.
package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/postback"
	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Destination is a network as the dispatcher sends to it.
type Destination struct {
	postback.Destination
	// Concurrency bounds parallel requests to the network; default 8.
	Concurrency int
}

// Config is what a Caddy config gives the dispatcher; a reload replaces it
// while deliveries flow.
type Config struct {
	// Destinations are the configured networks, by name. Deliveries of a
	// network not listed wait in the queue.
	Destinations map[string]Destination
	// Masker hides secrets in what is stored and logged.
	Masker *postback.Masker
	// KeepDelivered and KeepDead are how long delivered postbacks and dead
	// letters stay in the delivery log; defaults 30 and 90 days.
	KeepDelivered time.Duration
	KeepDead      time.Duration
}

// Options configures a Dispatcher for its lifetime.
type Options struct {
	// Owner names this dispatcher in leases; default host name, process ID
	// and a random suffix.
	Owner string
	// Timeout bounds one attempt; default 10s.
	Timeout time.Duration
	// LeaseMargin is how long a lease outlives the attempt's timeout, for
	// recording the outcome; default 30s. A dispatcher that dies holds its
	// deliveries this long past their timeout before another rescues them.
	LeaseMargin time.Duration
	// Poll is how often the queue is looked at when nothing woke the
	// dispatcher (deliveries queued by other nodes); default 1s.
	Poll time.Duration
	// Retry is the backoff policy.
	Retry RetryPolicy
	// PauseAfter consecutive transient failures pause a network; default 5.
	PauseAfter int
	// PauseBase is the first pause, doubled while failures go on up to
	// PauseMax; defaults 5s and 10m.
	PauseBase time.Duration
	PauseMax  time.Duration
	// Logger receives delivery outcomes.
	Logger *zap.Logger
	// OnAttempt is called after each attempt (metrics): the network, the
	// resulting state, the answer's status (0 for none) and the latency.
	OnAttempt func(network string, state record.State, status int, latency time.Duration)
	// OnPause is called when a network is paused or resumes.
	OnPause func(network string, paused bool)
	// Client sends the requests; default NewClient(Timeout).
	Client *http.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultKeepDelivered = 30 * 24 * time.Hour
	DefaultKeepDead      = 90 * 24 * time.Hour
	DefaultConcurrency   = 8
)

// Dispatcher sends due deliveries.
type Dispatcher struct {
	queue  store.Queue
	opts   Options
	client *http.Client
	logger *zap.Logger
	cfg    atomic.Pointer[Config]
	wake   chan struct{}

	mu   sync.Mutex
	nets map[string]*netState

	ctx      context.Context
	cancel   context.CancelFunc
	loopDone chan struct{}
	sends    sync.WaitGroup
	started  atomic.Bool
}

// netState is what this dispatcher knows of one network.
type netState struct {
	inflight    int
	failures    int       // consecutive transient failures
	pausedUntil time.Time // zero when not paused
}

// snippetLen caps the answer body kept with an attempt; readLimit caps what
// is read at all.
const (
	snippetLen = 512
	readLimit  = 64 << 10
)

// New returns a dispatcher on a queue.
func New(q store.Queue, opts Options) *Dispatcher {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.LeaseMargin <= 0 {
		opts.LeaseMargin = 30 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Owner == "" {
		opts.Owner = NewOwner()
	}
	opts.Retry = opts.Retry.withDefaults()
	d := &Dispatcher{queue: q, opts: opts, logger: opts.Logger, client: opts.Client,
		wake: make(chan struct{}, 1), nets: map[string]*netState{}, loopDone: make(chan struct{})}
	if d.client == nil {
		d.client = NewClient(opts.Timeout)
	}
	d.cfg.Store(&Config{})
	return d
}

// NewOwner returns a lease owner name unique to this process: the host,
// the process ID and a random suffix.
func NewOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// NewClient returns the HTTP client postbacks are sent with: tuned for many
// small requests to few hosts, and following no redirect to another host.
// A same-host 307 or 308 (which keep the method and body) is followed up
// to three times; no Referer is sent.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: timeout,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			req.Header.Del("Referer")
			code := 0
			if req.Response != nil {
				code = req.Response.StatusCode
			}
			if len(via) > 3 || req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme ||
				(code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// Owner returns the name this dispatcher leases deliveries under.
func (d *Dispatcher) Owner() string { return d.opts.Owner }

// Configure gives the dispatcher a config's networks; safe while it runs.
func (d *Dispatcher) Configure(c Config) {
	if c.KeepDelivered <= 0 {
		c.KeepDelivered = DefaultKeepDelivered
	}
	if c.KeepDead <= 0 {
		c.KeepDead = DefaultKeepDead
	}
	d.cfg.Store(&c)
	d.Wake()
}

// Wake makes the dispatcher look for due work now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the dispatcher until Stop. A second Start does nothing.
func (d *Dispatcher) Start() {
	if !d.started.CompareAndSwap(false, true) {
		return
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.run()
}

// Stop ends the dispatcher: attempts in flight are cut short and their
// deliveries given back to the queue, due at once.
func (d *Dispatcher) Stop() {
	if !d.started.Load() {
		return
	}
	d.cancel()
	<-d.loopDone
	d.sends.Wait()
}

func (d *Dispatcher) run() {
	defer close(d.loopDone)
	rescueEvery := min(max(d.opts.LeaseMargin/2, time.Second), 30*time.Second)
	lastRescue := time.Time{}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if time.Since(lastRescue) >= rescueEvery {
			lastRescue = time.Now()
			if n, err := d.queue.Rescue(d.ctx, d.opts.Now()); err != nil {
				d.storageTrouble("rescuing expired leases", err, &failures)
			} else if n > 0 {
				d.logger.Warn("deliveries whose dispatcher stopped answering were returned to the queue", zap.Int("deliveries", n))
			}
		}
		wait, err := d.poll()
		if err != nil {
			d.storageTrouble("claiming due deliveries", err, &failures)
			// Back off while the storage cannot serve: 1s, 2s, … 30s.
			wait = min(time.Duration(1<<min(failures-1, 5))*time.Second, 30*time.Second)
		} else if failures > 0 {
			d.logger.Warn("the delivery queue is available again; sending resumes")
			failures = 0
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

// storageTrouble logs a storage failure once per outage, loudly.
func (d *Dispatcher) storageTrouble(what string, err error, failures *int) {
	if d.ctx.Err() != nil {
		return
	}
	*failures++
	if *failures == 1 {
		d.logger.Error("the delivery queue cannot be read; deliveries wait and sending resumes by itself when storage returns",
			zap.String("doing", what), zap.Error(err))
	}
}

// poll claims, for every configured network that is not paused, as many
// due deliveries as it has free workers, starts sending them, and returns
// how long to wait before looking again.
func (d *Dispatcher) poll() (time.Duration, error) {
	cfg := d.cfg.Load()
	names := make([]string, 0, len(cfg.Destinations))
	for n := range cfg.Destinations {
		names = append(names, n)
	}
	sort.Strings(names)
	now := d.opts.Now()
	wait := d.opts.Poll
	for _, name := range names {
		dst := cfg.Destinations[name]
		conc := dst.Concurrency
		if conc <= 0 {
			conc = DefaultConcurrency
		}
		d.mu.Lock()
		ns := d.state(name)
		paused, free := now.Before(ns.pausedUntil), conc-ns.inflight
		pausedUntil := ns.pausedUntil
		d.mu.Unlock()
		if paused {
			wait = min(wait, pausedUntil.Sub(now))
			continue
		}
		if free <= 0 {
			continue // a finishing attempt wakes the loop
		}
		claimed, next, err := d.queue.Claim(d.ctx, name, d.opts.Owner, free, now, now.Add(d.opts.Timeout+d.opts.LeaseMargin))
		if err != nil {
			if d.ctx.Err() != nil {
				return wait, nil
			}
			return wait, err
		}
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(now), time.Millisecond))
		}
		d.mu.Lock()
		ns.inflight += len(claimed)
		d.mu.Unlock()
		for i := range claimed {
			d.sends.Add(1)
			go d.send(name, &claimed[i])
		}
	}
	return max(wait, time.Millisecond), nil
}

// state returns a network's state; d.mu is held.
func (d *Dispatcher) state(name string) *netState {
	ns := d.nets[name]
	if ns == nil {
		ns = &netState{}
		d.nets[name] = ns
	}
	return ns
}

// send makes one attempt at a claimed delivery and records its outcome.
func (d *Dispatcher) send(network string, del *record.Delivery) {
	defer d.sends.Done()
	defer func() {
		d.mu.Lock()
		d.state(network).inflight--
		d.mu.Unlock()
		d.Wake()
	}()
	cfg := d.cfg.Load()
	dst, ok := cfg.Destinations[network]
	d.mu.Lock()
	pausedUntil := d.state(network).pausedUntil
	d.mu.Unlock()
	now := d.opts.Now()
	switch {
	case !ok:
		// The network left the config while the delivery was claimed.
		d.release(del, now.Add(time.Minute))
		return
	case now.Before(pausedUntil):
		d.release(del, pausedUntil)
		return
	}
	req, err := dst.Render(d.ctx, &del.Postback)
	if err != nil {
		d.renderFailed(cfg, del, err)
		return
	}
	masked := cfg.Masker.Request(req)
	at, header, body := d.do(d.ctx, req)
	if at.Error != "" && d.ctx.Err() != nil {
		d.release(del, d.opts.Now()) // stopping: cut short by us, not by the network
		return
	}
	outcome, why := d.classify(dst, at, header, body)
	at.Outcome, at.Error, at.Snippet = outcome.String(), cfg.Masker.String(joinWhy(at.Error, why)), cfg.Masker.String(at.Snippet)
	d.settle(cfg, del, at, masked, outcome, parseRetryAfter(header, d.opts.Now()))
}

func joinWhy(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

// classify reads an answer: a redirect is a permanent failure (postbacks
// go only where configured), anything else the destination reads.
func (d *Dispatcher) classify(dst Destination, at record.Attempt, header http.Header, body []byte) (postback.Outcome, string) {
	switch {
	case at.Status == 0:
		return postback.Retry, ""
	case at.Status >= 300 && at.Status < 400:
		where := header.Get("Location")
		return postback.Reject, fmt.Sprintf("answered %d with a redirect to %q, not followed: postbacks go only where they are configured to", at.Status, where)
	}
	return dst.Classify(at.Status, header, body)
}

// settle records an attempt's outcome under the lease.
func (d *Dispatcher) settle(cfg *Config, del *record.Delivery, at record.Attempt, req record.Request, o postback.Outcome, retryAfter time.Duration) {
	now := d.opts.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.Timeout)
	defer cancel()
	owner := d.opts.Owner
	state, reason := record.StateDelivered, ""
	var err error
	switch o {
	case postback.Delivered:
		err = d.queue.Complete(ctx, del.ID, owner, at, req, now.Add(cfg.KeepDelivered))
	case postback.Reject:
		state, reason = record.StateDead, fmt.Sprintf("rejected by the network (status %d)", at.Status)
		if at.Error != "" {
			reason += ": " + at.Error
		}
		err = d.queue.Bury(ctx, del.ID, owner, &at, req, reason, now.Add(cfg.KeepDead))
	default:
		wait := d.opts.Retry.Backoff(del.Tries+1, retryAfter)
		if now.Add(wait).Sub(del.QueuedAt) > del.MaxAge {
			state, reason = record.StateDead, fmt.Sprintf("gave up after %d tries: max age %s reached", del.Tries+1, del.MaxAge)
			err = d.queue.Bury(ctx, del.ID, owner, &at, req, reason, now.Add(cfg.KeepDead))
		} else {
			state = record.StateRetrying
			err = d.queue.Retry(ctx, del.ID, owner, at, req, now.Add(wait))
		}
	}
	d.track(del.Network, o)
	if d.opts.OnAttempt != nil {
		d.opts.OnAttempt(del.Network, state, at.Status, time.Duration(at.LatencyMS*float64(time.Millisecond)))
	}
	fields := []zap.Field{zap.String("network", del.Network), zap.String("delivery", del.ID), zap.String("order_id", del.OrderID),
		zap.String("event", del.Event), zap.Int("status", at.Status), zap.Float64("latency_ms", at.LatencyMS), zap.Int("tries", del.Tries+1)}
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		d.logger.Warn("delivery outcome not recorded: its lease ran out and another dispatcher took it", append(fields, zap.String("outcome", at.Outcome))...)
	case err != nil:
		d.logger.Error("recording a delivery attempt; the delivery returns to the queue when its lease ends", append(fields, zap.Error(err))...)
	case state == record.StateDelivered:
		d.logger.Info("postback delivered", fields...)
	case state == record.StateDead:
		d.logger.Warn("postback dead-lettered", append(fields, zap.String("reason", reason))...)
	default:
		d.logger.Debug("postback will be retried", append(fields, zap.String("error", at.Error))...)
	}
}

// renderFailed records a delivery that could not be rendered: a transient
// reason (a token endpoint down) waits and retries, anything else is a
// dead letter at once.
func (d *Dispatcher) renderFailed(cfg *Config, del *record.Delivery, err error) {
	now := d.opts.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.Timeout)
	defer cancel()
	msg := cfg.Masker.String(err.Error())
	if errors.Is(err, postback.ErrTransient) && now.Sub(del.QueuedAt) < del.MaxAge {
		at := record.Attempt{At: now, Outcome: postback.Retry.String(), Error: "rendering: " + msg}
		err = d.queue.Retry(ctx, del.ID, d.opts.Owner, at, del.Request, now.Add(d.opts.Retry.Backoff(del.Tries+1, 0)))
	} else {
		reason := "the postback cannot be rendered: " + msg
		err = d.queue.Bury(ctx, del.ID, d.opts.Owner, nil, del.Request, reason, now.Add(cfg.KeepDead))
		if err == nil {
			d.logger.Warn("postback dead-lettered", zap.String("network", del.Network), zap.String("delivery", del.ID),
				zap.String("order_id", del.OrderID), zap.String("event", del.Event), zap.Int("tries", del.Tries), zap.String("reason", reason))
		}
	}
	if err != nil {
		d.logger.Error("recording a delivery that could not be rendered", zap.String("delivery", del.ID), zap.Error(err))
	}
}

// release gives a claimed delivery back, due at due.
func (d *Dispatcher) release(del *record.Delivery, due time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.Timeout)
	defer cancel()
	if err := d.queue.Release(ctx, del.ID, d.opts.Owner, due); err != nil {
		d.logger.Warn("returning a claimed delivery to the queue; it returns when its lease ends", zap.String("delivery", del.ID), zap.Error(err))
	}
}

// track updates a network's consecutive-failure count and pause.
func (d *Dispatcher) track(network string, o postback.Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ns := d.state(network)
	switch o {
	case postback.Delivered:
		if !ns.pausedUntil.IsZero() {
			d.logger.Warn("network recovered; its deliveries flow again", zap.String("network", network),
				zap.String("paused_until", ns.pausedUntil.Format(time.RFC3339)))
			if d.opts.OnPause != nil {
				d.opts.OnPause(network, false)
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
			ns.pausedUntil = d.opts.Now().Add(p)
			d.logger.Warn("network keeps failing; pausing its deliveries", zap.String("network", network),
				zap.Int("consecutive_failures", ns.failures), zap.String("pause", p.String()),
				zap.String("until", ns.pausedUntil.Format(time.RFC3339)))
			if d.opts.OnPause != nil {
				d.opts.OnPause(network, true)
			}
		}
	}
}

// Paused returns the networks paused now, with the end of their pause.
func (d *Dispatcher) Paused() map[string]time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.Now()
	out := map[string]time.Time{}
	for name, ns := range d.nets {
		if now.Before(ns.pausedUntil) {
			out[name] = ns.pausedUntil
		}
	}
	return out
}

// do performs one HTTP attempt.
func (d *Dispatcher) do(ctx context.Context, r record.Request) (record.Attempt, http.Header, []byte) {
	at := record.Attempt{At: d.opts.Now()}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
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

// Fire renders a postback with a network's current configuration and sends
// it once, outside the queue (a test fire), and returns the request as
// sent, masked, and the answer read with the network's rules.
func (d *Dispatcher) Fire(ctx context.Context, pb *record.Postback) (record.Request, record.Attempt, error) {
	cfg := d.cfg.Load()
	dst, ok := cfg.Destinations[pb.Network]
	if !ok {
		return record.Request{}, record.Attempt{}, fmt.Errorf("no network %q", pb.Network)
	}
	req, err := dst.Render(ctx, pb)
	if err != nil {
		return record.Request{}, record.Attempt{}, fmt.Errorf("rendering the postback: %s", cfg.Masker.String(err.Error()))
	}
	at, header, body := d.do(ctx, req)
	o, why := d.classify(dst, at, header, body)
	at.Outcome, at.Error, at.Snippet = o.String(), cfg.Masker.String(joinWhy(at.Error, why)), cfg.Masker.String(at.Snippet)
	return cfg.Masker.Request(req), at, nil
}
