package module

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are created once per process and registered with each config's
// registry, as Caddy's own modules do. Labels are network, event, source and
// outcome names from config: never click, session or order IDs.
type metrics struct {
	clicks      *prometheus.CounterVec
	badClicks   prometheus.Counter
	conversions *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	paused      *prometheus.GaugeVec
	webhooks    *prometheus.CounterVec
}

var (
	metricsOnce sync.Once
	sharedM     *metrics
)

func registerMetrics(reg *prometheus.Registry) *metrics {
	metricsOnce.Do(func() {
		const ns, sub = "caddy", "postback"
		sharedM = &metrics{
			clicks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "clicks_captured_total", Help: "Click IDs captured, by network."}, []string{"network"}),
			badClicks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "clicks_rejected_total", Help: "Click IDs ignored because they were malformed."}),
			conversions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "conversions_total", Help: "Orders seen, by source, event and result (credited, duplicate, uncredited)."},
				[]string{"source", "event", "result"}),
			deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "deliveries_total", Help: "Postback attempts, by network and resulting state (delivered, retrying, dead)."},
				[]string{"network", "outcome"}),
			paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
				Name: "network_paused", Help: "1 while a network's deliveries are paused after repeated failures."}, []string{"network"}),
			webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
				Name: "webhooks_total", Help: "Webhooks received, by provider and result."}, []string{"provider", "result"}),
		}
	})
	for _, c := range []prometheus.Collector{sharedM.clicks, sharedM.badClicks, sharedM.conversions, sharedM.deliveries, sharedM.paused, sharedM.webhooks} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			panic(err) // only a programming error (two collectors with one name) gets here
		}
	}
	return sharedM
}
