package order

import "fmt"

// Limits on per-offer values (Order.Values).
const (
	// MaxValueNameLength bounds a value's name.
	MaxValueNameLength = 64
	// MaxValueLength bounds a value: an offer ID, a goal name or a payout
	// is a few characters; a longer one is a fault.
	MaxValueLength = 255
)

// ValidValueName reports whether name can name a per-offer value: 1 to
// MaxValueNameLength ASCII letters, digits and underscores, so that it
// reads as one template token ({value.offer_id}) and as one Caddyfile
// word.
func ValidValueName(name string) bool {
	if name == "" || len(name) > MaxValueNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// CheckValue reports what makes v unfit as a per-offer value: more than
// MaxValueLength bytes, or an ASCII control character (which no header
// may carry, and no network expects in a query).
func CheckValue(v string) error {
	if len(v) > MaxValueLength {
		return fmt.Errorf("%d bytes, over %d", len(v), MaxValueLength)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return fmt.Errorf("control character 0x%02x at byte %d", v[i], i)
		}
	}
	return nil
}
