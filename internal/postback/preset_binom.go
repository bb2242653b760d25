package postback

import "github.com/caddy-postback/caddy-postback/internal/order"

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
	const name = "binom"
	if err := checkParams(name, cfg, binomParams); err != nil {
		return nil, err
	}
	fields := []field{
		{"cnv_id", tok("click_id")},
		{"payout", optTok("amount")},
		{"cnv_status", optTok("status")},
		{"cnv_currency", optTok("currency")},
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{path: "/click.php", reserved: fieldKeys(fields)})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "*", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	return &queryPreset{method: "GET", ep: ep, fields: fields, sup: sup}, nil
}
