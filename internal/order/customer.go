package order

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
)

// Customer is what an order says of its customer for platforms that match
// conversions on it: each value normalised and SHA-256 hashed (lower-case
// hex) when the order is read, never kept in clear, "" when unknown.
// Platforms normalise some values differently, so a value is kept once per
// distinct normalisation rather than once in a form that matches nowhere:
//
//   - Email: trimmed and lower-cased (Meta, TikTok, Pinterest, Snapchat,
//     Microsoft Advertising).
//   - EmailGoogle: as Email, and for gmail.com and googlemail.com addresses
//     without dots and "+tag" in the local part (Google).
//   - EmailReddit: lower-cased, the local part cut at its first "+" and
//     stripped of everything but letters and digits (Reddit).
//   - Phone: the full international number as digits only, country code
//     first, no "+" (Meta, Pinterest, Snapchat).
//   - PhoneE164: the same number in E.164 with its "+" (Google, TikTok,
//     Microsoft Advertising, Reddit).
//   - FirstName, LastName, City, Region, PostalCode, Country: Meta's forms,
//     which Pinterest and Snapchat share.
type Customer struct {
	Email       string `json:"em,omitempty"`
	EmailGoogle string `json:"em_google,omitempty"`
	EmailReddit string `json:"em_reddit,omitempty"`
	Phone       string `json:"ph,omitempty"`
	PhoneE164   string `json:"ph_e164,omitempty"`
	FirstName   string `json:"fn,omitempty"`
	LastName    string `json:"ln,omitempty"`
	City        string `json:"ct,omitempty"`
	Region      string `json:"st,omitempty"`
	PostalCode  string `json:"zp,omitempty"`
	Country     string `json:"country,omitempty"`
}

// CustomerInfo is a customer's identifiers in clear, as a webhook or page
// states them. It lives only between reading an order and NewCustomer:
// orders keep the hashed Customer, never this.
type CustomerInfo struct {
	Email     string
	Phone     string
	FirstName string
	LastName  string
	// FullName is split into first and last name when those are not
	// given: the first word and the last word.
	FullName   string
	City       string
	Region     string
	PostalCode string
	// Country is the ISO 3166-1 alpha-2 code. It also decides the country
	// calling code of a phone number written without one.
	Country string
}

// NewCustomer normalises and hashes what in says, for every platform's
// rules (see Customer). Values that cannot be normalised (an address
// without "@", a national phone number without a known country) are left
// out rather than hashed in a form no platform would match. It returns nil
// when nothing is left.
func NewCustomer(in CustomerInfo) *Customer {
	var c Customer
	if e, ok := normalizeEmail(in.Email); ok {
		c.Email = Hash(e)
		c.EmailGoogle = Hash(googleEmail(e))
		c.EmailReddit = Hash(redditEmail(e))
	}
	country := normalizeCountry(in.Country)
	if digits := E164Digits(in.Phone, country); digits != "" {
		c.Phone = Hash(digits)
		c.PhoneE164 = Hash("+" + digits)
	}
	first, last := in.FirstName, in.LastName
	if strings.TrimSpace(first) == "" && strings.TrimSpace(last) == "" {
		first, last = splitName(in.FullName)
	}
	c.FirstName = hashNonEmpty(normalizeName(first))
	c.LastName = hashNonEmpty(normalizeName(last))
	c.City = hashNonEmpty(normalizeCity(in.City))
	c.Region = hashNonEmpty(normalizeRegion(in.Region, country))
	c.PostalCode = hashNonEmpty(normalizePostalCode(in.PostalCode, country))
	c.Country = hashNonEmpty(country)
	if c == (Customer{}) {
		return nil
	}
	return &c
}

// Merge fills the empty values of c from d and returns the result; either
// may be nil.
func (c *Customer) Merge(d *Customer) *Customer {
	if c == nil {
		return d
	}
	if d == nil {
		return c
	}
	out := *c
	for _, p := range [][2]*string{
		{&out.Email, &d.Email}, {&out.EmailGoogle, &d.EmailGoogle}, {&out.EmailReddit, &d.EmailReddit},
		{&out.Phone, &d.Phone}, {&out.PhoneE164, &d.PhoneE164}, {&out.FirstName, &d.FirstName},
		{&out.LastName, &d.LastName}, {&out.City, &d.City}, {&out.Region, &d.Region},
		{&out.PostalCode, &d.PostalCode}, {&out.Country, &d.Country},
	} {
		if *p[0] == "" {
			*p[0] = *p[1]
		}
	}
	return &out
}

// Hash returns the lower-case hex SHA-256 of s, the form every platform
// takes.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// IsHash reports whether s already is a lower- or upper-case hex SHA-256,
// as pages that hash identifiers themselves send them.
func IsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hashNonEmpty(s string) string {
	if s == "" {
		return ""
	}
	return Hash(s)
}

// normalizeEmail trims and lower-cases an address and checks its shape:
// one "@", a local part, a domain with a dot, no white space.
func normalizeEmail(s string) (string, bool) {
	e := strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", false
	}
	if strings.IndexFunc(e, unicode.IsSpace) >= 0 {
		return "", false
	}
	return e, true
}

// googleEmail applies Google's rule for Gmail addresses (Data Manager API,
// "Format user data"): no dots before the "@", and no "+" and what follows
// it. Other domains keep their dots and tags.
func googleEmail(e string) string {
	local, domain, _ := strings.Cut(e, "@")
	if domain != "gmail.com" && domain != "googlemail.com" {
		return e
	}
	local, _, _ = strings.Cut(local, "+")
	return strings.ReplaceAll(local, ".", "") + "@" + domain
}

// redditEmail applies Reddit's canonical form (Reddit Pixel, "Manual
// advanced matching"): the local part cut at its first "+", then only its
// letters and digits, for every domain.
func redditEmail(e string) string {
	local, domain, _ := strings.Cut(e, "@")
	local, _, _ = strings.Cut(local, "+")
	var b strings.Builder
	for i := 0; i < len(local); i++ {
		if c := local[i]; c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String() + "@" + domain
}

// normalizeName lower-cases a name and drops punctuation and symbols
// (Meta: "Lowercase only with no punctuation"; letters outside a-z are
// kept, in UTF-8, as its examples 정 and valéry show). Inner white space
// is collapsed to one space.
func normalizeName(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		case unicode.IsSpace(r):
			space = true
		}
	}
	return b.String()
}

// splitName takes a full name's first and last words; middle names are
// dropped, since platforms match on first and last name.
func splitName(full string) (string, string) {
	f := strings.Fields(full)
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return f[0], ""
	}
	return f[0], f[len(f)-1]
}

// normalizeCity keeps a city's letters, lower-cased (Meta: "Lowercase with
// any spaces removed"; its SDK also drops digits and punctuation).
func normalizeCity(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normalizeRegion gives US states as their two-letter code in lower case
// (a full state name is mapped to it); other regions keep only letters and
// digits, lower-cased (Meta's rule for states outside the US).
func normalizeRegion(s, country string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	r := b.String()
	if country == "us" || country == "" {
		if code, ok := usStates[r]; ok {
			return code
		}
	}
	return r
}

// normalizePostalCode lower-cases a postal code without spaces and dashes;
// a US ZIP code keeps only its first five digits (Meta).
func normalizePostalCode(s, country string) string {
	var b strings.Builder
scan:
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if r == ' ' || r == '-' {
			if country == "us" {
				break scan // "94025-1234": the ZIP+4 extension is dropped
			}
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	z := b.String()
	if country == "us" && len(z) > 5 {
		z = z[:5]
	}
	return z
}

// normalizeCountry accepts an ISO 3166-1 alpha-2 code in any case.
func normalizeCountry(s string) string {
	c := strings.ToLower(strings.TrimSpace(s))
	if len(c) != 2 || c[0] < 'a' || c[0] > 'z' || c[1] < 'a' || c[1] > 'z' {
		return ""
	}
	return c
}

// usStates maps US state names, without spaces, to their codes.
var usStates = map[string]string{
	"alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca", "colorado": "co",
	"connecticut": "ct", "delaware": "de", "districtofcolumbia": "dc", "florida": "fl", "georgia": "ga",
	"hawaii": "hi", "idaho": "id", "illinois": "il", "indiana": "in", "iowa": "ia", "kansas": "ks",
	"kentucky": "ky", "louisiana": "la", "maine": "me", "maryland": "md", "massachusetts": "ma",
	"michigan": "mi", "minnesota": "mn", "mississippi": "ms", "missouri": "mo", "montana": "mt",
	"nebraska": "ne", "nevada": "nv", "newhampshire": "nh", "newjersey": "nj", "newmexico": "nm",
	"newyork": "ny", "northcarolina": "nc", "northdakota": "nd", "ohio": "oh", "oklahoma": "ok",
	"oregon": "or", "pennsylvania": "pa", "rhodeisland": "ri", "southcarolina": "sc", "southdakota": "sd",
	"tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va", "washington": "wa",
	"westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
}
