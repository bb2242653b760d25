package postback

import (
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Test fixture values. The customer is Meta's own hashing examples (the
// e-mail with stray spaces around it); the amount is "1,234.50" as a shop
// would print it.
var (
	fixClickTime = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
	fixConvTime  = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	fixOrderTime = time.Date(2025, 3, 14, 9, 58, 12, 0, time.UTC)
)

// fixNow is the clock of tests that render fixtures: a minute after the
// conversion, so that no platform's age limit applies.
func fixNow() time.Time { return fixConvTime.Add(time.Minute) }

// fixCustomer is the fixture order's customer, hashed as the webhook and
// page readers hash it.
var fixCustomer = order.NewCustomer(order.CustomerInfo{
	Email: fixEmail, Phone: "(650)555-1212", FirstName: "Mary", LastName: "Smith",
	City: "Menlo Park", Region: "CA", PostalCode: "94025", Country: "US",
})

const (
	fixEmail     = " John_Smith@gmail.com "
	fixEmailHash = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f" // from Meta's doc
	fixFbclid    = "IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk"    // Meta's doc example
)

func mustDecimal(s string) order.Decimal {
	d, err := order.ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// fixture returns a purchase credited to a click of the given network.
func fixture(network, param, clickID string) *record.Postback {
	return &record.Postback{
		ConversionID: "conv-0001",
		Network:      network,
		Order: order.Order{
			Source:     "webhook:stripe",
			Event:      "purchase",
			ID:         "ORD-1001",
			Amount:     mustDecimal("1,234.50"),
			HasAmount:  true,
			Currency:   "USD",
			Status:     order.StatusApproved,
			Coupon:     "SPRING10",
			Customer:   fixCustomer,
			OccurredAt: fixOrderTime,
		},
		Touchpoint: record.Touchpoint{
			Network:    network,
			Param:      param,
			ClickID:    clickID,
			CapturedAt: fixClickTime,
			ExpiresAt:  fixClickTime.Add(30 * 24 * time.Hour),
			LandingURL: "https://shop.example.com/landing?" + param + "=" + clickID + "&utm_source=partner",
			ClientIP:   "203.0.113.7",
			UserAgent:  "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			Subs:       map[string]string{"sub1": "creative-7", "utm_source": "partner"},
		},
		Time: fixConvTime,
	}
}

func withItems(c *record.Postback) *record.Postback {
	c.Order.Items = []order.Item{
		{ID: "SKU-ANVIL", Name: "Anvil", Price: mustDecimal("600"), Quantity: 2},
		{ID: "SKU-HAMMER", Name: "Hammer & Tongs", Price: mustDecimal("34.5"), Quantity: 1},
	}
	return c
}
