package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

const logWebhook = `
INSERT INTO {s}.webhooks (id, provider, result, expires_at, entry) VALUES ($1, $2, $3, $4, $5)`

// LogWebhook adds an entry to the webhook log.
func (s *Store) LogWebhook(ctx context.Context, e record.WebhookEntry) error {
	if e.ID == "" {
		e.ID = record.NewID(e.ReceivedAt)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("postgres: encoding a webhook entry: %w", err)
	}
	return s.run(ctx, "logging a webhook", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.sql(logWebhook), e.ID, e.Provider, e.Result, e.ExpiresAt, body)
		return err
	})
}

const readWebhook = `SELECT entry FROM {s}.webhooks WHERE id = $1 AND expires_at > $2`

// Webhook returns one entry of the webhook log.
func (s *Store) Webhook(ctx context.Context, id string, now time.Time) (*record.WebhookEntry, error) {
	var e record.WebhookEntry
	err := s.run(ctx, "reading a webhook entry", func(ctx context.Context) error {
		var raw []byte
		err := s.pool.QueryRow(ctx, s.sql(readWebhook), id, now).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return decodeWebhook(raw, &e)
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

func decodeWebhook(raw []byte, e *record.WebhookEntry) error {
	if err := json.Unmarshal(raw, e); err != nil {
		return fmt.Errorf("decoding a webhook entry: %w", err)
	}
	return nil
}

// WebhookLog lists the webhook log, newest first.
func (s *Store) WebhookLog(ctx context.Context, q store.WebhookQuery, now time.Time) ([]record.WebhookEntry, string, error) {
	w := where{}
	w.add("expires_at > ?", now)
	if q.Provider != "" {
		w.add("provider = ?", q.Provider)
	}
	if q.Result != "" {
		w.add("result = ?", q.Result)
	}
	var out []record.WebhookEntry
	var next string
	err := s.run(ctx, "listing webhooks", func(ctx context.Context) error {
		var err error
		out, next, err = listPage(ctx, s, "SELECT entry FROM {s}.webhooks", w, q.Cursor, q.Limit,
			func(rows pgx.Rows) (record.WebhookEntry, string, error) {
				var e record.WebhookEntry
				var raw []byte
				if err := rows.Scan(&raw); err != nil {
					return e, "", err
				}
				err := decodeWebhook(raw, &e)
				return e, e.ID, err
			})
		return err
	})
	return out, next, err
}
