package module

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// envPlaceholder matches {env.NAME}, Caddy's environment placeholder.
var envPlaceholder = regexp.MustCompile(`\{env\.([^{}]*)\}`)

// minSecretLen is the length from which a value read from the environment
// is treated as a secret and masked wherever it would be shown. Shorter
// values (an account number such as nid=123) would mask unrelated digits
// all over the delivery log.
const minSecretLen = 8

// envExpander replaces {env.NAME} placeholders in configuration values. An
// unset or empty variable is an error that names it: a literal
// "{env.STRIPE_SECRET}" must never become a signing key or reach a network.
// It remembers the values it read that are long enough to be secrets.
type envExpander struct {
	secrets []string
	// standIn, when set, replaces every placeholder without reading the
	// environment (a configuration checked before it is known); standInUsed
	// records that one was.
	standIn     string
	standInUsed bool
}

// expand replaces the placeholders in s; what names the setting in errors.
func (e *envExpander) expand(what, s string) (string, error) {
	var missing []string
	out := envPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		if e.standIn != "" {
			e.standInUsed = true
			return e.standIn
		}
		name := envPlaceholder.FindStringSubmatch(m)[1]
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			missing = append(missing, name)
			return m
		}
		if len(v) >= minSecretLen {
			e.secrets = append(e.secrets, v)
		}
		return v
	})
	if len(missing) > 0 {
		state := "is not set"
		if len(missing) > 1 {
			state = "are not set"
		}
		return "", fmt.Errorf("%s: environment variable %s %s (or empty): set it before starting Caddy", what, strings.Join(missing, ", "), state)
	}
	return out, nil
}
