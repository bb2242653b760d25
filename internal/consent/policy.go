package consent

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/record"
)

// DefaultTCFCookie is the cookie CMPs keep the TCF v2 string in.
const DefaultTCFCookie = "euconsent-v2"

// Google's consent signals derived from TCF purposes, as Google's TCF
// integration maps them (developers.google.com/tag-platform/security/
// guides/implement-TCF-strings): purpose 1 (store and/or access
// information on a device) or 7 (measure advertising performance) denied
// denies ad_user_data; purpose 3 (create profiles for personalised
// advertising) or 4 (use profiles to select personalised advertising)
// denied denies ad_personalization.
var (
	TCFAdUserData        = []string{"1", "7"}
	TCFAdPersonalization = []string{"3", "4"}
)

// Purpose is a consent purpose granted by a CMP cookie of the site's own
// choosing: the purpose is granted when the cookie is present and its
// value, percent-decoded, matches Match.
type Purpose struct {
	// Name is what requirements call the purpose ("advertising").
	Name string
	// Cookie is the CMP's cookie.
	Cookie string
	// Match is tested against the cookie's value.
	Match *regexp.Regexp
}

// Policy says where a visitor's consent is read from and what capture
// requires. A requirement is a list of tokens, all of which must be
// granted: a Purpose's name, a TCF purpose number ("1" to "24"), or a TCF
// vendor ("vendor:755", the vendor's Global Vendor List ID).
type Policy struct {
	// TCFCookie names the cookie holding the TCF v2 string; "" when TCF
	// strings are not read.
	TCFCookie string
	// Purposes are the CMP cookies that grant named purposes. Several
	// may grant one name: any of them does.
	Purposes []Purpose
	// AdUserData and AdPersonalization are the requirements behind
	// Google's two signals: granted when every token is granted, denied
	// when one is known and not granted, unknown when the visitor's
	// consent for them was not found at all. Default: with TCF,
	// TCFAdUserData and TCFAdPersonalization; without, unknown.
	AdUserData        []string
	AdPersonalization []string
	// Require must be granted for any click to be captured.
	Require []string
}

var purposeName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate checks the names and tokens and fills the Google defaults.
func (p *Policy) Validate() error {
	for _, pc := range p.Purposes {
		if !purposeName.MatchString(pc.Name) {
			return fmt.Errorf("consent purpose %q: use a lower-case name of letters, digits, '_' and '-' (numbers are TCF purposes)", pc.Name)
		}
		if pc.Cookie == "" || !validCookieName(pc.Cookie) {
			return fmt.Errorf("consent purpose %s: cookie name %q is not a valid cookie name", pc.Name, pc.Cookie)
		}
		if pc.Match == nil {
			return fmt.Errorf("consent purpose %s: no value pattern", pc.Name)
		}
	}
	if p.TCFCookie != "" && !validCookieName(p.TCFCookie) {
		return fmt.Errorf("consent tcf: cookie name %q is not a valid cookie name", p.TCFCookie)
	}
	if p.TCFCookie != "" {
		if p.AdUserData == nil {
			p.AdUserData = TCFAdUserData
		}
		if p.AdPersonalization == nil {
			p.AdPersonalization = TCFAdPersonalization
		}
	}
	for what, tokens := range map[string][]string{"ad_user_data": p.AdUserData, "ad_personalization": p.AdPersonalization, "require": p.Require} {
		if err := p.CheckTokens(tokens); err != nil {
			return fmt.Errorf("consent %s: %w", what, err)
		}
	}
	return nil
}

// CheckTokens reports the first token that names nothing this policy
// reads: an unknown purpose name, or a TCF purpose or vendor while TCF
// strings are not read.
func (p *Policy) CheckTokens(tokens []string) error {
	for _, t := range tokens {
		switch kind, n := parseToken(t); kind {
		case tokenBad:
			return fmt.Errorf("%q is neither a purpose name, a TCF purpose number (1-24) nor vendor:<id>", t)
		case tokenPurpose, tokenVendor:
			if p.TCFCookie == "" {
				return fmt.Errorf("%q is read from the TCF string, and tcf is not turned on", t)
			}
			if kind == tokenPurpose && (n < 1 || n > 24) {
				return fmt.Errorf("TCF purpose %d: purposes are numbered 1 to 24", n)
			}
		case tokenName:
			if !slices.ContainsFunc(p.Purposes, func(pc Purpose) bool { return pc.Name == t }) {
				return fmt.Errorf("no consent purpose named %q (configured: %s)", t, strings.Join(p.names(), ", "))
			}
		}
	}
	return nil
}

func (p *Policy) names() []string {
	var out []string
	for _, pc := range p.Purposes {
		if !slices.Contains(out, pc.Name) {
			out = append(out, pc.Name)
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

type tokenKind int

const (
	tokenBad tokenKind = iota
	tokenName
	tokenPurpose
	tokenVendor
)

func parseToken(t string) (tokenKind, int) {
	if v, ok := strings.CutPrefix(t, "vendor:"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 0xffff {
			return tokenBad, 0
		}
		return tokenVendor, n
	}
	if n, err := strconv.Atoi(t); err == nil {
		return tokenPurpose, n
	}
	if purposeName.MatchString(t) {
		return tokenName, 0
	}
	return tokenBad, 0
}

// State is one request's consent, as Read found it.
type State struct {
	policy *Policy
	// TCF is the decoded TC string; nil when the cookie is absent or
	// could not be decoded (then TCFError says why).
	TCF      *TCString
	TCFError error
	// granted and seen hold the named purposes granted and those whose
	// cookie was present.
	granted, seen []string
}

// Read reads a request's consent cookies.
func (p *Policy) Read(h http.Header) *State {
	s := &State{policy: p}
	if p.TCFCookie != "" {
		if v := cookieValue(h, p.TCFCookie); v != "" {
			s.TCF, s.TCFError = DecodeTCString(v)
		}
	}
	for _, pc := range p.Purposes {
		v := cookieValue(h, pc.Cookie)
		if v == "" {
			continue
		}
		if d, err := url.QueryUnescape(v); err == nil {
			v = d
		}
		s.seen = append(s.seen, pc.Name)
		if pc.Match.MatchString(v) && !slices.Contains(s.granted, pc.Name) {
			s.granted = append(s.granted, pc.Name)
		}
	}
	return s
}

// status tells whether a token is granted, and whether the visitor's
// choice for it is known at all.
func (s *State) status(t string) (granted, known bool) {
	switch kind, n := parseToken(t); kind {
	case tokenPurpose:
		if s.TCF == nil {
			return false, false
		}
		return s.TCF.PurposeConsent(n), true
	case tokenVendor:
		if s.TCF == nil {
			return false, false
		}
		return s.TCF.VendorConsent(n), true
	case tokenName:
		return slices.Contains(s.granted, t), slices.Contains(s.seen, t)
	}
	return false, false
}

// Missing returns the tokens of a requirement that are not granted (an
// unknown choice is no consent); none when it is met.
func (s *State) Missing(tokens []string) []string {
	var out []string
	for _, t := range tokens {
		if ok, _ := s.status(t); !ok {
			out = append(out, t)
		}
	}
	return out
}

// signal is a Google consent signal over a requirement.
func (s *State) signal(tokens []string) string {
	if len(tokens) == 0 {
		return ""
	}
	all := true
	for _, t := range tokens {
		granted, known := s.status(t)
		if known && !granted {
			return record.Denied
		}
		all = all && known
	}
	if all {
		return record.Granted
	}
	return ""
}

// Record is the consent kept with a touchpoint: Google's signals and the
// purposes granted (TCF purpose numbers, then names).
func (s *State) Record() *record.Consent {
	c := &record.Consent{
		AdUserData:        s.signal(s.policy.AdUserData),
		AdPersonalization: s.signal(s.policy.AdPersonalization),
	}
	if s.TCF != nil {
		for _, n := range s.TCF.Purposes() {
			c.Purposes = append(c.Purposes, strconv.Itoa(n))
		}
	}
	c.Purposes = append(c.Purposes, s.granted...)
	return c
}

// cookieValue returns the first non-empty value of the named cookie.
func cookieValue(h http.Header, name string) string {
	for _, c := range (&http.Request{Header: h}).CookiesNamed(name) {
		if c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// validCookieName reports whether a browser would send a cookie of this
// name: an RFC 6265 token.
func validCookieName(name string) bool {
	return (&http.Cookie{Name: name, Value: "v"}).Valid() == nil
}
