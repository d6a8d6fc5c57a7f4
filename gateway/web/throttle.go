package web

import (
	"sync"
	"time"
)

// Login throttling: failures are counted per client address and per user
// name over a sliding window; past the limit, logins are refused (429)
// until the oldest failure leaves the window. A user's limit is lower than
// an address's: one control room may share an address among its staff.
const (
	loginWindow     = 15 * time.Minute
	userFailures    = 5
	addressFailures = 20
	// maxThrottleKeys bounds the memory one attacker trying many names
	// can take; past it, keys with no failure in the window are dropped.
	maxThrottleKeys = 10_000
)

// throttle counts failed logins.
type throttle struct {
	mu    sync.Mutex
	fails map[string][]time.Time // "addr:…" and "user:…" → failures in the window, oldest first
}

func newThrottle() *throttle { return &throttle{fails: make(map[string][]time.Time)} }

// recent drops key's failures older than the window and returns the rest.
func (t *throttle) recent(key string, now time.Time) []time.Time {
	fs := t.fails[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= loginWindow {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = fs
	return fs
}

// blocked returns how long logins from addr or as user stay refused, or 0.
func (t *throttle) blocked(addr, user string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range []struct {
		key   string
		limit int
	}{{"addr:" + addr, addressFailures}, {"user:" + user, userFailures}} {
		if fs := t.recent(k.key, now); len(fs) >= k.limit {
			wait = max(wait, fs[len(fs)-k.limit].Add(loginWindow).Sub(now))
		}
	}
	return wait
}

// fail counts a failed login from addr as user.
func (t *throttle) fail(addr, user string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fails) >= maxThrottleKeys {
		for k := range t.fails {
			t.recent(k, now)
		}
	}
	for _, k := range []string{"addr:" + addr, "user:" + user} {
		t.fails[k] = append(t.recent(k, now), now)
	}
}

// forgive forgets user's failures after a good login.
func (t *throttle) forgive(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, "user:"+user)
}
