package main

import "testing"

func TestMedianInterval(t *testing.T) {
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(n - i) // descending, so the function must sort
		}
		return v
	}
	tests := []struct {
		n      int
		lo, hi float64
		ok     bool
	}{
		// P(X ≤ 0) for n = 4 is 1/16 > 0.05: no 90% interval.
		{4, 1, 4, false},
		// n = 5: P(X ≤ 0) = 1/32 ≤ 0.05, P(X ≤ 1) = 6/32 > 0.05.
		{5, 1, 5, true},
		// n = 10: P(X ≤ 1) = 11/1024 ≤ 0.05, P(X ≤ 2) = 56/1024 > 0.05.
		{10, 2, 9, true},
		// n = 24: P(X ≤ 6) = 0.0113, P(X ≤ 7) = 0.0320, P(X ≤ 8) = 0.0758.
		{24, 8, 17, true},
	}
	for _, tt := range tests {
		lo, hi, ok := medianInterval(seq(tt.n), 0.90)
		if lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("n=%d: got [%v, %v] ok=%v, want [%v, %v] ok=%v", tt.n, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
	}
	if got := median(seq(4)); got != 2.5 {
		t.Errorf("median of 1..4 = %v, want 2.5", got)
	}
}
