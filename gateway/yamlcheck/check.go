package yamlcheck

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The checks below are for validation after decoding. Each records a
// problem with key (see Report.Add) when val fails it and reports whether
// val passed, so that a check that depends on a good value can follow.

// Need checks a required string: "required, not set" when the key is
// missing, "must not be empty" when it is given as "".
func (r *Report) Need(key, val string) bool {
	if val != "" {
		return true
	}
	if _, overridden := r.origin[key]; r.Given(key) || overridden {
		r.Add(key, "must not be empty")
	} else {
		r.Add(key, "required, not set")
	}
	return false
}

// OneOf checks that val is one of allowed.
func (r *Report) OneOf(key, val string, allowed ...string) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	r.Add(key, "want one of %s, got %q", strings.Join(allowed, ", "), val)
	return false
}

// IntOneOf checks that val is one of allowed.
func (r *Report) IntOneOf(key string, val int, allowed ...int) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = strconv.Itoa(a)
	}
	r.Add(key, "want one of %s, got %d", strings.Join(s, ", "), val)
	return false
}

// IntIn checks that lo <= val <= hi. A hi of math.MaxInt32, the largest
// integer a file may hold, means no upper bound.
func (r *Report) IntIn(key string, val, lo, hi int) bool {
	if lo <= val && val <= hi {
		return true
	}
	if hi == math.MaxInt32 {
		r.Add(key, "want an integer >= %d, got %d", lo, val)
	} else {
		r.Add(key, "want %d..%d, got %d", lo, hi, val)
	}
	return false
}

// DurationIn checks that lo <= val <= hi.
func (r *Report) DurationIn(key string, val, lo, hi time.Duration) bool {
	if lo <= val && val <= hi {
		return true
	}
	r.Add(key, "want %s..%s, got %s", shortDuration(lo), shortDuration(hi), shortDuration(val))
	return false
}

// shortDuration prints 1h rather than 1h0m0s, as a technician writes it.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
