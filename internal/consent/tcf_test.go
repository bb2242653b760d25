package consent

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// The strings and their decoded values are the IAB's own, from the tests
// of its Java decoder (InteractiveAdvertisingBureau/iabtcf-java,
// TCStringV2Test), which were made with the IAB's encoder at iabtcf.com.
func TestDecodeTCStringIABExamples(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        string
		purposes []int
		vendors  []int // consented vendors up to maxVendorCheck
	}{
		{"purposes 2 and 10", "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA", []int{2, 10}, nil},
		{"bit-field vendors", "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA",
			[]int{3, 4, 5, 6, 7, 8, 9}, []int{23, 37, 47, 48, 53, 65, 98}},
		{"all segments", "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA.IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA.cAAAAAAAITg=",
			[]int{3, 4, 5, 6, 7, 8, 9}, []int{23, 37, 47, 48, 53, 65, 98}},
		{"one range of two vendors", "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
			nil, []int{702, 703}},
		{"one vendor", "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
			nil, []int{703}},
		{"purposes 1 and 2", "COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA", []int{1, 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeTCString(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if p := got.Purposes(); !slices.Equal(p, tc.purposes) {
				t.Errorf("purposes %v, want %v", p, tc.purposes)
			}
			var vendors []int
			for id := 1; id <= 1000; id++ {
				if got.VendorConsent(id) {
					vendors = append(vendors, id)
				}
			}
			if !slices.Equal(vendors, tc.vendors) {
				t.Errorf("vendors %v, want %v", vendors, tc.vendors)
			}
		})
	}
}

func TestDecodeTCStringHeader(t *testing.T) {
	tc, err := DecodeTCString("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")
	if err != nil {
		t.Fatal(err)
	}
	want := TCString{Version: 2, Created: time.Date(2020, 1, 26, 17, 1, 0, 0, time.UTC), LastUpdated: time.Date(2021, 2, 2, 17, 1, 0, 0, time.UTC),
		CmpID: 675, CmpVersion: 2, ConsentScreen: 1, ConsentLanguage: "EN", VendorListVersion: 15, PolicyVersion: 2,
		PurposeOneTreatment: true, PublisherCC: "AA"}
	if tc.Version != want.Version || !tc.Created.Equal(want.Created) || !tc.LastUpdated.Equal(want.LastUpdated) ||
		tc.CmpID != want.CmpID || tc.CmpVersion != want.CmpVersion || tc.ConsentScreen != want.ConsentScreen ||
		tc.ConsentLanguage != want.ConsentLanguage || tc.VendorListVersion != want.VendorListVersion ||
		tc.PolicyVersion != want.PolicyVersion || tc.PurposeOneTreatment != want.PurposeOneTreatment || tc.PublisherCC != want.PublisherCC {
		t.Errorf("header %+v\nwant %+v", *tc, want)
	}
}

func TestDecodeTCStringRejects(t *testing.T) {
	for _, tc := range []struct{ name, s string }{
		{"empty", ""},
		{"not base64url", "CO+ybn4PA/zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA"},
		{"TCF v1 string", "BONciguONcjGKADACHENAOLS1rAHDAFAAEAASABQAMwAeACEAFw"},
		{"cut short", "COtybn4PA_zT4KjACBENAPCIAEBA"},
		{"range past max vendor", coreString(10, true, "1", "0000000000010000", "0000000000001011")},
		{"range ending before it starts", coreString(20, true, "1", "0000000000010000", "0000000000001011")},
		{"vendor zero", coreString(20, true, "0", "0000000000000000")},
		{"bit field cut short", coreString(200, false, "1010")},
		{"version 3", "D" + coreString(0, false)[1:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := DecodeTCString(tc.s); !errors.Is(err, ErrBadTCString) {
				t.Fatalf("DecodeTCString(%q) = %+v, %v; want ErrBadTCString", tc.s, got, err)
			}
		})
	}
}

// coreString encodes a core segment with no purposes, maxVendor and its
// vendor section, whose bits follow: with ranges, a count of one entry and
// the entry's bits (is-range, start, end); without, the bit field.
func coreString(maxVendor int, ranges bool, vendorBits ...string) string {
	return buildCore(0, maxVendor, ranges, vendorBits...)
}

// buildCore is coreString with purposes consented: purpose n in bit n-1.
func buildCore(purposes uint32, maxVendor int, ranges bool, vendorBits ...string) string {
	var b strings.Builder
	put := func(n int, v uint64) {
		for i := n - 1; i >= 0; i-- {
			b.WriteByte('0' + byte(v>>i&1))
		}
	}
	put(6, 2)            // version
	put(36, 15800000000) // created
	put(36, 15800000000) // last updated
	put(12, 7)           // CMP
	put(12, 1)           // CMP version
	put(6, 1)            // consent screen
	put(12, 4<<6|13)     // language EN
	put(12, 15)          // vendor list version
	put(6, 2)            // policy version
	put(1+1+12, 0)       // flags, special features
	for i := range 24 {  // purposes, 1 first
		put(1, uint64(purposes>>i&1))
	}
	put(24+1, 0)               // LI, purpose one
	put(12, 0)                 // publisher country AA
	put(16, uint64(maxVendor)) // max vendor
	if ranges {
		put(1, 1)
		put(12, 1)
	} else {
		put(1, 0)
	}
	for _, v := range vendorBits {
		b.WriteString(v)
	}
	bits := b.String()
	out := make([]byte, (len(bits)+7)/8)
	for i := range len(bits) {
		if bits[i] == '1' {
			out[i/8] |= 0x80 >> (i % 8)
		}
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

func TestCoreStringRanges(t *testing.T) {
	tc, err := DecodeTCString(coreString(20, true, "1", "0000000000001011", "0000000000010000"))
	if err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 20; id++ {
		if want := id >= 11 && id <= 16; tc.VendorConsent(id) != want {
			t.Errorf("vendor %d: consent %v, want %v", id, !want, want)
		}
	}
}

func TestVendorConsentOutOfRange(t *testing.T) {
	tc, err := DecodeTCString("COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{-1, 0, 99, 65535} {
		if tc.VendorConsent(id) {
			t.Errorf("vendor %d has consent", id)
		}
	}
	for _, n := range []int{0, 25, 2} {
		if tc.PurposeConsent(n) {
			t.Errorf("purpose %d has consent", n)
		}
	}
}

func FuzzDecodeTCString(f *testing.F) {
	f.Add("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")
	f.Add("COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA")
	f.Add("COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tc, err := DecodeTCString(s)
		if err != nil {
			return
		}
		// Whatever decodes answers every question without panicking.
		for id := 0; id <= tc.maxVendor+1; id++ {
			tc.VendorConsent(id)
		}
		tc.Purposes()
	})
}
