package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// maxTries bounds how often one call runs after serialization failures and
// deadlocks, which PostgreSQL resolves by failing one of the transactions.
const maxTries = 5

// fail wraps err, the outcome of the operation op: errors that mean the
// database cannot serve now also wrap store.ErrUnavailable.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) && !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unavailable reports whether err says the database cannot serve now: it
// cannot be reached, the connection broke, it timed out, is shutting down
// or starting, is out of disk or connections, or is read-only.
func unavailable(err error) bool {
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now
			"57014", // query_canceled: statement_timeout
			"25006", // read_only_sql_transaction
			"3D000": // invalid_catalog_name: the database is not there (yet)
			return true
		}
		// Class 08: connection exceptions; class 53: insufficient
		// resources (disk full, out of memory, too many connections).
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53")
	}
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "closed pool")
}

// retryable reports whether err is a serialization failure or a deadlock:
// the transaction was rolled back and running it again may succeed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// run runs fn, again after a serialization failure or deadlock (up to
// maxTries times in all), and wraps its error with op.
func (s *Store) run(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if err := s.usable(); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	for try := 1; ; try++ {
		err := fn(ctx)
		if err == nil || try == maxTries || !retryable(err) {
			return s.fail(op, err)
		}
		// Spread the retries of transactions that failed together.
		wait := time.Duration(try) * time.Duration(2+rand.IntN(8)) * time.Millisecond
		select {
		case <-ctx.Done():
			return s.fail(op, err)
		case <-time.After(wait):
		}
	}
}

// inTx runs fn in a transaction (read committed), committed when fn returns
// nil and rolled back otherwise, and retried as run does.
func (s *Store) inTx(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return s.run(ctx, op, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
	})
}
