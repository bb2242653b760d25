package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConstructorsValidate(t *testing.T) {
	ctors := map[string]func(Config) error{
		"stripe":       func(c Config) error { _, err := NewStripe(c); return err },
		"shopify":      func(c Config) error { _, err := NewShopify(c); return err },
		"woocommerce":  func(c Config) error { _, err := NewWooCommerce(c); return err },
		"paddle":       func(c Config) error { _, err := NewPaddle(c); return err },
		"lemonsqueezy": func(c Config) error { _, err := NewLemonSqueezy(c); return err },
		"gumroad":      func(c Config) error { _, err := NewGumroad(c); return err },
		"clickbank":    func(c Config) error { _, err := NewClickBank(c); return err },
		"jvzoo":        func(c Config) error { _, err := NewJVZoo(c); return err },
		"warriorplus":  func(c Config) error { _, err := NewWarriorPlus(c); return err },
	}
	bad := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"no secret", Config{}, "no secret"},
		{"empty secret", Config{Secrets: []string{"goodsecret_value_1", ""}}, "secret #2: empty"},
		{"secret with newline", Config{Secrets: []string{"goodsecret_value_1\n"}}, "white space"},
		{"negative tolerance", Config{Secrets: []string{"goodsecret_value_1"}, Tolerance: -time.Second}, "negative tolerance"},
	}
	for name, ctor := range ctors {
		for _, b := range bad {
			t.Run(name+"/"+b.name, func(t *testing.T) {
				err := ctor(b.cfg)
				if err == nil || !strings.Contains(err.Error(), b.msg) || !strings.HasPrefix(err.Error(), "webhook: "+name+": ") {
					t.Fatalf("error = %v, want one containing %q", err, b.msg)
				}
				if strings.Contains(err.Error(), "goodsecret") {
					t.Fatalf("error leaks a secret: %v", err)
				}
			})
		}
		t.Run(name+"/ok", func(t *testing.T) {
			if err := ctor(Config{Secrets: []string{"goodsecret_value_1"}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s, err := NewStripe(Config{Secrets: []string{"whsec_x"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Tolerance != 5*time.Minute || s.cfg.SessionField != "pb_session" || s.cfg.Event != "purchase" {
		t.Fatalf("defaults %+v", s.cfg)
	}
}

func TestGumroadTokenRules(t *testing.T) {
	for _, tok := range []string{"short", "has/slash_1234567890", "has space 1234567890", "percent%2F1234567890"} {
		if _, err := NewGumroad(Config{Secrets: []string{tok}}); err == nil {
			t.Errorf("token %q accepted", tok)
		}
	}
}

func TestGenericConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *GenericConfig)
		msg  string
	}{
		{"no secret and not insecure", func(c *GenericConfig) { c.Secrets = nil }, "set insecure"},
		{"insecure with secrets", func(c *GenericConfig) { c.Insecure = true }, "insecure endpoint with secrets"},
		{"no header", func(c *GenericConfig) { c.Header = "" }, "no signature header"},
		{"bad algorithm", func(c *GenericConfig) { c.Algorithm = "md5" }, "algorithm"},
		{"bad encoding", func(c *GenericConfig) { c.Encoding = "base32" }, "encoding"},
		{"ts without header", func(c *GenericConfig) { c.SignedPayload = "{ts}.{body}" }, "no timestamp header"},
		{"header without ts", func(c *GenericConfig) { c.TimestampHeader, c.SignedPayload = "X-T", "{body}" }, "has no {ts}"},
		{"no body placeholder", func(c *GenericConfig) { c.SignedPayload = "x" }, "{body} must appear"},
		{"unknown placeholder", func(c *GenericConfig) { c.SignedPayload = "{nonce}.{body}" }, "unknown placeholder"},
		{"no order path", func(c *GenericConfig) { c.OrderIDPath = "" }, "no order ID path"},
		{"bad status map", func(c *GenericConfig) { c.StatusMap = map[string]string{"x": "done"} }, "status map"},
		{"bad name", func(c *GenericConfig) { c.Name = "My Shop" }, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := genericCfg()
			tt.edit(&c)
			_, err := NewGeneric(c)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error = %v, want one containing %q", err, tt.msg)
			}
		})
	}
}

func TestNewByName(t *testing.T) {
	for _, n := range Names() {
		p, err := New(n, Config{Secrets: []string{"goodsecret_value_1"}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Name() != n {
			t.Errorf("New(%q).Name() = %q", n, p.Name())
		}
	}
	for alias, want := range map[string]string{"WOO": "woocommerce", "lemon-squeezy": "lemonsqueezy", "warrior_plus": "warriorplus"} {
		if p, err := New(alias, Config{Secrets: []string{"goodsecret_value_1"}}); err != nil || p.Name() != want {
			t.Errorf("New(%q) = %v, %v; want %s", alias, p, err, want)
		}
	}
	// An unknown provider's error lists every provider a webhook can
	// name, generic and the IPN receivers included, and suggests the
	// nearest.
	for name, hint := range map[string]string{"paypal": "", "strpe": "stripe", "jvzo": "jvzoo", "generc": "generic"} {
		_, err := New(name, Config{Secrets: []string{"x"}})
		var unknown *UnknownProviderError
		if !errors.As(err, &unknown) {
			t.Fatalf("New(%q): %v, want an UnknownProviderError", name, err)
		}
		for _, p := range []string{"generic", "clickbank", "jvzoo", "warriorplus", "stripe"} {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("New(%q): %v does not list %s", name, err, p)
			}
		}
		if got := strings.Contains(err.Error(), "did you mean `"+hint+"`?"); got != (hint != "") {
			t.Errorf("New(%q): %v; want suggestion %q", name, err, hint)
		}
	}
	if _, err := New("generic", Config{Secrets: []string{"x"}}); err == nil {
		t.Error("New built the generic provider, which NewGeneric builds")
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindOrder: "order", KindStatus: "status", KindIgnore: "ignore", Kind(9): "kind(9)"} {
		if k.String() != want {
			t.Errorf("%d: %q", int(k), k.String())
		}
	}
	var ev Event
	if ev.Kind != KindIgnore {
		t.Fatal("zero Event must be ignored, never an order")
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	errs := []error{ErrSignature, ErrMalformed, ErrBadRequest}
	for i, a := range errs {
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Fatalf("%v is %v", a, b)
			}
		}
	}
}
