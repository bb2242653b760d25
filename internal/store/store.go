// Package store is caddy-postback's storage port: a small transactional
// key-value interface with TTLs, and its Badger implementation. Every record
// the tracker keeps (sessions, conversions, deliveries) is written through
// it, so a second engine only has to implement Store and Txn.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by Txn.Get for a missing or expired key.
var ErrNotFound = errors.New("key not found")

// ErrStop ends a Txn.Scan early without an error.
var ErrStop = errors.New("stop scan")

// ErrLocked means the storage directory is held by another process.
var ErrLocked = errors.New("storage directory is locked")

// now is the clock used for expiry checks; tests replace it.
var now = time.Now

// Store is a transactional key-value store.
type Store interface {
	// Update runs fn in a read-write transaction and commits it. A commit
	// that conflicts with a concurrent writer is retried a few times, so fn
	// must be safe to run more than once.
	Update(fn func(Txn) error) error
	// View runs fn in a read-only transaction.
	View(fn func(Txn) error) error
	// Sync flushes committed writes to stable storage.
	Sync() error
	// Close releases the store. It is called once, by the owner.
	Close() error
}

// Read runs get in a read-only transaction of st and returns what it read.
func Read[T any](st Store, get func(Txn) (T, error)) (T, error) {
	var v T
	err := st.View(func(txn Txn) error {
		var err error
		v, err = get(txn)
		return err
	})
	return v, err
}

// Txn is one transaction. Byte slices passed to fn callbacks are valid only
// during the callback; Get returns a copy.
type Txn interface {
	// Get returns a copy of the value of key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Set writes key; a ttl > 0 makes it expire.
	Set(key, value []byte, ttl time.Duration) error
	// Delete removes key (no error when missing).
	Delete(key []byte) error
	// Scan calls fn for each live key with the prefix, in key order,
	// starting at the first key >= from (from may be nil). fn returning
	// ErrStop ends the scan without error.
	Scan(prefix, from []byte, fn func(key, value []byte) error) error
	// ScanReverse is Scan from the last key with the prefix backwards.
	ScanReverse(prefix []byte, fn func(key, value []byte) error) error
}

// Values carry their own expiry in front of the payload, because Badger's
// TTL is not always honoured after a restart (badger#2138): a read checks it
// again.
const (
	valueVersion = 1
	headerLen    = 9
)

func encodeValue(payload []byte, ttl time.Duration) []byte {
	buf := make([]byte, headerLen+len(payload))
	buf[0] = valueVersion
	if ttl > 0 {
		binary.BigEndian.PutUint64(buf[1:headerLen], uint64(now().Add(ttl).UnixNano()))
	}
	copy(buf[headerLen:], payload)
	return buf
}

// decodeValue returns the payload of a stored value and whether it is still
// live at t.
func decodeValue(v []byte, t time.Time) ([]byte, bool, error) {
	if len(v) < headerLen || v[0] != valueVersion {
		return nil, false, fmt.Errorf("decoding stored value: unknown format (len %d)", len(v))
	}
	exp := binary.BigEndian.Uint64(v[1:headerLen])
	if exp != 0 && t.UnixNano() >= int64(exp) {
		return nil, false, nil
	}
	return v[headerLen:], true, nil
}
