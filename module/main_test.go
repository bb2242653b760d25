package module

import (
	"os"
	"testing"

	"github.com/caddy-postback/caddy-postback/internal/store/postgres/pgtest"
)

// TestMain stops the throwaway PostgreSQL server and removes the stores
// that benchmarks kept for the whole process.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	for _, dir := range processDirs {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}
