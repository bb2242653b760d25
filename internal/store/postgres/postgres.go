// Package postgres is caddy-postback's storage engine for Caddy clusters:
// several Caddy nodes share sessions, the ledger and the delivery queue in
// one PostgreSQL database, through pgx/v5 and its pool.
//
// The tables live in a schema of their own (Options.Schema), created and
// migrated at start under an advisory lock, so that nodes starting together
// apply each migration once and the tracker can share a database with other
// applications. The SQL is plain (no PL/pgSQL, extensions or LISTEN/NOTIFY)
// so that PostgreSQL-compatible databases remain possible.
//
// Open never fails because the database is down: the store starts degraded,
// every call returns an error wrapping store.ErrUnavailable, and a
// background goroutine applies the migrations as soon as the database
// answers (sooner when calls keep arriving). Later outages need nothing
// special: the pool replaces broken connections, and each call's error says
// whether the database could be reached.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// Options configure a PostgreSQL store.
type Options struct {
	// DSN is the database's connection string: libpq keyword/value
	// ("host=db user=caddy dbname=tracker") or a URL
	// ("postgres://caddy@db/tracker"). Required.
	DSN string
	// Schema is the PostgreSQL schema that holds the engine's tables; it is
	// created when absent. Nodes that share clicks and the queue use the
	// same schema. Default "postback".
	Schema string
	// MaxConns bounds the connection pool. Default 10.
	MaxConns int32
	// StatementTimeout bounds every statement on the server (PostgreSQL's
	// statement_timeout) unless the DSN sets one. Default 10s.
	StatementTimeout time.Duration
	// ConnectTimeout bounds one connection attempt unless the DSN sets
	// connect_timeout. Default 5s.
	ConnectTimeout time.Duration
	// SweepInterval is how often expired rows are deleted. Default 1m.
	SweepInterval time.Duration
	// PurgeEvery is how soon after an erasure the tables it changed are
	// vacuumed (see Purge). Default 1h.
	PurgeEvery time.Duration
	// SweepBatch is how many rows one deleting statement removes, so that
	// a sweep never holds many locks or writes a large transaction.
	// Default 1,000.
	SweepBatch int
	// Logger receives the engine's log lines (migrations, outages,
	// recoveries, sweeps). Default: none.
	Logger *zap.Logger
	// Now is the wall clock the sweeper uses to remove what expired; calls
	// that decide by time take it from their caller. Default time.Now.
	Now func() time.Time
}

// DefaultSchema is the schema of the engine's tables when Options.Schema is
// empty.
const DefaultSchema = "postback"

// schemaName is what Options.Schema may be: a plain PostgreSQL identifier,
// so that it needs no quoting in an operator's psql session.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o *Options) setDefaults() {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.PurgeEvery <= 0 {
		o.PurgeEvery = time.Hour
	}
	if o.SweepBatch <= 0 {
		o.SweepBatch = 1000
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the PostgreSQL engine. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	opts   Options
	log    *zap.Logger
	schema string // quoted

	// ready is set once the migrations are applied; until then every call
	// fails with notReady's error.
	ready    atomic.Bool
	notReady atomic.Pointer[error]
	// kick asks the background goroutine to try the migrations now.
	kick chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	// life is canceled by Close: it stops the background goroutine and
	// the statement it runs; done is closed when the goroutine has ended.
	life    context.Context
	endLife context.CancelFunc
	done    chan struct{}
	// erased is set by an erasure and cleared by the purge that follows.
	erased atomic.Bool
}

// Open connects to the database described by o and returns the store. It
// fails only on a bad configuration; when the database cannot be reached or
// migrated, the store starts degraded and keeps trying in the background
// (see the package documentation). ctx bounds the first attempt.
func Open(ctx context.Context, o Options) (*Store, error) {
	o.setDefaults()
	if !schemaName.MatchString(o.Schema) {
		return nil, fmt.Errorf("postgres: schema %q: want lower-case letters, digits and underscores, not starting with a digit", o.Schema)
	}
	if o.DSN == "" {
		return nil, errors.New("postgres: no DSN: a connection string is required")
	}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// The parser's message may quote the connection string, and with it
		// a password: say only that it could not be read.
		return nil, errors.New("postgres: the DSN is not a valid libpq connection string or URL")
	}
	cfg.MaxConns = o.MaxConns
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = o.ConnectTimeout
	}
	if _, set := cc.RuntimeParams["statement_timeout"]; !set {
		cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	if _, set := cc.RuntimeParams["application_name"]; !set {
		cc.RuntimeParams["application_name"] = "caddy-postback"
	}
	// The pool connects on first use (MinConns is 0), so this does not
	// fail when the database is down.
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: creating the pool: %w", err)
	}
	s := &Store{
		pool:   pool,
		opts:   o,
		log:    o.Logger,
		schema: pgx.Identifier{o.Schema}.Sanitize(),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	s.life, s.endLife = context.WithCancel(context.Background())
	first, cancel := context.WithTimeout(ctx, o.ConnectTimeout+o.StatementTimeout)
	err = s.migrate(first)
	cancel()
	if err != nil {
		s.setNotReady(err)
		s.log.Error("postgres storage unavailable at start; tracking resumes when the database answers",
			zap.String("schema", o.Schema), zap.Error(err))
	} else {
		s.ready.Store(true)
	}
	go s.background()
	return s, nil
}

// sql returns query with the configured schema in place of {s}.
func (s *Store) sql(query string) string {
	return strings.ReplaceAll(query, "{s}", s.schema)
}

// setNotReady keeps why the schema could not be migrated, for the calls
// that fail until it is.
func (s *Store) setNotReady(err error) {
	if !errors.Is(err, store.ErrUnavailable) {
		err = fmt.Errorf("%w: the schema could not be migrated: %w", store.ErrUnavailable, err)
	}
	s.notReady.Store(&err)
}

// usable returns nil when calls may reach the database, or why not.
func (s *Store) usable() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: store closed", store.ErrUnavailable)
	}
	if s.ready.Load() {
		return nil
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	if p := s.notReady.Load(); p != nil {
		return *p
	}
	return fmt.Errorf("%w: schema not migrated yet", store.ErrUnavailable)
}

// Ping reports whether the database answers and accepts writes.
func (s *Store) Ping(ctx context.Context) error {
	return s.run(ctx, "ping", func(ctx context.Context) error {
		var readOnly string
		if err := s.pool.QueryRow(ctx, "SELECT current_setting('transaction_read_only')").Scan(&readOnly); err != nil {
			return err
		}
		if readOnly == "on" {
			return fmt.Errorf("%w: the database is read-only", store.ErrUnavailable)
		}
		return nil
	})
}

// Close stops the background work and closes the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.endLife()
		<-s.done
		s.pool.Close()
	})
	return nil
}

// background applies the migrations if Open could not, then sweeps
// expired rows every SweepInterval, until Close.
func (s *Store) background() {
	defer close(s.done)
	if !s.ready.Load() && !s.migrateUntilDone() {
		return
	}
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	purge := time.NewTicker(s.opts.PurgeEvery)
	defer purge.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-t.C:
			s.sweep()
		case <-purge.C:
			if s.erased.Load() {
				if err := s.Purge(s.life); err != nil {
					s.log.Warn("vacuuming after an erasure; trying again at the next purge", zap.Error(err))
				}
			}
		}
	}
}

// purgedTables hold what an erasure deletes or rewrites.
var purgedTables = []string{"touchpoints", "sessions", "conversions", "deliveries", "orders"}

// Purge vacuums the tables an erasure changed, so that PostgreSQL reclaims
// the dead versions of the erased rows (which stay in the table's pages,
// readable by nobody, until a vacuum removes them). It runs by itself
// within PurgeEvery of an erasure. The freed space is reused by later rows;
// VACUUM FULL, which rewrites the tables under an exclusive lock, is left
// to the operator.
func (s *Store) Purge(ctx context.Context) error {
	s.erased.Store(false)
	for _, t := range purgedTables {
		err := s.run(ctx, "vacuuming "+t, func(ctx context.Context) error {
			_, err := s.pool.Exec(ctx, s.sql("VACUUM {s}."+t))
			return err
		})
		if err != nil {
			s.erased.Store(true)
			return err
		}
	}
	return nil
}

// migrateUntilDone retries the migrations with a growing delay (1s to 30s),
// sooner when a call finds the store not ready, but never more than once a
// second; it logs a failure at most every 30s. It reports false when the
// store was closed first.
func (s *Store) migrateUntilDone() bool {
	const minDelay, maxDelay = time.Second, 30 * time.Second
	delay := minDelay
	var logged time.Time // a failure is logged at most every maxDelay
	for {
		// Wait at least minDelay, then until the delay ends or a call asks.
		select {
		case <-s.life.Done():
			return false
		case <-time.After(minDelay):
		}
		select {
		case <-s.life.Done():
			return false
		case <-time.After(delay - minDelay):
		case <-s.kick:
		}
		ctx, cancel := context.WithTimeout(s.life, s.opts.ConnectTimeout+s.opts.StatementTimeout)
		err := s.migrate(ctx)
		cancel()
		if err == nil {
			s.ready.Store(true)
			s.log.Info("postgres storage available; tracking resumed", zap.String("schema", s.opts.Schema))
			return true
		}
		s.setNotReady(err)
		delay = min(delay*2, maxDelay)
		if time.Since(logged) >= maxDelay {
			logged = time.Now()
			s.log.Warn("postgres storage still unavailable; retrying", zap.String("next_try_within", delay.String()), zap.Error(err))
		}
	}
}

// Interface guard.
var _ store.Store = (*Store)(nil)
