package postback

// Voluum: conversion postback to the tracker (wire-formats.md §2).
//
//	GET https://<dedicated domain>/postback?cid={click_id}&payout={amount}&txid={order_id}
//	    &currency={currency}&et={event}
//
// The dedicated domain is per customer, so url or domain is required. The
// method is not stated for incoming postbacks; GET is what the template
// implies. et is the custom conversion type and is sent as the order's event
// name, so event names must match the conversion types set up in Voluum.
// Every event is reported by default; status updates are not supported.
func init() { register("voluum", voluumParams, newVoluum) }

var voluumParams = paramSpec{}

func newVoluum(cfg Config) (Destination, error) {
	return newTrackerGET("voluum", cfg, voluumParams, "/postback", []field{
		{"cid", tok("click_id")},
		{"payout", optTok("amount")},
		{"txid", optTok("order_id")},
		{"currency", optTok("currency")},
		{"et", optTok("event")},
	})
}
