package poll

import (
	"sort"
	"time"
)

// latencyWindow is how many recent transaction latencies feed the percentiles.
const latencyWindow = 128

// Stats are one meter's polling statistics.
type Stats struct {
	Requests  int64            `json:"requests"`
	Errors    map[string]int64 `json:"errors"` // by kind: timeout, crc, exception, …
	LastSeen  time.Time        `json:"last_seen"`
	LastError string           `json:"last_error,omitempty"`
	P50       time.Duration    `json:"p50_ns"`
	P99       time.Duration    `json:"p99_ns"`
}

type meterStats struct {
	requests  int64
	errors    map[string]int64
	lastSeen  time.Time
	lastError string
	latencies [latencyWindow]time.Duration
	n         int // latencies recorded, up to latencyWindow
	next      int
}

func (s *meterStats) record(latency time.Duration, kind string, err error, now time.Time) {
	s.requests++
	if err != nil {
		if s.errors == nil {
			s.errors = make(map[string]int64)
		}
		s.errors[kind]++
		s.lastError = err.Error()
		return
	}
	s.lastSeen = now
	s.lastError = ""
	s.latencies[s.next] = latency
	s.next = (s.next + 1) % latencyWindow
	if s.n < latencyWindow {
		s.n++
	}
}

// retriedKind counts requests sent twice because the first try timed out,
// among a meter's errors by kind.
const retriedKind = "timeout_retried"

// note adds n to the count of kind without counting a request.
func (s *meterStats) note(kind string, n int64) {
	if s.errors == nil {
		s.errors = make(map[string]int64)
	}
	s.errors[kind] += n
}

func (s *meterStats) snapshot() Stats {
	out := Stats{Requests: s.requests, LastSeen: s.lastSeen, LastError: s.lastError, Errors: make(map[string]int64, len(s.errors))}
	for k, v := range s.errors {
		out.Errors[k] = v
	}
	if s.n > 0 {
		l := append([]time.Duration(nil), s.latencies[:s.n]...)
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		out.P50 = l[(s.n-1)*50/100]
		out.P99 = l[(s.n-1)*99/100]
	}
	return out
}
