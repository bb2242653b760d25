package webhook

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// Helpers shared by the marketplace IPN receivers (ClickBank, JVZoo,
// WarriorPlus): their notifications are form posts or decrypted JSON with
// receipts instead of event IDs, and tracking values that ride the buy link.

// maxIPNID bounds receipts and transaction IDs taken from a notification.
// Real ones are a few dozen characters; a longer one would become a store
// key of any size.
const maxIPNID = 128

// checkIPNID rejects an empty, oversized or control-character ID.
func checkIPNID(provider, field, id string) error {
	if id == "" {
		return fmt.Errorf("%s: %w: no %s", provider, ErrMalformed, field)
	}
	if len(id) > maxIPNID {
		return fmt.Errorf("%s: %w: %s longer than %d bytes", provider, ErrMalformed, field, maxIPNID)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] == 0x7f {
			return fmt.Errorf("%s: %w: %s %q has control characters", provider, ErrMalformed, field, truncate(id, 32))
		}
	}
	return nil
}

// parseIPNForm reads a form-encoded notification body. A field sent twice is
// refused: the check covers one value per name, and a second copy could
// make the value read differ from the value verified. The caller picks the
// error kinds: for Verify, a body that is no form is ErrBadRequest and a
// doubled field ErrSignature (a genuine notification has none); for Parse
// both are ErrMalformed.
func parseIPNForm(provider string, body []byte, notForm, doubled error) (url.Values, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: form body: %v", provider, notForm, err)
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, fmt.Errorf("%s: %w: field %q sent %d times", provider, doubled, truncate(k, 32), len(v))
		}
	}
	return form, nil
}

// cverifyAll computes the check-sum of JVZIPN (and of ClickBank's form
// notifications up to version 4.0): the values of every field but cverify,
// in ascending order of field name, each followed by "|", then the secret
// key; SHA-1 of those UTF-8 bytes, the first 8 hex digits in upper case.
func cverifyAll(form url.Values, secret string) [8]byte {
	keys := make([]string, 0, len(form))
	for k := range form {
		if k != "cverify" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha1.New()
	for _, k := range keys {
		if v := form[k]; len(v) > 0 {
			h.Write([]byte(v[0]))
		}
		h.Write([]byte{'|'})
	}
	h.Write([]byte(secret))
	return cverifyDigits(h.Sum(nil))
}

// cverifyFields computes a check-sum over the given values in the given
// order, each followed by "|", then the secret key (JVZIPN v2).
func cverifyFields(secret string, values ...string) [8]byte {
	h := sha1.New()
	for _, v := range values {
		h.Write([]byte(v))
		h.Write([]byte{'|'})
	}
	h.Write([]byte(secret))
	return cverifyDigits(h.Sum(nil))
}

// cverifyDigits turns a SHA-1 sum into the 8 upper-case hex digits sent as
// cverify.
func cverifyDigits(sum []byte) [8]byte {
	var out [8]byte
	hex.Encode(out[:], sum[:4])
	for i, c := range out {
		if c >= 'a' && c <= 'f' {
			out[i] = c - 'a' + 'A'
		}
	}
	return out
}

// cverifyMatch reports whether the sent cverify (either case) equals any of
// the computed ones, comparing each in constant time.
func cverifyMatch(sent string, want [][8]byte) bool {
	if len(sent) != 8 {
		return false
	}
	var got [8]byte
	for i := 0; i < 8; i++ {
		c := sent[i]
		if c >= 'a' && c <= 'f' {
			c = c - 'a' + 'A'
		}
		got[i] = c
	}
	matched := 0
	for i := range want {
		matched |= subtle.ConstantTimeCompare(got[:], want[i][:])
	}
	return matched == 1
}

// rebillBase strips the "-B<n>" suffix that ClickBank and JVZoo append to a
// subscription's first receipt for each later payment ("ABCD1234-B002"),
// returning the first sale's receipt and whether there was a suffix.
func rebillBase(receipt string) (string, bool) {
	i := strings.LastIndex(receipt, "-B")
	if i <= 0 || i+2 == len(receipt) || !allDigits(receipt[i+2:]) {
		return receipt, false
	}
	return receipt[:i], true
}

// looksLikeSessionRef reports whether v has the shape of a signed session
// cookie value (44 or 62 characters of base64url), so that a pass-through
// value that carries one can be told from a click ID. The reference is
// verified before use; the shape only decides where the value goes.
func looksLikeSessionRef(v string) bool {
	if len(v) != 44 && len(v) != 62 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if base64URLValue(v[i]) < 0 {
			return false
		}
	}
	return true
}

// passThroughQuery reads a pass-through query string (JVZoo's cvendthru,
// WarriorPlus's checkout parameters): the session field's value becomes the
// order's session reference, the other parameters its candidate click IDs.
// A stray bad escape loses only its own parameter.
func passThroughQuery(o *order.Order, raw, sessionField string) {
	if raw == "" {
		return
	}
	vals, _ := url.ParseQuery(raw)
	if ref := strings.TrimSpace(vals.Get(sessionField)); ref != "" && o.SessionRef == "" {
		o.SessionRef = ref
	}
	for k, v := range firstValues(vals, sessionField) {
		addClickID(o, k, v)
	}
}

// trackingValue files one tracking value a platform carried under param: a
// value shaped like a session reference becomes the order's session
// reference (when it has none yet), anything else a candidate click ID.
func trackingValue(o *order.Order, param, v string) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
	case o.SessionRef == "" && looksLikeSessionRef(v):
		o.SessionRef = v
	default:
		addClickID(o, param, v)
	}
}

// addClickID adds one candidate click ID, keeping the first value per name
// and at most maxClickIDs names.
func addClickID(o *order.Order, param, v string) {
	if param == "" || v == "" {
		return
	}
	if o.ClickIDs == nil {
		o.ClickIDs = make(map[string]string)
	}
	if _, dup := o.ClickIDs[param]; dup || len(o.ClickIDs) >= maxClickIDs {
		return
	}
	o.ClickIDs[param] = v
}

// setDecimalText parses a decimal amount sent as form text into o, noting a
// problem instead of failing: the order is still worth keeping.
func setDecimalText(o *order.Order, s, field string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	d, err := order.ParseDecimal(s)
	if err != nil {
		o.Invalid = append(o.Invalid, field+": "+err.Error())
		return
	}
	o.Amount, o.HasAmount = d, true
}

// refundedAmount makes a refund's amount positive: platforms that send the
// reversal as a negative total mean the same sum.
func refundedAmount(o *order.Order) {
	if o.HasAmount && o.Amount.Coef < 0 {
		o.Amount.Coef = -o.Amount.Coef
	}
}

// addAlias adds an alias unless it is empty, the ID itself or already there.
func addAlias(o *order.Order, alias string) {
	alias = strings.TrimSpace(alias)
	if alias == "" || alias == o.ID || len(alias) > maxIPNID {
		return
	}
	for _, a := range o.Aliases {
		if a == alias {
			return
		}
	}
	o.Aliases = append(o.Aliases, alias)
}

// quoted renders an untrusted value for a reason or problem text.
func quoted(s string) string { return strconv.Quote(truncate(s, 32)) }
