package order

import (
	"fmt"
	"strings"
)

// Limits on what an order may carry and still be sent.
const (
	// MaxIDLength bounds an order ID: shops' IDs are far shorter, and a
	// longer one is a fault or an attack, not an order.
	MaxIDLength = 255
	// maxMajor bounds an amount's magnitude: 10^12 in major units, more
	// than any single order a network would pay on.
	maxMajor = 1_000_000_000_000
)

// Check returns what makes an order unfit to send as if it were valid: a
// negative amount for anything but a refund, an amount out of range, a
// currency that is not an ISO 4217 code, an ID longer than MaxIDLength,
// and the values a source gave but could not read (Invalid). Such an order
// is recorded with its problems and no postback is sent.
func (o *Order) Check() []string {
	out := append([]string(nil), o.Invalid...)
	if len(o.ID) > MaxIDLength {
		out = append(out, fmt.Sprintf("order ID of %d bytes, over %d", len(o.ID), MaxIDLength))
	}
	if o.HasAmount {
		refund := o.Status == StatusRefunded || o.Status == StatusRejected || o.Event == "refund"
		if o.Amount.Coef < 0 && !refund {
			out = append(out, fmt.Sprintf("negative amount %s for a %s", o.Amount, o.Event))
		}
		if o.Amount.major() >= maxMajor {
			out = append(out, fmt.Sprintf("amount %s out of range (under %d)", o.Amount, int64(maxMajor)))
		}
	}
	if o.Currency != "" && !KnownCurrency(o.Currency) {
		out = append(out, fmt.Sprintf("currency %q is not an ISO 4217 code", o.Currency))
	}
	return out
}

// KnownCurrency reports whether code is an active ISO 4217 currency code
// (upper case).
func KnownCurrency(code string) bool {
	return len(code) == 3 && strings.Contains(iso4217, " "+code+" ")
}

// iso4217 lists the active ISO 4217 codes (including funds and precious
// metals codes that platforms may report), space-separated.
const iso4217 = " AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD " +
	"CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS " +
	"GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT " +
	"LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR " +
	"PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL " +
	"THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC " +
	"XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL "

// major returns the magnitude of the whole units of d.
func (d Decimal) major() int64 {
	c := d.Coef
	if c < 0 {
		c = -c
	}
	for range d.Scale {
		c /= 10
	}
	return c
}
