package outbox

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy decides when a transient failure is tried again.
type RetryPolicy struct {
	// Base is the first backoff; default 30s. Each retry doubles it.
	Base time.Duration
	// Max caps one backoff; default 1h.
	Max time.Duration
	// MaxRetryAfter caps how far a destination's Retry-After can push a
	// retry; default 6h.
	MaxRetryAfter time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Base <= 0 {
		p.Base = 30 * time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Hour
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 6 * time.Hour
	}
	return p
}

// Backoff returns the wait before retry number tries (1 = the first retry):
// exponential, capped, with ±25% jitter so that retries of many deliveries
// that failed together spread out; a Retry-After answer, if later, wins.
func (p RetryPolicy) Backoff(tries int, retryAfter time.Duration) time.Duration {
	p = p.withDefaults()
	d := p.Base
	for i := 1; i < tries && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	d = d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
	if retryAfter > d {
		d = min(retryAfter, p.MaxRetryAfter)
	}
	return d
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(h http.Header, t time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if when, err := http.ParseTime(v); err == nil && when.After(t) {
		return when.Sub(t)
	}
	return 0
}
