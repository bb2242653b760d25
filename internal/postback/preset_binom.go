package postback

// Binom: conversion postback to the tracker (wire-formats.md §2).
//
//	GET https://<tracker>/click.php?cnv_id={click_id}&payout={amount}&cnv_status={status}
//	    &cnv_currency={currency}
//
// The tracker's domain is per customer, so url or domain is required.
// cnv_status is Binom's free-text conversion status (its docs show "Hold");
// we send the order's status (approved, pending). Binom's docs in the
// reference do not say a repeated postback revises an earlier conversion, so
// refunds and rejections are not supported. Every event is reported by
// default.
func init() { register("binom", binomParams, newBinom) }

var binomParams = paramSpec{}

func newBinom(cfg Config) (Destination, error) {
	return newTrackerGET("binom", cfg, binomParams, "/click.php", []field{
		{"cnv_id", tok("click_id")},
		{"payout", optTok("amount")},
		{"cnv_status", optTok("status")},
		{"cnv_currency", optTok("currency")},
	})
}
