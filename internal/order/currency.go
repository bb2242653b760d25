package order

import "strings"

// exponents lists ISO 4217 currencies whose minor unit is not 1/100.
var exponents = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// Exponent returns the number of minor-unit digits of an ISO 4217 currency
// code (2 when the code is unknown or empty).
func Exponent(currency string) int {
	if e, ok := exponents[strings.ToUpper(currency)]; ok {
		return e
	}
	return 2
}

// NormalizeCurrency upper-cases a currency code and returns "" unless it is
// three ASCII letters.
func NormalizeCurrency(c string) string {
	c = strings.TrimSpace(c)
	if len(c) != 3 {
		return ""
	}
	b := []byte(c)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z':
			b[i] = ch - 'a' + 'A'
		case ch >= 'A' && ch <= 'Z':
		default:
			return ""
		}
	}
	return string(b)
}
