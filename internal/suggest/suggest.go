// Package suggest finds the known name a mistyped one was most likely meant
// to be, for configuration errors that say "did you mean `everflow`?". It
// knows nothing of Caddy.
package suggest

import "strings"

// Nearest returns the name in known closest to name by edit distance
// (insertions, deletions, substitutions and swaps of two neighbouring
// letters, case ignored), when it is close enough to be a slip: one edit for
// names of up to four letters, two up to eight, three beyond. A name that
// is the start of exactly one known name before a '_' (meta for
// meta_capi) is close too. Ties go to the earlier name in known. It reports
// false when no name is close, or when name is itself known.
func Nearest(name string, known []string) (string, bool) {
	if name == "" {
		return "", false
	}
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, k := range known {
		if k == name {
			return "", false
		}
		d := distance(lower, strings.ToLower(k))
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist >= 0 && bestDist <= allowed(len(name)) {
		return best, true
	}
	var prefixed []string
	for _, k := range known {
		if strings.HasPrefix(strings.ToLower(k), lower+"_") {
			prefixed = append(prefixed, k)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0], true
	}
	return "", false
}

// DidYouMean returns " (did you mean `x`?)" for the nearest known name, or
// "" when none is close: ready to append to an error message.
func DidYouMean(name string, known []string) string {
	if s, ok := Nearest(name, known); ok {
		return " (did you mean `" + s + "`?)"
	}
	return ""
}

// allowed is the greatest distance that still reads as a slip for a name
// of n bytes.
func allowed(n int) int {
	switch {
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	}
	return 3
}

// distance is the optimal string alignment distance of a and b: the
// Levenshtein distance where swapping two neighbouring bytes counts as one
// edit ("evreflow").
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
