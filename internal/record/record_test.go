package record

import (
	"testing"
	"time"
)

func TestNewIDSortsByTime(t *testing.T) {
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 100 {
		at := base.Add(time.Duration(i) * time.Millisecond)
		id := NewID(at)
		if id <= prev {
			t.Fatalf("ID %s of %v does not sort after %s", id, at, prev)
		}
		if got, ok := IDTime(id); !ok || !got.Equal(at) {
			t.Fatalf("IDTime(%s) = %v, %v; want %v", id, got, ok, at)
		}
		if f := IDFloor(at); f > id || (prev != "" && f <= prev) {
			t.Fatalf("IDFloor(%v) = %s: not between %s and %s", at, f, prev, id)
		}
		prev = id
	}
	if a, b := NewID(base), NewID(base); a == b {
		t.Fatal("two IDs of one millisecond are equal")
	}
	if _, ok := IDTime("not an id"); ok {
		t.Fatal("IDTime accepted a foreign ID")
	}
}

func TestAddAttemptKeepsFirstAndLatest(t *testing.T) {
	var d Delivery
	for i := range 30 {
		d.AddAttempt(Attempt{Status: 500 + i})
	}
	if d.Tries != 30 || len(d.Attempts) != MaxAttemptsKept {
		t.Fatalf("tries %d, kept %d", d.Tries, len(d.Attempts))
	}
	if d.Attempts[0].Status != 500 || d.Attempts[MaxAttemptsKept-1].Status != 529 || d.Attempts[1].Status != 511 {
		t.Fatalf("kept %v", d.Attempts)
	}
}
