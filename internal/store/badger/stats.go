package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/caddy-postback/caddy-postback/internal/store"
)

// statRetention keeps hourly counters: longer than the dashboard's
// longest period.
const statRetention = 400 * 24 * time.Hour

func statKey(s *store.Stat) []byte {
	return key(pStat, string(appendTime(nil, s.Hour.UTC().Truncate(time.Hour))), s.Metric, s.Network, s.Event, s.Currency, s.Result)
}

// AddStats implements store.Stats: each counter is read, added to and
// written back in one transaction (Badger retries it on a conflict).
func (s *Store) AddStats(_ context.Context, stats []store.Stat) error {
	return s.update(func(txn *badger.Txn) error {
		for i := range stats {
			st := stats[i]
			st.Hour = st.Hour.UTC().Truncate(time.Hour)
			k := statKey(&st)
			var cur store.Stat
			err := getJSON(txn, k, time.Time{}, &cur)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			st.Count += cur.Count
			st.Sum += cur.Sum
			if err := setJSON(txn, k, st.Hour.Add(statRetention), &st); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stats implements store.Stats: a scan of the hours in range.
func (s *Store) Stats(_ context.Context, since, until time.Time) ([]store.Stat, error) {
	var out []store.Stat
	start := key(pStat, string(appendTime(nil, since.UTC().Truncate(time.Hour))))
	end := key(pStat, string(appendTime(nil, until.UTC())))
	err := s.view(func(txn *badger.Txn) error {
		return scan(txn, []byte(pStat), start, false, false, func(k, v []byte) error {
			if string(k) >= string(end) {
				return errStop
			}
			p, _ := decode(v, time.Time{})
			var st store.Stat
			if err := json.Unmarshal(p, &st); err != nil {
				return fmt.Errorf("decoding %q: %w", k, err)
			}
			if !st.Hour.Before(until) {
				return errStop
			}
			out = append(out, st)
			return nil
		})
	})
	return out, err
}
