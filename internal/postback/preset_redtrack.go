package postback

// RedTrack: conversion postback to the tracker (wire-formats.md §2).
//
//	GET https://<dedicated domain>/postback?clickid={click_id}&sum={amount}&type={event}
//	    &rdtk_event_id={event_id}
//
// clickid and rdtk_event_id (RedTrack's dedup key) are documented; sum
// (payout) and type (conversion type) are the names integrators use and are
// UNVERIFIED against RedTrack's own pages. The dedicated domain is per
// customer, so url or domain is required. Every event is reported by
// default; status updates are not supported.
func init() { register("redtrack", redtrackParams, newRedTrack) }

var redtrackParams = paramSpec{}

func newRedTrack(cfg Config) (Destination, error) {
	return newTrackerGET("redtrack", cfg, redtrackParams, "/postback", []field{
		{"clickid", tok("click_id")},
		{"sum", optTok("amount")}, // UNVERIFIED name
		{"type", optTok("event")}, // UNVERIFIED name
		{"rdtk_event_id", tok("event_id")},
	})
}
