package postback

import (
	"bytes"
	"net/http"
	"net/url"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Keitaro: conversion postback to the tracker (wire-formats.md §2).
//
//	GET https://<domain>/<key>/postback?subid={click_id}&status=sale|lead|rejected
//	    &payout={amount}&currency={currency}&tid={order_id}[&return=…]
//
// The tracker's domain is per customer, so url or domain is required; key
// (the postback key) is required unless the url carries the full path.
// Keitaro's statuses describe a conversion's state: lead is pending, sale is
// approved, rejected undoes it. So pending orders and lead/signup events go
// as lead, approved ones as sale, and refunds and rejections as rejected
// (the one preset family member that takes status updates). With the return
// param set (e.g. return=OK), Keitaro answers that text and a 2xx counts only
// if the body is exactly it. Every event is reported by default.
func init() { register("keitaro", keitaroParams, newKeitaro) }

var keitaroParams = paramSpec{optional: []string{"key", "return"}, secrets: []string{"key"}}

func newKeitaro(cfg Config) (Destination, error) {
	const name = "keitaro"
	if err := checkParams(name, cfg, keitaroParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	fields := []field{
		{"subid", tok("click_id")},
		{"status", func(c *record.Postback) (string, bool) { return keitaroStatus(c), true }},
		{"payout", optTok("amount")},
		{"currency", optTok("currency")},
		{"tid", optTok("order_id")},
		{"return", optLit(p["return"])},
	}
	path := ""
	if p["key"] != "" {
		path = "/" + url.PathEscape(p["key"]) + "/postback"
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{path: path, reserved: fieldKeys(fields)})
	if err != nil {
		return nil, err
	}
	if path == "" && !hasPath(ep) {
		return nil, errorf("preset keitaro needs key (or a url with the full /<key>/postback path)")
	}
	sup, err := newSupport(name, cfg, "*",
		order.StatusApproved, order.StatusPending, order.StatusRejected, order.StatusRefunded)
	if err != nil {
		return nil, err
	}
	d := &queryPreset{method: "GET", ep: ep, fields: fields, sup: sup}
	if want := p["return"]; want != "" {
		d.classify = func(status int, _ http.Header, body []byte) (Outcome, string) {
			o := ClassifyStatus(status)
			if o == Delivered && string(bytes.TrimSpace(body)) != want {
				return Reject, "answer is not the return value: " + snippet(body)
			}
			return o, ""
		}
	}
	return d, nil
}

func keitaroStatus(c *record.Postback) string {
	switch {
	case refundLike(c.Order.Event, c.Order.Status):
		return "rejected"
	case c.Order.Status == order.StatusPending, c.Order.Event == "lead", c.Order.Event == "signup":
		return "lead"
	}
	return "sale"
}

// hasPath reports whether the endpoint's URL has a path beyond "/".
func hasPath(ep endpoint) bool {
	u, err := url.Parse(ep.tmpl.String())
	return err == nil && u.Path != "" && u.Path != "/"
}
