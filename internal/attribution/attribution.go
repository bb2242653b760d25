// Package attribution decides which touchpoints earn a conversion and keys
// each credited conversion for idempotency.
package attribution

import (
	"fmt"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Policy picks the winning affiliate touchpoint.
type Policy string

// Policies.
const (
	// LastClick credits the most recent affiliate click within its window.
	LastClick Policy = "last_click"
	// FirstClick credits the earliest affiliate click within its window.
	FirstClick Policy = "first_click"
)

// Roles a network can have.
const (
	// RoleAffiliate networks compete: one of them is paid for an order.
	RoleAffiliate = "affiliate"
	// RolePlatform networks (ad platforms) are told of every conversion they
	// have a click for, so their bidding learns; they do not compete.
	RolePlatform = "platform"
)

// Network is what attribution needs to know of a network.
type Network struct {
	Role   string
	Window time.Duration
}

// Decide returns the credited touchpoints for a conversion at time at. Only
// touchpoints of configured networks whose window is still open count.
// Affiliates compete under the policy, so two affiliate networks are never
// paid for one order; every platform with a click is credited with its
// latest one.
func Decide(policy Policy, networks map[string]Network, tps []record.Touchpoint, at time.Time) []record.Credit {
	var winner *record.Touchpoint
	affiliates := 0
	latest := map[string]int{}
	var platforms []string
	for i := range tps {
		tp := &tps[i]
		n, ok := networks[tp.Network]
		if !ok || !inWindow(tp, n, at) {
			continue
		}
		if n.Role == RolePlatform {
			j, seen := latest[tp.Network]
			if !seen {
				platforms = append(platforms, tp.Network)
			}
			if !seen || tps[j].CapturedAt.Before(tp.CapturedAt) || tps[j].CapturedAt.Equal(tp.CapturedAt) {
				latest[tp.Network] = i
			}
			continue
		}
		affiliates++
		switch {
		case winner == nil:
			winner = tp
		case policy == FirstClick && tp.CapturedAt.Before(winner.CapturedAt):
			winner = tp
		case policy != FirstClick && !tp.CapturedAt.Before(winner.CapturedAt):
			winner = tp
		}
	}
	var out []record.Credit
	if winner != nil {
		p := policy
		if p == "" {
			p = LastClick
		}
		reason := fmt.Sprintf("%s: affiliate click of %s within its %s window", p, winner.CapturedAt.UTC().Format(time.RFC3339), networks[winner.Network].Window)
		if affiliates > 1 {
			reason += fmt.Sprintf(", won against %d other affiliate click(s)", affiliates-1)
		}
		out = append(out, record.Credit{Network: winner.Network, Touchpoint: *winner, Reason: reason})
	}
	for _, name := range platforms {
		tp := tps[latest[name]]
		out = append(out, record.Credit{Network: name, Touchpoint: tp,
			Reason: fmt.Sprintf("platform: latest click of %s within its %s window", tp.CapturedAt.UTC().Format(time.RFC3339), networks[name].Window)})
	}
	return out
}

func inWindow(tp *record.Touchpoint, n Network, at time.Time) bool {
	if at.Before(tp.CapturedAt) {
		return false
	}
	if n.Window > 0 && at.Sub(tp.CapturedAt) > n.Window {
		return false
	}
	return tp.ExpiresAt.IsZero() || at.Before(tp.ExpiresAt)
}

// IdempotencyKey keys a conversion for one network: (network, event, order
// ID), so a reloaded thank-you page, a retried webhook, or a page and a
// webhook for the same order produce one postback per network. A status
// update (refund, rejection) is a separate conversion with its own key.
func IdempotencyKey(network string, o *order.Order) string {
	ev := o.Event
	if o.Status == order.StatusRefunded || o.Status == order.StatusRejected {
		ev += ":" + string(o.Status)
	}
	return network + "/" + ev + "/" + o.ID
}
