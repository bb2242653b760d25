package module

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/caddy-postback/caddy-postback/internal/store"
	pgstore "github.com/caddy-postback/caddy-postback/internal/store/postgres"
)

func init() {
	caddy.RegisterModule(Postgres{})
}

// Postgres is the storage engine for several Caddy nodes that share clicks,
// orders and the delivery queue (postback.storage.postgres): one PostgreSQL
// database, reached through a pgx connection pool.
type Postgres struct {
	// DSN is the connection string, as a libpq keyword/value string or a
	// URL; {env.*} placeholders are replaced at load (keep the password
	// there). Required.
	DSN string `json:"dsn,omitempty"`
	// Schema holds the tables; every node of a cluster names the same one.
	// Default: "postback".
	Schema string `json:"schema,omitempty"`
	// MaxConns bounds the connection pool of this node. Default: 10.
	MaxConns int32 `json:"max_conns,omitempty"`
	// StatementTimeout bounds each statement on the server, unless the DSN
	// sets statement_timeout. Default: 10s.
	StatementTimeout caddy.Duration `json:"statement_timeout,omitempty"`
	// ConnectTimeout bounds one connection attempt, unless the DSN sets
	// connect_timeout. Default: 5s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`

	dsn    string
	secret string
}

// CaddyModule returns the Caddy module information.
func (Postgres) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "postback.storage.postgres", New: func() caddy.Module { return new(Postgres) }}
}

// Provision reads the connection string.
func (p *Postgres) Provision(caddy.Context) error {
	env := &envExpander{}
	dsn, err := env.expand("storage postgres dsn", p.DSN)
	if err != nil {
		return err
	}
	if dsn == "" {
		return fmt.Errorf("storage postgres: a dsn is required (postgres://user:password@host/db)")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("storage postgres: the dsn does not parse as a PostgreSQL connection string")
	}
	p.dsn, p.secret = dsn, cfg.Password
	return nil
}

// PoolKey implements StorageEngine: one store per database and schema.
func (p *Postgres) PoolKey() string { return "postgres:" + p.dsn + "#" + p.Schema }

// Describe implements StorageEngine: the server and database, never the
// password.
func (p *Postgres) Describe() string {
	cfg, err := pgx.ParseConfig(p.dsn)
	if err != nil {
		return "postgres"
	}
	schema := p.Schema
	if schema == "" {
		schema = pgstore.DefaultSchema
	}
	u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Path: "/" + cfg.Database}
	if cfg.User != "" {
		u.User = url.User(cfg.User)
	}
	return "postgres " + strings.TrimPrefix(u.String(), "postgres://") + " schema " + schema
}

// Secrets returns the password of the connection string, to be masked
// wherever it could be shown.
func (p *Postgres) Secrets() []string { return []string{p.secret} }

// OpenStore implements StorageEngine.
func (p *Postgres) OpenStore(logger *zap.Logger) (store.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return pgstore.Open(ctx, pgstore.Options{DSN: p.dsn, Schema: p.Schema, MaxConns: p.MaxConns,
		StatementTimeout: time.Duration(p.StatementTimeout), ConnectTimeout: time.Duration(p.ConnectTimeout), Logger: logger})
}

// Interface guards
var (
	_ StorageEngine     = (*Postgres)(nil)
	_ caddy.Provisioner = (*Postgres)(nil)
)
