// Package order holds the records every other part of caddy-postback speaks
// about: an order seen on a page or in a webhook, and its amount as an exact
// decimal with a currency. It has no dependencies outside the standard library.
package order

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxScale bounds the digits after the decimal point that a Decimal keeps.
const maxScale = 8

// Decimal is an exact decimal number: Coef × 10^-Scale. Money is never held
// in a float, so 0.1 + 0.2 stays 0.3 and "1,234.50" stays 1234.50. In JSON
// it is a string of its digits ("49.90"), as people read amounts.
type Decimal struct {
	Coef  int64
	Scale uint8
}

// MarshalText writes the value with all its digits: "49.90".
func (d Decimal) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a value written by MarshalText.
func (d *Decimal) UnmarshalText(b []byte) error {
	v, err := parseExact(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// parseExact reads a plain decimal ("-1234.50"): digits with an optional
// sign and point, nothing else.
func parseExact(s string) (Decimal, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(digits, ".")
	if intPart == "" || !allDigits(intPart) || (frac != "" && !allDigits(frac)) || len(frac) > maxScale {
		return Decimal{}, fmt.Errorf("%w: %q is not a plain decimal", ErrBadAmount, s)
	}
	coef, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil {
		return Decimal{}, fmt.Errorf("%w: %q: %v", ErrBadAmount, s, err)
	}
	if neg {
		coef = -coef
	}
	return Decimal{Coef: coef, Scale: uint8(len(frac))}, nil
}

// ErrBadAmount is wrapped by every amount parsing error.
var ErrBadAmount = errors.New("bad amount")

// ParseDecimal reads an amount as written by shops and platforms: "49.9",
// "1234", "-3.5", "1,234.50" (comma thousands), "1.234,50" and "12,34"
// (comma decimal). When a string holds both separators, the last one is the
// decimal point. A single comma followed by exactly three digits is a
// thousands separator ("1,234" is 1234); any other single comma is a decimal
// point ("12,34" is 12.34). Spaces, underscores and apostrophes used as digit
// group separators are ignored, as is a leading "+".
func ParseDecimal(s string) (Decimal, error) {
	raw := s
	s = strings.TrimSpace(s)
	if s == "" {
		return Decimal{}, fmt.Errorf("%w: empty", ErrBadAmount)
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	// Drop digit-group spacing first.
	if strings.ContainsAny(s, " _'\u00a0") {
		s = strings.Map(func(r rune) rune {
			switch r {
			case ' ', '_', '\'', '\u00a0':
				return -1
			}
			return r
		}, s)
	}
	lastDot, lastComma := strings.LastIndexByte(s, '.'), strings.LastIndexByte(s, ',')
	var intPart, fracPart string
	switch {
	case lastDot >= 0 && lastComma >= 0:
		sep, group := byte('.'), ","
		if lastComma > lastDot {
			sep, group = ',', "."
		}
		i := strings.LastIndexByte(s, sep)
		intPart, fracPart = strings.ReplaceAll(s[:i], group, ""), s[i+1:]
	case lastComma >= 0:
		if strings.Count(s, ",") > 1 || len(s)-lastComma-1 == 3 {
			intPart = strings.ReplaceAll(s, ",", "")
			if !validGroups(s, ',') {
				return Decimal{}, fmt.Errorf("%w: %q", ErrBadAmount, raw)
			}
		} else {
			intPart, fracPart = s[:lastComma], s[lastComma+1:]
		}
	case lastDot >= 0:
		if strings.Count(s, ".") > 1 {
			if !validGroups(s, '.') {
				return Decimal{}, fmt.Errorf("%w: %q", ErrBadAmount, raw)
			}
			intPart = strings.ReplaceAll(s, ".", "")
		} else {
			intPart, fracPart = s[:lastDot], s[lastDot+1:]
		}
	default:
		intPart = s
	}
	if intPart == "" && fracPart == "" {
		return Decimal{}, fmt.Errorf("%w: %q", ErrBadAmount, raw)
	}
	if !allDigits(intPart) || !allDigits(fracPart) {
		return Decimal{}, fmt.Errorf("%w: %q", ErrBadAmount, raw)
	}
	fracPart = strings.TrimRight(fracPart, "0")
	if len(fracPart) > maxScale {
		return Decimal{}, fmt.Errorf("%w: %q has more than %d decimals", ErrBadAmount, raw, maxScale)
	}
	digits := strings.TrimLeft(intPart+fracPart, "0")
	if digits == "" {
		digits = "0"
	}
	coef, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return Decimal{}, fmt.Errorf("%w: %q out of range", ErrBadAmount, raw)
	}
	if neg {
		coef = -coef
	}
	return Decimal{Coef: coef, Scale: uint8(len(fracPart))}, nil
}

// validGroups reports whether every group after the first separator has
// exactly three digits, as in "1,234,567".
func validGroups(s string, sep byte) bool {
	parts := strings.Split(s, string(sep))
	if len(parts[0]) == 0 || len(parts[0]) > 3 {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) != 3 {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FromMinor converts an amount in a currency's minor units (cents) to a
// Decimal using the currency's exponent: 1199 USD is 11.99, 500 JPY is 500.
func FromMinor(minor int64, currency string) Decimal {
	return Decimal{Coef: minor, Scale: uint8(Exponent(currency))}.normalize()
}

// ParseMinor is ParseDecimal for a string that holds minor units, as Paddle
// sends them ("1000" USD is 10.00).
func ParseMinor(s, currency string) (Decimal, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return Decimal{}, fmt.Errorf("%w: minor units %q", ErrBadAmount, s)
	}
	return FromMinor(n, currency), nil
}

// normalize drops trailing fractional zeros so that equal values compare equal.
func (d Decimal) normalize() Decimal {
	for d.Scale > 0 && d.Coef%10 == 0 {
		d.Coef /= 10
		d.Scale--
	}
	return d
}

// Equal reports whether two decimals have the same value.
func (d Decimal) Equal(o Decimal) bool { return d.normalize() == o.normalize() }

// IsZero reports whether the value is zero.
func (d Decimal) IsZero() bool { return d.Coef == 0 }

// String formats the value with as many decimals as it has: "49.9", "1234".
func (d Decimal) String() string { return d.format(int(d.Scale)) }

// Fixed formats the value with exactly n decimals (rounding half away from
// zero when it must drop digits): Fixed(2) of 49.9 is "49.90".
func (d Decimal) Fixed(n int) string { return d.format(n) }

// ForCurrency formats the value with the currency's usual number of decimals,
// keeping any extra precision the value has: 49.9 USD is "49.90", 500 JPY is
// "500", 1.2345 USD is "1.2345".
func (d Decimal) ForCurrency(currency string) string {
	n := Exponent(currency)
	if int(d.normalize().Scale) > n {
		return d.normalize().String()
	}
	return d.format(n)
}

// Minor returns the value in the currency's minor units, rounded half away
// from zero.
func (d Decimal) Minor(currency string) int64 {
	n, _ := strconv.ParseInt(strings.Replace(d.Fixed(Exponent(currency)), ".", "", 1), 10, 64)
	return n
}

func (d Decimal) format(n int) string {
	scale := int(d.Scale)
	neg := d.Coef < 0
	// Work on the magnitude as unsigned, so the most negative int64 has one.
	coef := uint64(d.Coef)
	if neg {
		coef = -coef
	}
	if scale > n { // round half away from zero, looking once at the first dropped digit
		div := uint64(1)
		for i := 0; i < scale-n-1; i++ {
			div *= 10
		}
		first := (coef / div) % 10
		coef = coef / (div * 10)
		if first >= 5 {
			coef++
		}
		scale = n
	}
	digits := strconv.FormatUint(coef, 10)
	for scale < n {
		digits += "0"
		scale++
	}
	if n > 0 {
		for len(digits) <= n {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-n] + "." + digits[len(digits)-n:]
	}
	if neg && coef != 0 {
		digits = "-" + digits
	}
	return digits
}
