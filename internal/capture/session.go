package capture

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Sessions creates and extends visitors' sessions in the store.
type Sessions struct {
	Store store.Sessions
	// MaxTouchpoints caps a session's touchpoints; the oldest go first.
	MaxTouchpoints int
}

// DefaultMaxTouchpoints is the per-session touchpoint cap.
const DefaultMaxTouchpoints = 20

// idBytes is the randomness of a session ID: 128 bits, nothing else (the
// cookie tells nothing about its visitor, not even when the session began).
const (
	idBytes = 16
	idLen   = 22 // base64url without padding
)

// NewSessionID returns a new random session ID of 22 characters of
// [A-Za-z0-9_-].
func NewSessionID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Capture records a landing click's touchpoints in the visitor's session:
// the session with sessionID, when there is one that is still live, or a
// new one. It returns the session's ID and whether it is new (and needs
// its cookie). A repeat of a click the session has moves it to the end; a
// click writes only its own touchpoints, however many the session holds.
func (s *Sessions) Capture(ctx context.Context, sessionID string, tps []record.Touchpoint, gaClientID string, now time.Time) (string, bool, error) {
	if sessionID != "" {
		limit := s.MaxTouchpoints
		if limit <= 0 {
			limit = DefaultMaxTouchpoints
		}
		err := s.Store.AddTouchpoints(ctx, sessionID, tps, gaClientID, limit, now)
		if err == nil {
			return sessionID, false, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", false, fmt.Errorf("adding to session: %w", err)
		}
		// Expired or erased: the visitor starts a new session, with a new
		// cookie; the old one is not revived.
	}
	if len(tps) > s.MaxTouchpoints && s.MaxTouchpoints > 0 {
		tps = tps[len(tps)-s.MaxTouchpoints:]
	}
	for range 3 {
		id := NewSessionID()
		err := s.Store.CreateSession(ctx, &record.Session{ID: id, CreatedAt: now, Touchpoints: tps, GAClientID: gaClientID})
		if errors.Is(err, store.ErrExists) {
			continue // 128 random bits: only a broken random source gets here
		}
		if err != nil {
			return "", false, fmt.Errorf("creating session: %w", err)
		}
		return id, true, nil
	}
	return "", false, errors.New("creating session: no free session ID")
}

// Missing returns the touchpoints a live session does not hold yet (by
// network and click ID), and whether the session exists at all; all of
// them when it does not (it expired or was erased).
func (s *Sessions) Missing(ctx context.Context, sessionID string, tps []record.Touchpoint, now time.Time) ([]record.Touchpoint, bool, error) {
	sess, err := s.Store.Session(ctx, sessionID, now)
	if errors.Is(err, store.ErrNotFound) {
		return tps, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading session: %w", err)
	}
	var out []record.Touchpoint
	for _, tp := range tps {
		held := false
		for _, have := range sess.Touchpoints {
			if have.Network == tp.Network && have.ClickID == tp.ClickID {
				held = true
				break
			}
		}
		if !held {
			out = append(out, tp)
		}
	}
	return out, true, nil
}

// Field caps of a touchpoint: a click writes at most these, whatever the
// landing request carries. The click ID and sub IDs are capped by the
// recognizer (max_click_id_length).
const (
	MaxLandingURL = 2048
	MaxReferrer   = 1024
	MaxUserAgent  = 512
)

// Landed describes a landing request, for NewTouchpoints.
type Landed struct {
	At         time.Time
	LandingURL string
	Referrer   string
	ClientIP   string
	UserAgent  string
	Consent    *record.Consent
}

// NewTouchpoints makes the touchpoints of a landing request's click IDs,
// with the request's descriptions capped in size.
func (r *Recognizer) NewTouchpoints(l Landing, req Landed) []record.Touchpoint {
	tps := make([]record.Touchpoint, 0, len(l.Hits))
	for _, hit := range l.Hits {
		n := r.networks[hit.Network]
		tps = append(tps, record.Touchpoint{
			Network: n.Name, Param: hit.Param, ClickID: hit.ClickID,
			CapturedAt: req.At, ExpiresAt: req.At.Add(n.Window),
			LandingURL: truncate(req.LandingURL, MaxLandingURL), Referrer: truncate(req.Referrer, MaxReferrer),
			ClientIP: req.ClientIP, UserAgent: truncate(req.UserAgent, MaxUserAgent), Subs: l.Subs, Consent: req.Consent,
		})
	}
	return tps
}

// truncate cuts s to at most n bytes, at a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// TruncateIP zeroes the host part of an address for privacy: IPv4 to /24,
// IPv6 to /48. Anything unparseable is dropped.
func TruncateIP(ip string) string {
	p := net.ParseIP(ip)
	if p == nil {
		return ""
	}
	if v4 := p.To4(); v4 != nil {
		return v4.Mask(net.CIDRMask(24, 32)).String()
	}
	return p.Mask(net.CIDRMask(48, 128)).String()
}
