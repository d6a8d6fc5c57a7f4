package yamlcheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// suggest names the key the technician probably meant, or lists the keys
// allowed here when none is close.
func suggest(name string, fields map[string][]int) string {
	keys := slices.Sorted(maps.Keys(fields))
	if best := Suggest(name, keys); best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (allowed: " + strings.Join(keys, ", ") + ")"
}

// Suggest returns the one of known that name is probably a misspelling
// of, ignoring case, or "" when none is close: the "did you mean" of an
// unknown key, or of an unknown environment variable.
func Suggest(name string, known []string) string {
	keys := slices.Sorted(slices.Values(known))
	best, bestDist := "", len(name)/3+2
	for _, k := range keys { // sorted: ties go to the same name every run
		if d := distance(strings.ToLower(name), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
