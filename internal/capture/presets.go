// Package capture recognises click IDs on landing URLs, validates them,
// keeps the visitor's touchpoints in the store, and signs the first-party
// session cookie that ties later orders to those clicks.
package capture

import "github.com/caddy-postback/caddy-postback/internal/record"

// Preset is a network's click-ID query parameters, as the network appends
// them to landing URLs, and the cookies its own script keeps click IDs in.
type Preset struct {
	// Params are the click-ID query parameter names, matched exactly
	// (case-sensitive) in the order given.
	Params []string
	// Cookies are first-party cookies the network's script sets on the
	// site, holding the click ID (or referral) it tracks the visitor by.
	Cookies []ClickCookie
	// Role is "affiliate" for networks that compete for a commission or
	// "platform" for ad platforms that are told of every conversion.
	Role string
}

// Presets are the built-in networks, by name. Sources are in
// shared/reference/wire-formats.md §1.
var Presets = map[string]Preset{
	"google_ads":   {Params: []string{"gclid", "gbraid", "wbraid"}, Role: "platform"},
	"meta":         {Params: []string{"fbclid"}, Role: "platform"},
	"tiktok":       {Params: []string{"ttclid"}, Role: "platform"},
	"microsoft":    {Params: []string{"msclkid"}, Role: "platform"},
	"linkedin":     {Params: []string{"li_fat_id"}, Role: "platform"},
	"x":            {Params: []string{"twclid"}, Role: "platform"},
	"snapchat":     {Params: []string{"sccid", "ScCid"}, Role: "platform"},
	"pinterest":    {Params: []string{"epik"}, Role: "platform"},
	"reddit":       {Params: []string{"rdt_cid"}, Role: "platform"},
	"impact":       {Params: []string{"irclickid"}, Role: "affiliate"},
	"cj":           {Params: []string{"cjevent"}, Role: "affiliate"},
	"awin":         {Params: []string{"awc"}, Role: "affiliate"},
	"shareasale":   {Params: []string{"sscid"}, Role: "affiliate"},
	"rakuten":      {Params: []string{"ranSiteID"}, Role: "affiliate"},
	"tradedoubler": {Params: []string{"tduid"}, Role: "affiliate"},
	"everflow":     {Params: []string{"_ef_transaction_id", "transaction_id"}, Role: "affiliate"},
	"tune":         {Params: []string{"transaction_id", "tid", "aff_click_id"}, Role: "affiliate"},
	"partnerstack": {Params: []string{"ps_xid"}, Role: "affiliate"},
	// Rewardful's script turns a ?via= link token into a referral (a
	// UUID) and keeps it in the rewardful.referral cookie as JSON; only
	// the referral can be reported, so the link token is not captured.
	"rewardful": {Cookies: []ClickCookie{{Name: "rewardful.referral", Field: "id"}}, Role: "affiliate"},
	// FirstPromoter: ?fpr= is the promoter's referral ID (ref_id); its
	// script keeps the visitor's tracking ID (tid) in _fprom_tid.
	"firstpromoter": {Params: []string{"fpr"}, Cookies: []ClickCookie{{Name: "_fprom_tid"}}, Role: "affiliate"},
	// Tapfiliate: ?ref= is the affiliate's referral code.
	"tapfiliate": {Params: []string{"ref"}, Role: "affiliate"},
	"voluum":     {Params: []string{"clickid", "cid"}, Role: "affiliate"},
	"binom":      {Params: []string{"clickid", "cnv_id"}, Role: "affiliate"},
	"keitaro":    {Params: []string{"subid"}, Role: "affiliate"},
	"redtrack":   {Params: []string{"clickid", "rtkcid"}, Role: "affiliate"},
	"generic":    {Params: []string{"clickid", "click_id"}, Role: "affiliate"},
}

// subParamIndex numbers record.SubParams for Recognizer.Read.
var subParamIndex = func() map[string]int {
	m := make(map[string]int, len(record.SubParams))
	for i, p := range record.SubParams {
		m[p] = i
	}
	return m
}()
