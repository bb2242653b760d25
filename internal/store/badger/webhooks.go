package badger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/caddy-postback/caddy-postback/internal/record"
	"github.com/caddy-postback/caddy-postback/internal/store"
)

// LogWebhook implements store.Webhooks.
func (s *Store) LogWebhook(_ context.Context, e record.WebhookEntry) error {
	return s.update(func(txn *badger.Txn) error { return setJSON(txn, key(pWebhook, e.ID), e.ExpiresAt, &e) })
}

// Webhook implements store.Webhooks.
func (s *Store) Webhook(_ context.Context, id string, now time.Time) (*record.WebhookEntry, error) {
	var e record.WebhookEntry
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, key(pWebhook, id), now, &e) }); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", id, err)
	}
	return &e, nil
}

// WebhookLog implements store.Webhooks.
func (s *Store) WebhookLog(_ context.Context, q store.WebhookQuery, now time.Time) ([]record.WebhookEntry, string, error) {
	var start []byte
	if q.Cursor != "" {
		start = exclusiveBefore(key(pWebhook, q.Cursor))
	}
	return page(s, []byte(pWebhook), start, nil, q.Limit, now, func(e *record.WebhookEntry) bool {
		return (q.Provider == "" || e.Provider == q.Provider) && (q.Result == "" || e.Result == q.Result)
	}, func(e *record.WebhookEntry) string { return e.ID })
}

// MetaGetOrCreate implements store.Meta.
func (s *Store) MetaGetOrCreate(_ context.Context, name string, create func() []byte) ([]byte, error) {
	var out []byte
	err := s.update(func(txn *badger.Txn) error {
		v, err := get(txn, key(pMeta, name), time.Time{})
		if err == nil {
			out = v
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		out = create()
		return set(txn, key(pMeta, name), time.Time{}, out)
	})
	return out, err
}
