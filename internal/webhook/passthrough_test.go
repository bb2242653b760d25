package webhook

import (
	"regexp"
	"strings"
	"testing"
)

func TestPassThroughFor(t *testing.T) {
	tests := []struct {
		provider, host string
		param          string
		encoded        bool
		ok             bool
	}{
		{"clickbank", "hop.clickbank.net", "tid", true, true},
		{"clickbank", "topaff.widgetco.hop.clickbank.net", "tid", true, true},
		{"ClickBank", "TopAff.WidgetCo.HOP.ClickBank.net.", "tid", true, true},
		{"clickbank", "widgetco.pay.clickbank.net", "pb_session", false, true},
		{"clickbank", "nothop.clickbank.net", "pb_session", false, true},
		{"jvzoo", "www.jvzoo.com", "pb_session", false, true},
		{"warriorplus", "warriorplus.com", "s", false, true},
		{"stripe", "buy.stripe.com", "", false, false},
	}
	for _, tt := range tests {
		pt, ok := PassThroughFor(tt.provider, tt.host)
		if ok != tt.ok || pt.Param != tt.param || (pt.Encode != nil) != tt.encoded {
			t.Errorf("%s %s: %+v %v", tt.provider, tt.host, pt, ok)
		}
	}
}

// clickBankTID is ClickBank's rule for a HopLink tid: up to 100 characters
// of digits, lower-case letters and underscores.
var clickBankTID = regexp.MustCompile(`^[a-z0-9_]{1,100}$`)

func TestEncodeTID(t *testing.T) {
	refs := []string{
		strings.Repeat("AbC-_9", 10) + "zz",              // 62: the current cookie value
		strings.Repeat("-", 62), strings.Repeat("_", 62), // all-zero and all-one bits
		strings.Repeat("Zy0_", 11), // 44: a value made before batched session IDs
	}
	for _, ref := range refs {
		tid := EncodeTID(ref)
		if !clickBankTID.MatchString(tid) {
			t.Errorf("%q encodes to %q, which ClickBank would not keep", ref, tid)
		}
		for _, form := range []string{tid, strings.ToUpper(tid)} {
			if got, ok := decodeTID(form); !ok || got != ref {
				t.Errorf("decode(%q) = %q, %v; want %q", form, got, ok, ref)
			}
		}
	}
	for _, bad := range []string{"", "has space", "has+plus", strings.Repeat("a", 84)} {
		if tid := EncodeTID(bad); tid != "" {
			t.Errorf("EncodeTID(%q) = %q, want none", bad, tid)
		}
	}
}

func TestDecodeTIDRefusesOrdinaryTrackingIDs(t *testing.T) {
	valid := EncodeTID(strings.Repeat("AbC-_9", 10) + "zz")
	for _, tid := range []string{
		"fb_adset_12", "pb", "pbabc", "pb_" + valid[2:],
		valid[:len(valid)-1],                // one character short
		valid + "a",                         // one too many
		valid[:len(valid)-1] + "b",          // padding bits set
		strings.Replace(valid, "a", "1", 1), // '1' is not in the alphabet
		"xx" + valid[2:],                    // wrong prefix
	} {
		if ref, ok := decodeTID(tid); ok {
			t.Errorf("decodeTID(%q) = %q", tid, ref)
		}
	}
}

func TestLooksLikeSessionRef(t *testing.T) {
	for v, want := range map[string]bool{
		strings.Repeat("a", 62):       true,
		strings.Repeat("Z", 44):       true,
		strings.Repeat("a", 61):       false,
		strings.Repeat("a", 61) + "+": false,
		"fbadset12":                   false,
		"":                            false,
	} {
		if got := looksLikeSessionRef(v); got != want {
			t.Errorf("%q: %v", v, got)
		}
	}
}

func TestRebillBase(t *testing.T) {
	for receipt, want := range map[string]string{
		"ABCD1234-B002": "ABCD1234",
		"ABCD1234-B1":   "ABCD1234",
		"ABCD1234":      "ABCD1234",
		"ABCD1234-B":    "ABCD1234-B",
		"ABCD-BX12":     "ABCD-BX12",
		"-B001":         "-B001",
		"A-B1-B2":       "A-B1",
	} {
		got, suffix := rebillBase(receipt)
		if got != want || suffix != (got != receipt) {
			t.Errorf("%q: %q %v", receipt, got, suffix)
		}
	}
}
