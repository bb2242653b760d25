package module

import (
	"fmt"
	"regexp"

	"github.com/caddy-postback/caddy-postback/internal/consent"
)

// Consent configures where visitors' consent is read from and what
// capture needs. A requirement lists tokens that must all be granted: the
// name of a Purpose, a TCF purpose number ("1" to "24") or a TCF vendor
// ("vendor:755", its Global Vendor List ID). A visitor whose choice is
// not found has not consented.
type Consent struct {
	// TCF reads the IAB TCF v2 string a CMP keeps in TCFCookie: its
	// purpose and vendor consents. Default: false.
	TCF bool `json:"tcf,omitempty"`
	// TCFCookie names the TCF string's cookie. Default: "euconsent-v2".
	TCFCookie string `json:"tcf_cookie,omitempty"`
	// Purposes are CMP cookies that grant named purposes. Default: none.
	Purposes []*ConsentPurpose `json:"purposes,omitempty"`
	// AdUserData is the requirement behind Google's ad_user_data signal,
	// kept with each click and sent to the APIs that take it (Google Ads,
	// GA4); denied, it also withholds the customer's hashed identifiers
	// from every ad platform. Default: with TCF, purposes 1 and 7 (as
	// Google maps TCF); without, none (the signal is not sent).
	AdUserData []string `json:"ad_user_data,omitempty"`
	// AdPersonalization is the requirement behind Google's
	// ad_personalization signal. Default: with TCF, purposes 3 and 4;
	// without, none.
	AdPersonalization []string `json:"ad_personalization,omitempty"`
	// Require must be granted for any click to be captured; a network's
	// own Consent adds to it. Default: none.
	Require []string `json:"require,omitempty"`
}

// ConsentPurpose is a purpose granted by a CMP's cookie: the purpose is
// granted when the cookie is present and its value, percent-decoded,
// matches Match.
type ConsentPurpose struct {
	// Name is what requirements call the purpose ("marketing").
	Name string `json:"name"`
	// Cookie is the CMP's cookie.
	Cookie string `json:"cookie"`
	// Match is a regular expression the cookie's value must match, such
	// as "marketing:true" for Cookiebot's CookieConsent or "C0004:1" for
	// OneTrust's OptanonConsent.
	Match string `json:"match"`
}

// provisionConsent builds the consent policy, or nil when consent is not
// configured (clicks are captured without asking, and kept without a
// consent record).
func (a *App) provisionConsent() error {
	c := a.Consent
	if c == nil {
		return nil
	}
	p := &consent.Policy{
		AdUserData: c.AdUserData, AdPersonalization: c.AdPersonalization, Require: c.Require,
	}
	if c.TCF || c.TCFCookie != "" {
		p.TCFCookie = c.TCFCookie
		if p.TCFCookie == "" {
			p.TCFCookie = consent.DefaultTCFCookie
		}
	}
	for _, pc := range c.Purposes {
		re, err := regexp.Compile(pc.Match)
		if err != nil {
			return fmt.Errorf("consent purpose %s: match %q: %w", pc.Name, pc.Match, err)
		}
		p.Purposes = append(p.Purposes, consent.Purpose{Name: pc.Name, Cookie: pc.Cookie, Match: re})
	}
	if err := p.Validate(); err != nil {
		return err
	}
	a.consent = p
	return nil
}

// checkNetworkConsent checks a network's consent requirement against the
// policy.
func (a *App) checkNetworkConsent(name string, tokens []string) error {
	if len(tokens) == 0 {
		return nil
	}
	if a.consent == nil {
		return fmt.Errorf("network %s: consent %v needs the consent { … } option to say where consent is read from", name, tokens)
	}
	if err := a.consent.CheckTokens(tokens); err != nil {
		return fmt.Errorf("network %s: consent: %w", name, err)
	}
	return nil
}
