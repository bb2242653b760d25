package module

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// metrics are created once per process and registered with each config's
// registry, as Caddy's own modules do. Labels are network, event, source,
// provider and outcome names from config: never click, session or order
// IDs.
type metrics struct {
	clicks          *prometheus.CounterVec
	badClicks       prometheus.Counter
	skipped         *prometheus.CounterVec
	consentRefused  *prometheus.CounterVec
	conversions     *prometheus.CounterVec
	dedupHits       *prometheus.CounterVec
	postbacksQueued *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	attempts        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	paused          *prometheus.GaugeVec
	webhooks        *prometheus.CounterVec
	uninspected     prometheus.Counter
	storageUp       prometheus.Gauge
	queue           *queueCollector
	allCollectors   []prometheus.Collector
}

var (
	metricsOnce sync.Once
	sharedM     *metrics
)

const (
	metricsNamespace = "caddy"
	metricsSubsystem = "postback"
)

// sharedMetrics returns the process's metrics, creating them once.
func sharedMetrics() *metrics {
	metricsOnce.Do(func() {
		const ns, sub = metricsNamespace, metricsSubsystem
		counter := func(name, help string, labels ...string) *prometheus.CounterVec {
			return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
		}
		m := &metrics{
			clicks:    counter("clicks_captured_total", "Click IDs captured, by network.", "network"),
			badClicks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "clicks_rejected_total", Help: "Click IDs ignored because they were malformed."}),
			skipped:   counter("captures_skipped_total", "Landing clicks not captured, by reason (storage unavailable, no consent).", "reason"),
			consentRefused: counter("clicks_without_consent_total",
				"Click IDs not captured because the visitor had not given the consent their network requires (its own or the global requirement), by network.", "network"),
			conversions: counter("conversions_total", "Orders recorded, by source, event and result (credited, duplicate, uncredited, held).",
				"source", "event", "result"),
			dedupHits: counter("dedup_hits_total", "Postbacks not queued because the same network, event and order was queued before.", "network"),
			postbacksQueued: counter("postbacks_queued_total",
				"Postbacks queued: the conversions each network is told of, by network and event (a repeat of an order is a dedup hit instead).", "network", "event"),
			deliveries: counter("deliveries_total", "Postback attempts, by network and the delivery's resulting state (delivered, retrying, dead).", "network", "outcome"),
			attempts: counter("delivery_attempts_total", "Postback attempts, by network, resulting state and the answer's status class (2xx, 4xx, 5xx, none).",
				"network", "outcome", "status_class"),
			latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "delivery_latency_seconds",
				Help: "Time from sending a postback to its answer, by network.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"network"}),
			retries: counter("delivery_retries_total", "Postback attempts that failed and will be retried, by network.", "network"),
			paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "network_paused",
				Help: "1 while a network's deliveries are paused after repeated failures."}, []string{"network"}),
			webhooks: counter("webhooks_total", "Webhooks received, by provider and result.", "provider", "result"),
			uninspected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "pages_uninspected_total",
				Help: "Confirmation pages passed on without inspection because the inspection budget was spent."}),
			storageUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "storage_up",
				Help: "1 while the postback storage serves reads and writes, 0 while it is unavailable or refuses writes."}),
			queue: newQueueCollector(),
		}
		m.storageUp.Set(1)
		for _, reason := range skipReasons {
			m.skipped.WithLabelValues(reason)
		}
		m.allCollectors = []prometheus.Collector{m.clicks, m.badClicks, m.skipped, m.consentRefused, m.conversions, m.dedupHits, m.postbacksQueued, m.deliveries, m.attempts,
			m.latency, m.retries, m.paused, m.webhooks, m.uninspected, m.storageUp, m.queue}
		sharedM = m
	})
	return sharedM
}

// skipReasons are the reasons a click is not captured, as
// captures_skipped_total labels them.
var skipReasons = []string{skipStorage, skipNoConsent}

// Reasons for captures_skipped_total.
const (
	skipStorage   = "storage"
	skipNoConsent = "no_consent"
)

// Outcomes of a delivery attempt, as deliveries_total labels them.
var attemptOutcomes = []string{string(record.StateDelivered), string(record.StateRetrying), string(record.StateDead)}

// initNetwork makes the series of a configured network exist from the
// start, at zero, so that rates, alerts and dashboards see a network that
// has had no traffic yet (a gauge that exists keeps its value).
func (m *metrics) initNetwork(network string) {
	m.dedupHits.WithLabelValues(network)
	m.retries.WithLabelValues(network)
	m.paused.WithLabelValues(network)
	m.latency.WithLabelValues(network)
	for _, o := range attemptOutcomes {
		m.deliveries.WithLabelValues(network, o)
	}
}

// initWebhook makes the series of a configured webhook provider exist
// from the start, at zero.
func (m *metrics) initWebhook(provider string) {
	for _, r := range webhookResults {
		m.webhooks.WithLabelValues(provider, r)
	}
}

// webhookResults are the results webhooks_total counts.
var webhookResults = []string{record.WebhookRecorded, record.WebhookDuplicate, record.WebhookIgnored, record.WebhookKept,
	record.WebhookRejected, record.WebhookFailed}

// registerMetrics registers the metrics with a config's registry.
func registerMetrics(reg *prometheus.Registry) *metrics {
	m := sharedMetrics()
	for _, c := range m.allCollectors {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			panic(err) // only a programming error (two collectors with one name) gets here
		}
	}
	return m
}

// statusClass names an HTTP status's class for a label.
func statusClass(status int) string {
	if status < 100 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// queueCollector reports the delivery queue of the current config's
// storage when scraped: depth by network and state, and the age of the
// oldest delivery that waits.
type queueCollector struct {
	depth  *prometheus.Desc
	oldest *prometheus.Desc
}

func newQueueCollector() *queueCollector {
	return &queueCollector{
		depth: prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "queue_depth"),
			"Deliveries in the queue, by network and state (queued, retrying, running, dead).", []string{"network", "state"}, nil),
		oldest: prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "queue_oldest_seconds"),
			"Age of the oldest delivery that waits or runs, by network.", []string{"network"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.depth
	ch <- q.oldest
}

// Collect implements prometheus.Collector. A storage that does not answer
// within two seconds leaves the queue metrics out of the scrape.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	a := currentApp()
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t := now()
	stats, err := a.rt.store.QueueStats(ctx, t)
	if err != nil {
		return
	}
	// Configured networks with nothing queued are reported at zero.
	for _, name := range sortedKeys(a.Networks) {
		if !slices.ContainsFunc(stats, func(s store.NetworkQueue) bool { return s.Network == name }) {
			stats = append(stats, store.NetworkQueue{Network: name})
		}
	}
	for _, s := range stats {
		for state, n := range map[string]int{"queued": s.Queued, "retrying": s.Retrying, "running": s.Running, "dead": s.Dead} {
			ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(n), s.Network, state)
		}
		age := 0.0
		if !s.OldestWaiting.IsZero() {
			age = t.Sub(s.OldestWaiting).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, age, s.Network)
	}
}
