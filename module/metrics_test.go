package module_test

import (
	"fmt"
	"testing"
	"time"
)

// TestDeliveryMetrics checks the counters operators alert on through a
// real Caddy: a reloaded thank-you page is a dedup hit of its network, not
// a second postback; the postback queued and its delivery are counted per
// network; a configured network's series exist from the start.
func TestDeliveryMetrics(t *testing.T) {
	net := newNetwork(t)
	up := shop(t, nil)
	mustLoad(t, fmt.Sprintf(`{
%s	postback {
		storage %s
		network dedupnet {
			click_param clickid
			url "%s/pb?c={click_id}&o={order_id}"
		}
		network idlenet {
			click_param inet
			url "%s/idle?c={click_id}"
		}
	}
}

:%d {
	postback {
		conversion purchase {
			match path /thank-you
			order_id {http.request.uri.query.order}
		}
	}
	reverse_proxy %s
}
`, globalHead(), t.TempDir(), net.URL, net.URL, httpPort, hostPort(up)))
	const (
		dedup     = `caddy_postback_dedup_hits_total{network="dedupnet"}`
		queued    = `caddy_postback_postbacks_queued_total{event="purchase",network="dedupnet"}`
		delivered = `caddy_postback_deliveries_total{network="dedupnet",outcome="delivered"}`
	)
	before := metricValues(t)
	// Series of a network that has seen nothing yet exist, at zero.
	for _, m := range []string{`caddy_postback_dedup_hits_total{network="idlenet"}`, `caddy_postback_network_paused{network="idlenet"}`,
		`caddy_postback_delivery_retries_total{network="idlenet"}`, `caddy_postback_deliveries_total{network="idlenet",outcome="dead"}`,
		`caddy_postback_queue_depth{network="idlenet",state="queued"}`, `caddy_postback_queue_oldest_seconds{network="idlenet"}`,
		`caddy_postback_delivery_latency_seconds_count{network="idlenet"}`} {
		if v, ok := before[m]; !ok || v != 0 {
			t.Errorf("%s = %v, %v; want an existing series at 0", m, v, ok)
		}
	}

	v := landed(t, "DEDUP-1")
	get(t, v, "/thank-you?order=D1")
	net.waitFor(t, 1, 5*time.Second)
	get(t, v, "/thank-you?order=D1") // reloaded
	deadline := time.Now().Add(5 * time.Second)
	var after map[string]float64
	for {
		after = metricValues(t)
		if after[dedup]-before[dedup] >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitQueueEmpty(t, 5*time.Second)
	after = metricValues(t)
	for m, want := range map[string]float64{dedup: 1, queued: 1, delivered: 1} {
		if got := after[m] - before[m]; got != want {
			t.Errorf("%s rose by %v, want %v", m, got, want)
		}
	}
	if got := net.requests(); len(got) != 1 {
		t.Errorf("the reloaded page sent again: %q", got)
	}
}
