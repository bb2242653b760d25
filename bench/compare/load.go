package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"time"
)

// load describes one closed-loop run: conns workers, each with its own
// keep-alive connection, send requests one after the other until the
// duration is over.
type load struct {
	conns    int
	duration time.Duration
	// ttfb records the time to the first response byte of each request
	// (through httptrace), not only the time to the last byte.
	ttfb bool
	// interval, when set, paces each worker to one request per interval
	// (workers evenly out of phase) instead of one after the other. Latency
	// is then counted from the scheduled send time, so a slow answer that
	// delays the next request is not hidden (coordinated omission).
	interval time.Duration
	// request makes worker w's i-th request.
	request func(w, i int) (*http.Request, error)
	// check looks at a response and its body; an error counts the request
	// as failed. Nil accepts any 200.
	check func(resp *http.Response, body []byte) error
}

// result is what a run measured.
type result struct {
	requests int
	errors   int
	firstErr error
	elapsed  time.Duration
	latency  []time.Duration // time to the last byte, sorted
	ttfb     []time.Duration // time to the first byte, sorted (when asked)
	// caddyCPU and selfCPU are the CPU time the Caddy under test and this
	// program used during the run (zero where /proc is missing).
	caddyCPU, selfCPU time.Duration
}

// rps is the completed requests per second.
func (r *result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is the CPU time Caddy and this program spent per completed
// request.
func (r *result) cpuPerRequest() (caddy, self time.Duration) {
	if r.requests == 0 {
		return 0, 0
	}
	return r.caddyCPU / time.Duration(r.requests), r.selfCPU / time.Duration(r.requests)
}

// newTransport is a keep-alive transport with a single connection, so that
// a run with n workers holds exactly n connections.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true, // compare the bytes Caddy sends, not gzip work
		IdleConnTimeout:     time.Minute,
	}
}

// run executes the load and collects the measurements. Each worker keeps
// its samples in its own slice, so measuring adds no lock to the request
// path.
func (l load) run(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, l.duration+30*time.Second)
	defer cancel()
	workers := make([]workerStats, l.conns)
	deadline := time.Now().Add(l.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			me := &workers[w]
			buf := make([]byte, 64<<10)
			next := start.Add(time.Duration(w) * l.interval / time.Duration(l.conns))
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				scheduled := time.Now()
				if l.interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					scheduled = next
					next = next.Add(l.interval)
					if !scheduled.Before(deadline) {
						break
					}
				}
				req, err := l.request(w, i)
				if err != nil {
					me.fail(err)
					continue
				}
				req = req.WithContext(ctx)
				var first time.Time
				if l.ttfb {
					req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
						GotFirstResponseByte: func() { first = time.Now() },
					}))
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					me.fail(err)
					continue
				}
				body, err := readAll(resp.Body, buf)
				resp.Body.Close()
				t1 := time.Now()
				if err == nil {
					if l.check != nil {
						err = l.check(resp, body)
					} else if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					me.fail(err)
					continue
				}
				me.n++
				from := t0
				if l.interval > 0 {
					from = scheduled
				}
				me.lat = append(me.lat, t1.Sub(from))
				if l.ttfb {
					me.ttfb = append(me.ttfb, first.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	res := result{elapsed: time.Since(start)}
	for _, w := range workers {
		res.requests += w.n
		res.errors += w.errs
		if res.firstErr == nil {
			res.firstErr = w.firstErr
		}
		res.latency = append(res.latency, w.lat...)
		res.ttfb = append(res.ttfb, w.ttfb...)
	}
	slices.Sort(res.latency)
	slices.Sort(res.ttfb)
	return res
}

// workerStats are one worker's counts and samples.
type workerStats struct {
	n, errs  int
	firstErr error
	lat      []time.Duration
	ttfb     []time.Duration
}

// fail counts a failed request and keeps the first error for the report.
func (w *workerStats) fail(err error) {
	w.errs++
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// readAll reads a body into buf, growing it when needed, so that a worker
// reuses one buffer for all its responses.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, 0)[:n]
			buf = buf[:cap(buf)]
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return buf[:n], err
		}
	}
}

// percentile returns the q-quantile (0 < q ≤ 1) of sorted samples, by the
// nearest-rank method.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
