package module

import (
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/conversion"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// StatAllNetworks labels the conversion counters over every network.
const StatAllNetworks = store.StatAllNetworks

// logConversion counts a recorded order and writes its one Info line: the
// source, event, order, amount and the credited networks with why, and
// never a click ID or anything about the visitor.
func (a *App) logConversion(logger *zap.Logger, res conversion.Result) {
	c := res.Conversion
	for _, n := range res.DuplicateNetworks {
		a.metrics.dedupHits.WithLabelValues(n).Inc()
	}
	if len(res.QueuedNetworks) > 0 && c != nil {
		for _, n := range res.QueuedNetworks {
			a.metrics.postbacksQueued.WithLabelValues(n, c.Order.Event).Inc()
		}
	}
	if res.SeenEvent || c == nil {
		if res.Duplicates > 0 || res.SeenEvent {
			src, ev := "", ""
			if c != nil {
				src, ev = c.Order.Source, c.Order.Event
			}
			a.metrics.conversions.WithLabelValues(src, ev, "duplicate").Inc()
		}
		return
	}
	o := c.Order
	result := "uncredited"
	switch {
	case res.Held != "":
		result = "held"
	case res.Queued > 0:
		result = "credited"
	case res.Duplicates > 0:
		result = "duplicate"
	}
	a.metrics.conversions.WithLabelValues(o.Source, o.Event, result).Inc()
	var minor int64
	if o.HasAmount {
		minor = o.Amount.Minor(o.Currency)
	}
	// One count over all conversions, and one per credited network.
	a.rt.tally.Add(store.StatConversions, StatAllNetworks, o.Event, o.Currency, result, 1, minor)
	for _, cr := range c.Credits {
		a.rt.tally.Add(store.StatConversions, cr.Network, o.Event, o.Currency, result, 1, minor)
	}
	credited := make([]string, 0, len(c.Credits))
	for _, cr := range c.Credits {
		credited = append(credited, cr.Network+": "+cr.Reason)
	}
	amount := ""
	if o.HasAmount {
		amount = o.Amount.ForCurrency(o.Currency)
	}
	fields := []zap.Field{zap.String("conversion", c.ID), zap.String("source", o.Source), zap.String("event", o.Event),
		zap.String("order_id", o.ID), zap.String("amount", amount), zap.String("currency", o.Currency), zap.String("status", string(o.Status)),
		zap.String("result", result), zap.Int("postbacks", res.Queued), zap.String("decision", c.Decision)}
	if len(credited) > 0 {
		fields = append(fields, zap.String("credited", strings.Join(credited, "; ")))
	}
	if len(res.Skipped) > 0 {
		fields = append(fields, zap.Strings("not_sent", res.Skipped))
	}
	if res.Held != "" {
		logger.Warn("conversion recorded and held: nothing sent", append(fields, zap.String("held", res.Held))...)
		return
	}
	logger.Info("conversion", fields...)
}
