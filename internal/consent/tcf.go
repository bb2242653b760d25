// Package consent reads what a visitor agreed to from the cookies a
// consent management platform (CMP) sets: the IAB TCF v2 string
// (euconsent-v2) and CMP cookies of the site's own choosing. It decides
// whether a click may be captured for a network, and derives Google's
// consent signals (ad_user_data, ad_personalization) for the touchpoint.
// It knows nothing of Caddy.
package consent

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TCString is the core segment of an IAB TCF v2 Transparency and Consent
// string, as far as this package reads it: the header, the purpose
// consents and the vendor consents. Segments after the core (disclosed
// and allowed vendors, publisher purposes) are not read.
type TCString struct {
	Version           int
	Created           time.Time
	LastUpdated       time.Time
	CmpID             int
	CmpVersion        int
	ConsentScreen     int
	ConsentLanguage   string
	VendorListVersion int
	PolicyVersion     int
	// purposes holds purpose n's consent in bit n-1 (purposes 1 to 24;
	// the string writes purpose 1 first).
	purposes uint32
	// purposesLI holds the legitimate-interest transparency bits alike.
	purposesLI uint32
	// PurposeOneTreatment is set when purpose 1 was not disclosed (a
	// publisher in a country that does not require consent for it).
	PurposeOneTreatment bool
	PublisherCC         string
	maxVendor           int
	// vendorBits holds vendor n's consent in bit n-1, when bit-field
	// encoded; vendorRanges holds it when range encoded.
	vendorBits   []byte
	vendorRanges [][2]int
}

// ErrBadTCString is wrapped by every TC string decoding error.
var ErrBadTCString = errors.New("invalid TC string")

// maxTCString caps the TC string read: real ones with thousands of vendors
// stay well under it, and a cookie can hold no more than about 4 KiB.
const maxTCString = 16 << 10

// DecodeTCString decodes a TC string's core segment (the text before the
// first '.'), base64url with or without padding.
func DecodeTCString(s string) (*TCString, error) {
	if len(s) > maxTCString {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadTCString, len(s))
	}
	core, _, _ := strings.Cut(strings.TrimSpace(s), ".")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(core, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: core segment is not base64url: %w", ErrBadTCString, err)
	}
	r := &bitReader{b: raw}
	tc := &TCString{Version: r.int(6)}
	if r.err == nil && tc.Version != 2 {
		return nil, fmt.Errorf("%w: version %d, want 2", ErrBadTCString, tc.Version)
	}
	tc.Created = deciseconds(r.uint(36))
	tc.LastUpdated = deciseconds(r.uint(36))
	tc.CmpID = r.int(12)
	tc.CmpVersion = r.int(12)
	tc.ConsentScreen = r.int(6)
	tc.ConsentLanguage = r.letters()
	tc.VendorListVersion = r.int(12)
	tc.PolicyVersion = r.int(6)
	r.uint(1 + 1 + 12) // IsServiceSpecific, UseNonStandardTexts, SpecialFeatureOptIns
	tc.purposes = r.flags(24)
	tc.purposesLI = r.flags(24)
	tc.PurposeOneTreatment = r.uint(1) == 1
	tc.PublisherCC = r.letters()
	tc.maxVendor = r.int(16)
	if r.uint(1) == 0 {
		tc.vendorBits = r.bits(tc.maxVendor)
	} else {
		n := r.int(12)
		for i := 0; i < n && r.err == nil; i++ {
			isRange := r.uint(1) == 1
			start := r.int(16)
			end := start
			if isRange {
				end = r.int(16)
			}
			if r.err == nil && (start < 1 || end < start || end > tc.maxVendor) {
				return nil, fmt.Errorf("%w: vendor range %d-%d outside 1-%d", ErrBadTCString, start, end, tc.maxVendor)
			}
			tc.vendorRanges = append(tc.vendorRanges, [2]int{start, end})
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return tc, nil
}

// PurposeConsent reports whether the visitor consented to TCF purpose n
// (1 to 24).
func (tc *TCString) PurposeConsent(n int) bool {
	return n >= 1 && n <= 24 && tc.purposes&(1<<(n-1)) != 0
}

// Purposes returns the purposes consented to, in order.
func (tc *TCString) Purposes() []int {
	var out []int
	for n := 1; n <= 24; n++ {
		if tc.PurposeConsent(n) {
			out = append(out, n)
		}
	}
	return out
}

// VendorConsent reports whether the visitor consented to the vendor with
// this Global Vendor List ID.
func (tc *TCString) VendorConsent(id int) bool {
	if id < 1 || id > tc.maxVendor {
		return false
	}
	if tc.vendorRanges == nil {
		i := id - 1
		return i/8 < len(tc.vendorBits) && tc.vendorBits[i/8]&(0x80>>(i%8)) != 0
	}
	for _, rg := range tc.vendorRanges {
		if id >= rg[0] && id <= rg[1] {
			return true
		}
	}
	return false
}

// deciseconds turns a TC string's time field into a time.
func deciseconds(ds uint64) time.Time {
	return time.UnixMilli(int64(ds) * 100).UTC()
}

// bitReader reads big-endian bit fields; reading past the end sets err
// and returns zeros from then on.
type bitReader struct {
	b   []byte
	pos int
	err error
}

func (r *bitReader) uint(n int) uint64 {
	if r.err != nil {
		return 0
	}
	if r.pos+n > len(r.b)*8 {
		r.err = fmt.Errorf("%w: the core segment ends at bit %d, before a field of %d bits", ErrBadTCString, len(r.b)*8, n)
		return 0
	}
	var v uint64
	for range n {
		v = v<<1 | uint64(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) int(n int) int { return int(r.uint(n)) }

// flags reads n one-bit flags, the first into bit 0.
func (r *bitReader) flags(n int) uint32 {
	var v uint32
	for i := range n {
		v |= uint32(r.uint(1)) << i
	}
	return v
}

// letters reads two 6-bit letters (A = 0), as the language and country
// codes are written.
func (r *bitReader) letters() string {
	a, b := r.uint(6), r.uint(6)
	if a > 25 || b > 25 {
		if r.err == nil {
			r.err = fmt.Errorf("%w: a letter field holds %d, %d", ErrBadTCString, a, b)
		}
		return ""
	}
	return string([]byte{byte('A' + a), byte('A' + b)})
}

// bits copies n bits, left-aligned, into a new slice.
func (r *bitReader) bits(n int) []byte {
	out := make([]byte, (n+7)/8)
	for i := range n {
		if r.uint(1) == 1 {
			out[i/8] |= 0x80 >> (i % 8)
		}
	}
	if r.err != nil {
		return nil
	}
	return out
}
