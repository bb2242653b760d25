package webhook

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/caddy-postback/caddy-postback/internal/order"
)

// ClickBank verifies and parses ClickBank Instant Notification Service
// (INS) notifications, versions 6.0 to 8.0: a JSON body
// {"notification": <base64>, "iv": <base64>} whose notification is the
// whole order as JSON, AES-256-CBC encrypted with PKCS#7 padding. The key is
// the first 32 characters of the lower-case hex SHA-1 of the account's
// secret key, used as 32 ASCII bytes; iv is the 16-byte IV.
//
// ClickBank signs nothing: a notification is authentic when it decrypts
// with the secret key to valid padding and one JSON object. Because CBC
// without a MAC lets a holder of a captured notification change its first
// 16 plaintext bytes through the IV, an object that names a top-level key
// twice is refused, so no such edit can shadow a field that follows. Every
// decryption failure gives the same error, whatever step failed, so the
// endpoint is no padding oracle.
//
// The legacy form notifications (version 4.0 and older, checked by a
// cverify field) are refused with ErrBadRequest: ClickBank migrated every
// account to version 6.0 in 2015, so a form post is not something a seller
// meets today, and accepting it would add a 32-bit check beside a 256-bit
// key.
//
// Order ID: receipt. Rebills (BILL) have their own receipt, the first
// sale's with "-B<n>" appended; that first receipt is OriginalID. An upsell
// names the receipt of the sale it follows (upsell.upsellOriginalReceipt)
// as OriginalID too, so it is credited like the front-end sale.
//
// Event ID: receipt, transaction type, role and transaction time. INS has
// no notification ID and retries carry a rising attemptCount, which is
// left out; the role keeps a vendor's and an affiliate's notification of
// the same receipt apart.
//
// Session reference: the vendorVariables entry named Config.SessionField
// (a parameter added to the seller's pay link), or a tracking code
// (trackingCodes, the HopLink's tid) written by EncodeTID. Other
// vendorVariables entries and the first other tracking code ("tid") are
// candidate click IDs.
//
// Tests: the "Test" button's notification (receipt "********", shared by
// every test) is ignored with reason "test notification": there is no
// purchase and no visitor, only the proof that the URL and key work. Test
// purchases (TEST_SALE, TEST_BILL, TEST_RFND) are parsed like real ones and
// marked "test notification" in Reason and Problems, as Gumroad's test
// sales are, so a seller can follow one through to its postbacks.
type ClickBank struct {
	cfg    Config
	blocks []cipher.Block
}

// NewClickBank builds a ClickBank INS provider. cfg.Secrets are the
// account's secret keys (Account Settings > My Site > Advanced Tools;
// ClickBank allows up to 16 upper-case letters and digits); cfg.Tolerance
// is unused.
func NewClickBank(cfg Config) (*ClickBank, error) {
	c, err := cfg.normalize("clickbank")
	if err != nil {
		return nil, err
	}
	p := &ClickBank{cfg: c}
	for _, s := range c.Secrets {
		sum := sha1.Sum([]byte(s))
		key := []byte(hex.EncodeToString(sum[:])[:32])
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("webhook: clickbank: %w", err) // unreachable: the key is 32 bytes
		}
		p.blocks = append(p.blocks, b)
	}
	return p, nil
}

// Name returns "clickbank".
func (c *ClickBank) Name() string { return "clickbank" }

// Verify decrypts the notification with each configured secret key and
// accepts it when one yields valid padding and one JSON object.
func (c *ClickBank) Verify(r *Request) error {
	_, err := c.open(r)
	return err
}

// maxClickBankNotification bounds the decoded notification; real ones are
// a few kilobytes.
const maxClickBankNotification = 1 << 20

// open reads the envelope and decrypts the notification.
func (c *ClickBank) open(r *Request) ([]byte, error) {
	if len(r.Body) == 0 {
		return nil, fmt.Errorf("clickbank: %w: empty body", ErrBadRequest)
	}
	notification, iv, err := clickBankEnvelope(r.Body)
	if err != nil {
		return nil, err
	}
	ivBytes, err := base64.StdEncoding.DecodeString(iv)
	if err != nil || len(ivBytes) != aes.BlockSize {
		return nil, fmt.Errorf("clickbank: %w: iv is not 16 bytes of base64", ErrSignature)
	}
	if base64.StdEncoding.DecodedLen(len(notification)) > maxClickBankNotification {
		return nil, fmt.Errorf("clickbank: %w: notification larger than %d bytes", ErrSignature, maxClickBankNotification)
	}
	ct, err := base64.StdEncoding.DecodeString(notification)
	if err != nil {
		return nil, fmt.Errorf("clickbank: %w: notification is not base64", ErrSignature)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("clickbank: %w: notification is not a whole number of AES blocks (%d bytes)", ErrSignature, len(ct))
	}
	pt := make([]byte, len(ct))
	for _, b := range c.blocks {
		cipher.NewCBCDecrypter(b, ivBytes).CryptBlocks(pt, ct)
		if plain, ok := clickBankPlaintext(pt); ok {
			return plain, nil
		}
	}
	return nil, fmt.Errorf("clickbank: %w: notification does not decrypt with the configured secret key", ErrSignature)
}

// clickBankEnvelope reads notification and iv from the JSON body, or from
// form fields, which some relays send instead. ClickBank's own Content-Type
// is undocumented, so the body's shape decides.
func clickBankEnvelope(body []byte) (notification, iv string, err error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		if !gjson.ValidBytes(body) {
			return "", "", fmt.Errorf("clickbank: %w: body is not valid JSON", ErrBadRequest)
		}
		root := gjson.ParseBytes(body)
		n, i := root.Get("notification"), root.Get("iv")
		if n.Type != gjson.String || n.Str == "" {
			return "", "", fmt.Errorf("clickbank: %w: no notification field: not an INS notification of version 6.0 or later", ErrBadRequest)
		}
		if i.Type != gjson.String {
			return "", "", fmt.Errorf("clickbank: %w: no iv field", ErrSignature)
		}
		return n.Str, i.Str, nil
	}
	form, perr := url.ParseQuery(string(body))
	if perr != nil {
		return "", "", fmt.Errorf("clickbank: %w: body is neither JSON nor a form", ErrBadRequest)
	}
	if form.Get("notification") == "" {
		if form.Has("cverify") {
			return "", "", fmt.Errorf("clickbank: %w: legacy form notification (INS 4.0 or older): select version 6.0 or later in ClickBank", ErrBadRequest)
		}
		return "", "", fmt.Errorf("clickbank: %w: no notification field: not an INS notification", ErrBadRequest)
	}
	if !form.Has("iv") {
		return "", "", fmt.Errorf("clickbank: %w: no iv field", ErrSignature)
	}
	return form.Get("notification"), form.Get("iv"), nil
}

// clickBankPlaintext strips the PKCS#7 padding and checks that the rest is
// one JSON object of valid UTF-8 with no top-level key named twice. The
// padding is checked in constant time and the JSON is checked whatever the
// padding, so that the time taken tells little about which step failed.
func clickBankPlaintext(pt []byte) ([]byte, bool) {
	n, padOK := unpadPKCS7(pt)
	plain := pt[:n]
	ok := utf8.Valid(plain) && gjson.ValidBytes(plain)
	if !ok || padOK != 1 {
		return nil, false
	}
	root := gjson.ParseBytes(plain)
	if !root.IsObject() {
		return nil, false
	}
	seen := make(map[string]struct{}, 32)
	unique := true
	root.ForEach(func(k, _ gjson.Result) bool {
		if _, dup := seen[k.Str]; dup {
			unique = false
			return false
		}
		seen[k.Str] = struct{}{}
		return true
	})
	return plain, unique
}

// unpadPKCS7 returns the length of b without its PKCS#7 padding and 1, or
// len(b) and 0 when the padding is invalid, looking at the last block in
// constant time. b is a non-empty whole number of AES blocks.
func unpadPKCS7(b []byte) (int, int) {
	padLen := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, padLen) & subtle.ConstantTimeLessOrEq(padLen, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, padLen)
		same := subtle.ConstantTimeByteEq(b[len(b)-i], byte(padLen))
		good &= 1 ^ (inPad & (1 ^ same))
	}
	return subtle.ConstantTimeSelect(good, len(b)-padLen, len(b)), good
}

// ClickBank transaction types.
const (
	cbSale           = "SALE"
	cbRebill         = "BILL"
	cbRefund         = "RFND"
	cbChargeback     = "CGBK"
	cbInsufficient   = "INSF"
	cbTest           = "TEST"
	cbTestSale       = "TEST_SALE"
	cbTestRebill     = "TEST_BILL"
	cbTestRefund     = "TEST_RFND"
	cbCancelRebill   = "CANCEL-REBILL"
	cbUncancelRebill = "UNCANCEL-REBILL"
	cbCancelTest     = "CANCEL-TEST-REBILL"
	cbUncancelTest   = "UNCANCEL-TEST-REBILL"
)

// Parse reads a decrypted notification. SALE is an approved order; BILL an
// approved rebill (event "rebill") credited like the first sale; RFND a
// refund and CGBK a chargeback (both refunded: the money went back either
// way, and networks reverse a commission the same way); INSF, a payment
// that failed for insufficient funds after it was reported, rejects the
// order. Cancelling or resuming a subscription moves no money and is
// ignored, as are customer updates, subscription changes and abandoned
// carts. Amount: totalOrderAmount in currency, read from the JSON number's
// digits, never through a float; a refund's amount is made positive.
func (c *ClickBank) Parse(r *Request) (Event, error) {
	plain, err := c.open(r)
	if err != nil {
		return Event{}, err
	}
	root := gjson.ParseBytes(plain)
	receipt := strings.TrimSpace(root.Get("receipt").Str)
	txType := strings.TrimSpace(root.Get("transactionType").Str)
	if txType == "" {
		return Event{}, fmt.Errorf("clickbank: %w: no transactionType", ErrMalformed)
	}
	ev := Event{Topic: txType}
	if txType == cbTest || (receipt != "" && strings.Trim(receipt, "*") == "") {
		ev.Reason = "test notification"
		return ev, nil
	}
	if err := checkIPNID("clickbank", "receipt", receipt); err != nil {
		return Event{}, err
	}
	timeText := scalarString(root.Get("transactionTime"))
	ev.ID = receipt + ":" + txType + ":" + root.Get("role").Str + ":" + timeText
	o := order.Order{
		Source:     "webhook:clickbank",
		Event:      c.cfg.Event,
		ID:         receipt,
		EventID:    ev.ID,
		OccurredAt: parseClickBankTime(timeText),
	}
	base, isRebill := rebillBase(receipt)
	test := false
	switch txType {
	case cbTestSale:
		test = true
		fallthrough
	case cbSale:
		ev.Kind, o.Status = KindOrder, order.StatusApproved
		if up := strings.TrimSpace(root.Get("upsell.upsellOriginalReceipt").Str); up != "" && up != receipt && len(up) <= maxIPNID {
			o.OriginalID = up
		}
	case cbTestRebill:
		test = true
		fallthrough
	case cbRebill:
		ev.Kind, o.Status, o.Event = KindOrder, order.StatusApproved, order.EventRebill
		o.OriginalID = base
		if !isRebill {
			o.Problems = append(o.Problems, "rebill receipt has no -B<n> suffix: credited to the sale with the same receipt")
		}
	case cbTestRefund:
		test = true
		fallthrough
	case cbRefund, cbChargeback:
		ev.Kind, o.Status = KindStatus, order.StatusRefunded
		if txType == cbChargeback {
			ev.Reason = "chargeback"
			o.Problems = append(o.Problems, "chargeback")
		}
	case cbInsufficient:
		ev.Kind, o.Status = KindStatus, order.StatusRejected
		ev.Reason = "insufficient funds"
	case cbCancelRebill, cbCancelTest:
		ev.Reason = "subscription cancelled: no money moved"
		return ev, nil
	case cbUncancelRebill, cbUncancelTest:
		ev.Reason = "subscription resumed: no money moved"
		return ev, nil
	default:
		ev.Reason = "transaction type " + quoted(txType) + " not used"
		return ev, nil
	}
	if ev.Kind == KindStatus && isRebill {
		// A refund of a later payment names that payment's receipt: the
		// order it reverses is the rebill.
		o.Event, o.OriginalID = order.EventRebill, base
	}
	setCurrency(&o, root.Get("currency").Str)
	setDecimalAmount(&o, root.Get("totalOrderAmount"), "totalOrderAmount")
	if ev.Kind == KindStatus {
		refundedAmount(&o)
	}
	email := strings.TrimSpace(root.Get("customer.billing.email").Str)
	if email == "" {
		email = strings.TrimSpace(root.Get("customer.shipping.email").Str)
	}
	o.Customer = order.NewCustomer(order.CustomerInfo{Email: email,
		FirstName: root.Get("customer.billing.firstName").Str, LastName: root.Get("customer.billing.lastName").Str,
		City: root.Get("customer.billing.address.city").Str, Region: root.Get("customer.billing.address.state").Str,
		PostalCode: root.Get("customer.billing.address.postalCode").Str, Country: root.Get("customer.billing.address.country").Str})
	c.tracking(&o, root)
	if test {
		ev.Reason = "test notification"
		o.Problems = append(o.Problems, "test notification")
	}
	ev.Order = o
	return ev, nil
}

// tracking reads the session reference and candidate click IDs from
// vendorVariables and trackingCodes.
func (c *ClickBank) tracking(o *order.Order, root gjson.Result) {
	vars := root.Get("vendorVariables")
	if ref := strings.TrimSpace(objectString(vars, c.cfg.SessionField)); ref != "" {
		o.SessionRef = ref
	}
	for k, v := range metadataClickIDs(vars, c.cfg.SessionField) {
		addClickID(o, k, v)
	}
	root.Get("trackingCodes").ForEach(func(_, code gjson.Result) bool {
		v := strings.TrimSpace(code.Str)
		if ref, ok := decodeTID(v); ok {
			if o.SessionRef == "" {
				o.SessionRef = ref
			}
			return true
		}
		addClickID(o, "tid", v)
		return true
	})
}

// clickBankTimeLayouts are the transactionTime layouts seen in INS: RFC 3339
// (version 6.0) and ISO 8601 basic format (version 7.0 samples).
var clickBankTimeLayouts = []string{time.RFC3339, "20060102T150405-0700", "2006-01-02T15:04:05-0700"}

func parseClickBankTime(s string) time.Time {
	for _, layout := range clickBankTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Interface guard.
var _ Provider = (*ClickBank)(nil)
