package postback

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// Google Ads API, click conversion upload (ConversionUploadService).
//
//	POST https://googleads.googleapis.com/<api_version>/customers/<customer_id>:uploadClickConversions
//	Authorization: Bearer <access token>
//	developer-token: <developer_token>
//	login-customer-id: <login_customer_id>        (when set)
//
//	{"conversions":[{"gclid"|"gbraid"|"wbraid":…,"conversionAction":"customers/<id>/conversionActions/<id>",
//	  "conversionDateTime":"2025-03-14 09:58:12+00:00","conversionValue":<number>,"currencyCode":…,
//	  "orderId":…,"userIdentifiers":[{"hashedEmail":…},{"hashedPhoneNumber":…}],
//	  "consent":{"adUserData":"GRANTED"|"DENIED"}}],
//	 "partialFailure":true,"validateOnly":true}       (validateOnly only in test fires)
//
// The click ID is the touchpoint's gclid, gbraid or wbraid, by the
// parameter that carried it. orderId is the order ID, Google's key for
// dropping a repeated upload. userIdentifiers are the order's hashed e-mail
// and phone number in Google's forms (ClickConversion takes only those
// two); a conversion with neither a click ID nor identifiers is refused at
// send time. consent carries the click's ad_user_data signal (Google takes
// only that one for click conversions: ad_personalization "can only be set
// for OfflineUserDataJobService and UserDataService").
//
// Access tokens come from the OAuth 2.0 refresh-token grant at token_url
// (default https://oauth2.googleapis.com/token; another URL is for tests
// and proxies) with client_id,
// client_secret and refresh_token; one is kept until two minutes before it
// expires, and a 401 drops it so the next attempt refreshes.
//
// Answers: an HTTP 200 may carry partialFailureError for the row; it is a
// Reject with Google's error code and message, except that a row Google
// already has (ORDER_ID_ALREADY_IN_USE, CLICK_CONVERSION_ALREADY_EXISTS) is
// delivered and one it is not ready for (TOO_RECENT_EVENT,
// TOO_RECENT_CONVERSION_ACTION: "retry after 6 hours") is retried.
//
// Limits checked at send time: a conversion more than 90 days after its
// click (the longest click-through window: EXPIRED_EVENT) or before it
// (CONVERSION_PRECEDES_EVENT). Refunds are not sent: they are conversion
// adjustments, another service.
func init() { register("google_ads", googleAdsParams, newGoogleAds) }

var googleAdsParams = paramSpec{
	required: []string{"customer_id", "conversion_action", "developer_token", "client_id", "client_secret", "refresh_token"},
	optional: []string{"login_customer_id", "api_version", "token_url", "user_identifiers"},
	secrets:  []string{"developer_token", "client_secret", "refresh_token"},
}

const (
	// googleAdsAPIVersion is the API version used when none is
	// configured: the newest at the time of writing (versions are
	// sunset about a year after release).
	googleAdsAPIVersion = "v26"
	// googleTokenURL is Google's OAuth 2.0 token endpoint.
	googleTokenURL = "https://oauth2.googleapis.com/token"
	// googleAdsClickWindow is the longest click-through conversion window.
	googleAdsClickWindow = 90 * 24 * time.Hour
)

var (
	googleAdsVersion  = regexp.MustCompile(`^v[0-9]{1,3}$`)
	googleAdsActionID = regexp.MustCompile(`^customers/[0-9]+/conversionActions/[0-9]+$`)
)

func newGoogleAds(cfg Config) (Destination, error) {
	const name = "google_ads"
	if err := checkParams(name, cfg, googleAdsParams); err != nil {
		return nil, err
	}
	p := cfg.Params
	customer := googleCustomerID(p["customer_id"])
	if customer == "" {
		return nil, errorf("preset google_ads: customer_id %q: want the ten-digit ID (dashes allowed)", p["customer_id"])
	}
	action := strings.TrimSpace(p["conversion_action"])
	if action != "" && strings.Trim(action, "0123456789") == "" {
		action = "customers/" + customer + "/conversionActions/" + action
	}
	if !googleAdsActionID.MatchString(action) {
		return nil, errorf("preset google_ads: conversion_action %q: want its ID or customers/<id>/conversionActions/<id>", action)
	}
	login := ""
	if v := p["login_customer_id"]; v != "" {
		if login = googleCustomerID(v); login == "" {
			return nil, errorf("preset google_ads: login_customer_id %q: want the manager account's ten-digit ID", v)
		}
	}
	ver := p["api_version"]
	if ver == "" {
		ver = googleAdsAPIVersion
	}
	if !googleAdsVersion.MatchString(ver) {
		return nil, errorf("preset google_ads: api_version %q: want the form v26", ver)
	}
	tokenURL, err := presetURL(name, "token_url", p["token_url"], googleTokenURL)
	if err != nil {
		return nil, err
	}
	identifiers := true
	switch p["user_identifiers"] {
	case "", "on":
	case "off":
		identifiers = false
	default:
		return nil, errorf("preset google_ads: user_identifiers %q: want on or off", p["user_identifiers"])
	}
	ep, err := resolveEndpoint(name, cfg, baseOptions{
		def:  "https://googleads.googleapis.com",
		path: "/" + ver + "/customers/" + customer + ":uploadClickConversions",
	})
	if err != nil {
		return nil, err
	}
	sup, err := newSupport(name, cfg, "purchase", order.StatusApproved, order.StatusPending)
	if err != nil {
		return nil, err
	}
	now := clock(cfg)
	return &googleAdsPreset{
		ep: ep, action: action, developerToken: p["developer_token"], loginCustomer: login,
		identifiers: identifiers, sup: sup,
		tokens: &tokenSource{
			client: presetClient(cfg), tokenURL: tokenURL, now: now,
			clientID: p["client_id"], clientSecret: p["client_secret"], refreshToken: p["refresh_token"],
		},
	}, nil
}

// googleCustomerID reads a Google Ads customer ID written with or without
// dashes ("123-456-7890"), or returns "".
func googleCustomerID(s string) string {
	d := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	if len(d) < 6 || len(d) > 12 || strings.Trim(d, "0123456789") != "" {
		return ""
	}
	return d
}

// presetURL checks an absolute http(s) URL param ("for tests and
// proxies"), returning def when it is empty.
func presetURL(preset, param, raw, def string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return def, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", errorf("preset %s: %s %q: want an http(s) URL", preset, param, raw)
	}
	return raw, nil
}

type googleAdsPreset struct {
	ep                            endpoint
	action                        string
	developerToken, loginCustomer string
	identifiers                   bool
	sup                           support
	tokens                        *tokenSource
}

type googleAdsBody struct {
	Conversions    []googleAdsConversion `json:"conversions"`
	PartialFailure bool                  `json:"partialFailure"`
	ValidateOnly   bool                  `json:"validateOnly,omitempty"`
}

type googleAdsConversion struct {
	Gclid              string                `json:"gclid,omitempty"`
	Gbraid             string                `json:"gbraid,omitempty"`
	Wbraid             string                `json:"wbraid,omitempty"`
	ConversionAction   string                `json:"conversionAction"`
	ConversionDateTime string                `json:"conversionDateTime"`
	ConversionValue    json.Number           `json:"conversionValue,omitempty"`
	CurrencyCode       string                `json:"currencyCode,omitempty"`
	OrderID            string                `json:"orderId,omitempty"`
	UserIdentifiers    []googleAdsIdentifier `json:"userIdentifiers,omitempty"`
	Consent            *googleAdsConsent     `json:"consent,omitempty"`
}

type googleAdsIdentifier struct {
	HashedEmail       string `json:"hashedEmail,omitempty"`
	HashedPhoneNumber string `json:"hashedPhoneNumber,omitempty"`
}

type googleAdsConsent struct {
	AdUserData string `json:"adUserData"`
}

// googleTime is Google Ads' date-time layout, "yyyy-mm-dd hh:mm:ss+|-hh:mm".
const googleTime = "2006-01-02 15:04:05-07:00"

// Render implements Destination.
func (d *googleAdsPreset) Render(ctx context.Context, c *record.Postback) (record.Request, error) {
	tp, o := &c.Touchpoint, &c.Order
	conv := googleAdsConversion{
		ConversionAction:   d.action,
		ConversionDateTime: eventTime(c).UTC().Format(googleTime),
		OrderID:            o.ID,
	}
	switch tp.Param {
	case "gclid":
		conv.Gclid = tp.ClickID
	case "gbraid":
		conv.Gbraid = tp.ClickID
	case "wbraid":
		conv.Wbraid = tp.ClickID
	}
	if o.HasAmount {
		conv.ConversionValue = decimalNumber(o.Amount, o.Currency)
		conv.CurrencyCode = o.Currency
	}
	if d.identifiers {
		if cu := customerFor(c); cu != nil {
			if cu.EmailGoogle != "" {
				conv.UserIdentifiers = append(conv.UserIdentifiers, googleAdsIdentifier{HashedEmail: cu.EmailGoogle})
			}
			if cu.PhoneE164 != "" {
				conv.UserIdentifiers = append(conv.UserIdentifiers, googleAdsIdentifier{HashedPhoneNumber: cu.PhoneE164})
			}
		}
	}
	if cs := tp.Consent; cs != nil && (cs.AdUserData == record.Granted || cs.AdUserData == record.Denied) {
		conv.Consent = &googleAdsConsent{AdUserData: strings.ToUpper(cs.AdUserData)}
	}
	clicked := conv.Gclid != "" || conv.Gbraid != "" || conv.Wbraid != ""
	if !clicked && len(conv.UserIdentifiers) == 0 {
		return record.Request{}, fmt.Errorf("%w: google_ads needs a gclid, gbraid or wbraid click or the customer's e-mail or phone; the credited click is a %q parameter",
			ErrRejected, tp.Param)
	}
	if clicked && !tp.CapturedAt.IsZero() {
		at := eventTime(c)
		if at.Before(tp.CapturedAt) {
			return record.Request{}, fmt.Errorf("%w: google_ads refuses a conversion before its click (CONVERSION_PRECEDES_EVENT): converted %s, clicked %s",
				ErrRejected, at.UTC().Format(time.RFC3339), tp.CapturedAt.UTC().Format(time.RFC3339))
		}
		if at.Sub(tp.CapturedAt) > googleAdsClickWindow {
			return record.Request{}, fmt.Errorf("%w: google_ads takes conversions up to 90 days after the click (EXPIRED_EVENT); this one came %s later",
				ErrRejected, at.Sub(tp.CapturedAt).Round(time.Hour))
		}
	}
	u, err := d.ep.render(c, nil)
	if err != nil {
		return record.Request{}, err
	}
	token, err := d.tokens.Token(ctx)
	if err != nil {
		return record.Request{}, fmt.Errorf("google_ads: %w", err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("developer-token", d.developerToken)
	if d.loginCustomer != "" {
		h.Set("login-customer-id", d.loginCustomer)
	}
	return postJSON(u, googleAdsBody{Conversions: []googleAdsConversion{conv}, PartialFailure: true, ValidateOnly: c.Test}, h)
}

// googleAdsFailure is a google.rpc.Status with GoogleAdsFailure details, as
// both partialFailureError and the error of a failed call carry it.
type googleAdsFailure struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []struct {
		Errors []struct {
			ErrorCode map[string]string `json:"errorCode"`
			Message   string            `json:"message"`
		} `json:"errors"`
	} `json:"details"`
}

// codes lists the failure's error codes (ConversionUploadError values and
// the like) and a readable reason.
func (f *googleAdsFailure) codes() ([]string, string) {
	var codes, parts []string
	for _, d := range f.Details {
		for _, e := range d.Errors {
			keys := make([]string, 0, len(e.ErrorCode))
			for k := range e.ErrorCode {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				codes = append(codes, e.ErrorCode[k])
				parts = append(parts, e.ErrorCode[k]+": "+e.Message)
			}
		}
	}
	if len(parts) == 0 {
		parts = append(parts, strings.TrimSpace(f.Status+" "+f.Message))
	}
	return codes, strings.Join(parts, "; ")
}

// Classify implements Destination.
func (d *googleAdsPreset) Classify(status int, _ http.Header, body []byte) (Outcome, string) {
	if status == http.StatusUnauthorized {
		if d.tokens.Refused() {
			return Retry, "access token refused; a new one is fetched for the next attempt"
		}
		return Reject, "access token refused again after a refresh: " + snippet(body)
	}
	o := ClassifyStatus(status)
	if o != Delivered {
		var e struct {
			Error googleAdsFailure `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && (e.Error.Message != "" || len(e.Error.Details) > 0) {
			_, reason := e.Error.codes()
			return o, reason
		}
		return o, snippet(body)
	}
	d.tokens.Accepted()
	var ans struct {
		PartialFailureError *googleAdsFailure `json:"partialFailureError"`
	}
	if len(body) > 0 && json.Unmarshal(body, &ans) != nil {
		return Reject, "answer is not JSON: " + snippet(body)
	}
	f := ans.PartialFailureError
	if f == nil || (f.Code == 0 && f.Message == "" && len(f.Details) == 0) {
		return Delivered, ""
	}
	codes, reason := f.codes()
	switch {
	case len(codes) > 0 && allOf(codes, "ORDER_ID_ALREADY_IN_USE", "CLICK_CONVERSION_ALREADY_EXISTS"):
		return Delivered, "already recorded: " + reason
	case len(codes) > 0 && allOf(codes, "TOO_RECENT_EVENT", "TOO_RECENT_CONVERSION_ACTION"):
		return Retry, reason
	}
	return Reject, "row rejected: " + reason
}

// allOf reports whether every code is one of want.
func allOf(codes []string, want ...string) bool {
	for _, c := range codes {
		found := false
		for _, w := range want {
			if c == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Supports implements Destination.
func (d *googleAdsPreset) Supports(event string, status order.Status) bool {
	return d.sup.allows(event, status)
}

var _ Destination = (*googleAdsPreset)(nil)
