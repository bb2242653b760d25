package order

import (
	"strings"
	"testing"
)

func TestValueNamesAndValues(t *testing.T) {
	for name, ok := range map[string]bool{
		"offer_id": true, "Goal2": true, "payout": true, strings.Repeat("n", 64): true,
		"": false, "offer-id": false, "offer.id": false, "offer id": false, "{x}": false, strings.Repeat("n", 65): false, "é": false,
	} {
		if ValidValueName(name) != ok {
			t.Errorf("ValidValueName(%q) = %v, want %v", name, !ok, ok)
		}
	}
	for v, ok := range map[string]bool{
		"42": true, "": true, "pro yearly & more": true, "é": true, strings.Repeat("v", 255): true,
		strings.Repeat("v", 256): false, "a\nb": false, "a\rb": false, "tab\there": false, "del\x7f": false,
	} {
		if err := CheckValue(v); (err == nil) != ok {
			t.Errorf("CheckValue(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}
