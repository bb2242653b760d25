package attribution

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := t0.Add(10 * 24 * time.Hour)
	nets := map[string]Network{
		"impact":   {Role: RoleAffiliate, Window: 30 * 24 * time.Hour},
		"cj":       {Role: RoleAffiliate, Window: 30 * 24 * time.Hour},
		"short":    {Role: RoleAffiliate, Window: 24 * time.Hour},
		"meta":     {Role: RolePlatform, Window: 30 * 24 * time.Hour},
		"google":   {Role: RolePlatform, Window: 90 * 24 * time.Hour},
		"disabled": {Role: RoleAffiliate, Window: 30 * 24 * time.Hour},
	}
	tp := func(network, id string, daysAgo float64) record.Touchpoint {
		c := at.Add(-time.Duration(daysAgo * float64(24*time.Hour)))
		return record.Touchpoint{Network: network, ClickID: id, CapturedAt: c, ExpiresAt: c.Add(nets[network].Window)}
	}
	for _, tc := range []struct {
		name   string
		policy Policy
		tps    []record.Touchpoint
		want   []string // network:click
	}{
		{"no touchpoints", LastClick, nil, nil},
		{"last affiliate wins", LastClick, []record.Touchpoint{tp("impact", "i1", 5), tp("cj", "c1", 2)}, []string{"cj:c1"}},
		{"first affiliate wins", FirstClick, []record.Touchpoint{tp("impact", "i1", 5), tp("cj", "c1", 2)}, []string{"impact:i1"}},
		{"expired window does not compete", LastClick, []record.Touchpoint{tp("impact", "i1", 5), tp("short", "s1", 2)}, []string{"impact:i1"}},
		{"platforms each get their latest click", LastClick,
			[]record.Touchpoint{tp("meta", "m1", 6), tp("impact", "i1", 5), tp("meta", "m2", 3), tp("google", "g1", 1)},
			[]string{"impact:i1", "meta:m2", "google:g1"}},
		{"unknown network ignored", LastClick, []record.Touchpoint{tp("gone", "x", 1)}, nil},
		{"click after the order ignored", LastClick, []record.Touchpoint{tp("impact", "future", -1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			credits := Decide(tc.policy, nets, tc.tps, at)
			var got []string
			for _, c := range credits {
				got = append(got, c.Network+":"+c.Touchpoint.ClickID)
				if c.Reason == "" {
					t.Errorf("credit to %s has no reason", c.Network)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("credits %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReasonNamesTheCompetition(t *testing.T) {
	at := time.Now()
	nets := map[string]Network{"a": {Role: RoleAffiliate, Window: time.Hour}, "b": {Role: RoleAffiliate, Window: time.Hour}}
	c := Decide(LastClick, nets, []record.Touchpoint{
		{Network: "a", ClickID: "1", CapturedAt: at.Add(-2 * time.Minute)},
		{Network: "b", ClickID: "2", CapturedAt: at.Add(-time.Minute)},
	}, at)
	if len(c) != 1 || !strings.Contains(c[0].Reason, "won against 1 other") {
		t.Fatalf("%+v", c)
	}
}

func TestIdempotencyKey(t *testing.T) {
	sale := order.Order{Event: "purchase", ID: "1001", Status: order.StatusApproved}
	pending := sale
	pending.Status = order.StatusPending
	refund := sale
	refund.Status = order.StatusRefunded
	if IdempotencyKey("n", &sale) != IdempotencyKey("n", &pending) {
		t.Error("a sale and its pending form must share a key")
	}
	if IdempotencyKey("n", &sale) == IdempotencyKey("n", &refund) {
		t.Error("a refund must have its own key")
	}
	if IdempotencyKey("n", &sale) == IdempotencyKey("m", &sale) {
		t.Error("networks must have their own keys")
	}
}
