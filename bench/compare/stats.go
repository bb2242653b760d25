package main

import (
	"math"
	"slices"
)

// median returns the median of v (the mean of the middle two for an even
// count); v is sorted in place.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// medianInterval returns a distribution-free confidence interval of at
// least the given level (0.90, say) for the median of the population v was
// drawn from: the k-th smallest and k-th largest values, with k the largest
// rank for which a Binomial(n, 1/2) count falls below k with probability at
// most (1-level)/2 (the sign-test interval). ok is false when there are too
// few values for that level (fewer than 5 for 90%).
func medianInterval(v []float64, level float64) (lo, hi float64, ok bool) {
	n := len(v)
	if n == 0 {
		return 0, 0, false
	}
	sorted := slices.Clone(v)
	slices.Sort(sorted)
	tail := (1 - level) / 2
	// cdf accumulates P(X ≤ j) for X ~ Binomial(n, 1/2).
	k, cdf := 0, 0.0
	for j := 0; j < n; j++ {
		cdf += binomialHalf(n, j)
		if cdf > tail {
			break
		}
		k = j + 1 // P(X ≤ j) = P(X < k) ≤ tail
	}
	if k == 0 {
		return sorted[0], sorted[n-1], false
	}
	return sorted[k-1], sorted[n-k], true
}

// binomialHalf is P(X = j) for X ~ Binomial(n, 1/2).
func binomialHalf(n, j int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	return math.Exp(lg(n) - lg(j) - lg(n-j) - float64(n)*math.Ln2)
}
