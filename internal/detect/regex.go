package detect

import (
	"errors"
	"fmt"
	stdhtml "html"
	"mime"
	"regexp"
	"strings"
)

// Regex reads fields from the body text with a regular expression whose
// named groups are order_id, amount, currency and coupon (any subset, at
// least one). Each field comes from the first match in which its group took
// part, so alternatives such as `order=(?P<order_id>\d+)|total=(?P<amount>[\d.]+)`
// work. In an HTML page, character references in a captured value are
// decoded (&amp; becomes &).
type Regex struct {
	Pattern *regexp.Regexp
	// AmountMinor says the amount is in the currency's minor units.
	AmountMinor bool
}

// Name returns "regex".
func (*Regex) Name() string { return "regex" }

// regexGroups are the group names a Regex pattern may use.
var regexGroups = map[string]bool{"order_id": true, "amount": true, "currency": true, "coupon": true}

// maxRegexMatches bounds how many matches are looked at for groups that
// did not take part in the first one.
const maxRegexMatches = 16

// ErrRegexGroups is wrapped by NewRegex errors about group names.
var ErrRegexGroups = errors.New("regex needs named groups order_id, amount, currency or coupon")

// NewRegex compiles a pattern for the Regex source. The pattern must name at
// least one of the groups order_id, amount, currency, coupon, and no other
// group name (a misspelt name would silently never be read).
func NewRegex(pattern string) (*Regex, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("regex: %w", err)
	}
	known := 0
	for _, name := range re.SubexpNames()[1:] {
		switch {
		case name == "":
		case regexGroups[name]:
			known++
		default:
			return nil, fmt.Errorf("regex: unknown group name %q: %w", name, ErrRegexGroups)
		}
	}
	if known == 0 {
		return nil, fmt.Errorf("regex %q: %w", pattern, ErrRegexGroups)
	}
	return &Regex{Pattern: re}, nil
}

// Extract runs the pattern over the body.
func (r *Regex) Extract(p *Page) (Fields, error) {
	if r == nil || r.Pattern == nil {
		return Fields{}, errors.New("regex: no pattern")
	}
	matches := r.Pattern.FindAllSubmatchIndex(p.Body, maxRegexMatches)
	if len(matches) == 0 {
		return Fields{}, nil
	}
	isHTML := false
	if mt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err == nil {
		isHTML = mt == "text/html" || mt == "application/xhtml+xml"
	}
	var f Fields
	for i, name := range r.Pattern.SubexpNames() {
		var dst *string
		switch name {
		case "order_id":
			dst = &f.OrderID
		case "amount":
			dst = &f.Amount
		case "currency":
			dst = &f.Currency
		case "coupon":
			dst = &f.Coupon
		default:
			continue
		}
		for _, m := range matches {
			if m[2*i] < 0 {
				continue
			}
			v := string(p.Body[m[2*i]:m[2*i+1]])
			if isHTML && strings.IndexByte(v, '&') >= 0 {
				v = stdhtml.UnescapeString(v)
			}
			if v = strings.TrimSpace(v); v != "" {
				*dst = v
				break
			}
		}
	}
	if f.Amount != "" {
		f.AmountMinor = r.AmountMinor
	}
	return f, nil
}
