package postback

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/order"
	"github.com/caddy-postback/caddy-postback/internal/record"
)

// customerFor returns the hashed customer identifiers a conversion may send
// to an ad platform: none when the order has none, and none when the
// visitor denied Google's ad_user_data signal at the click, which is the
// consent to send user data for advertising.
func customerFor(c *record.Postback) *order.Customer {
	if c.Order.Customer == nil {
		return nil
	}
	if cs := c.Touchpoint.Consent; cs != nil && cs.AdUserData == record.Denied {
		return nil
	}
	return c.Order.Customer
}

// visitorID is a stable pseudonymous ID of the credited visitor: the same
// for a sale, its rebills, refunds and cancellation, since all of them are
// credited through the same click. Platforms that track a customer's
// lifetime (recurring-commission programs) and analytics tools that count
// visitors key on it; it reveals neither the click ID nor the order.
func visitorID(c *record.Postback) string {
	tp := &c.Touchpoint
	seed := "click\x00" + tp.Network + "\x00" + tp.ClickID + "\x00" + strconv.FormatInt(tp.CapturedAt.UnixNano(), 10)
	if tp.ClickID == "" {
		orig := c.Order.OriginalID
		if orig == "" {
			orig = c.Order.ID
		}
		seed = "order\x00" + c.Network + "\x00" + orig
	}
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:16])
}

// eventUUID is EventID's conversion as a UUID (version 8, RFC 9562's
// custom layout), for platforms that take an event UUID and drop repeats of
// it.
func eventUUID(c *record.Postback) string {
	sum := sha256.Sum256([]byte(c.Network + "\x00" + c.Order.Event + "\x00" + c.Order.ID))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// clock returns cfg.Now, or time.Now.
func clock(cfg Config) func() time.Time {
	if cfg.Now != nil {
		return cfg.Now
	}
	return time.Now
}

// notOlderThan refuses an event that happened longer ago than a platform
// accepts, at send time, so the delivery is a dead letter with a reason
// instead of a rejection the platform would explain less well.
func notOlderThan(preset string, c *record.Postback, now time.Time, max time.Duration, limit string) error {
	if age := now.Sub(eventTime(c)); age > max {
		return fmt.Errorf("%w: %s takes events up to %s old; this one happened %s ago",
			ErrRejected, preset, limit, age.Round(time.Minute))
	}
	return nil
}

// isHTTPURL reports whether u is an absolute http(s) URL, as the platforms
// require of a page URL.
func isHTTPURL(u string) bool {
	return strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
}

// defaultClientTimeout bounds a preset's own requests when Config.Client is
// not set.
const defaultClientTimeout = 30 * time.Second

// presetClient returns the client a preset makes its own requests with:
// cfg.Client, or a client with a timeout, either way never following a
// redirect: the caller gets the 3xx answer itself (a redirect could lead
// credentials to another host, and following one is how a Referer header
// would be sent).
func presetClient(cfg Config) *http.Client {
	c := &http.Client{Timeout: defaultClientTimeout}
	if cfg.Client != nil {
		cp := *cfg.Client
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}
