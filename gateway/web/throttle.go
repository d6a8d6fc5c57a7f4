package web

import (
	"net"
	"sort"
	"sync"
	"time"
)

// Login throttling: failures are counted per client address (an IPv6
// client by its /64, which one host usually has whole) and per user name
// from that address, over a sliding window; past a limit, logins are
// refused (429) until the oldest failure leaves the window. A name is
// limited per address, not across addresses: anyone could otherwise keep
// the administrator locked out by failing as "admin" five times every
// quarter of an hour. The address limit is higher: one control room may
// share an address among its staff.
//
// An attempt counts as a failure from the moment it is let through
// (begin) until its password proved right (the release, which takes it
// back): parallel guesses sent while bcrypt works on the first ones would
// otherwise all pass the check before any of them was counted.
const (
	loginWindow     = 15 * time.Minute
	userFailures    = 5
	addressFailures = 20
	// maxThrottleKeys bounds the memory an attacker trying many names or
	// addresses can take: past it, the keys whose last failure is oldest
	// are forgotten, a tenth at a time.
	maxThrottleKeys = 10_000
)

// throttle counts failed logins.
type throttle struct {
	mu    sync.Mutex
	fails map[string][]time.Time // "addr:…" and "user:…@addr" → failures in the window, oldest first
}

func newThrottle() *throttle { return &throttle{fails: make(map[string][]time.Time)} }

// throttleKeys are the counters an attempt from addr as user counts in,
// with their limits.
func throttleKeys(addr, user string) [2]struct {
	key   string
	limit int
} {
	a := throttleAddress(addr)
	return [2]struct {
		key   string
		limit int
	}{{"addr:" + a, addressFailures}, {"user:" + user + "@" + a, userFailures}}
}

// throttleAddress is addr as the throttle counts it: an IPv6 address by
// its /64.
func throttleAddress(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

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

// attempt is how a login attempt the throttle let through ended.
type attempt int

const (
	attemptFailed    attempt = iota // a wrong name or password: it stays counted
	attemptSucceeded                // taken back, and the name's failures from there forgiven
	attemptAbandoned                // never judged (the client left, the gateway was busy): taken back
)

// begin lets an attempt from addr as user through, counted as a failure
// until its release says otherwise, or returns how long logins from addr
// as user stay refused (release is nil then). Checking and counting are
// one step.
func (t *throttle) begin(addr, user string, now time.Time) (wait time.Duration, release func(attempt)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := throttleKeys(addr, user)
	for _, k := range keys {
		if fs := t.recent(k.key, now); len(fs) >= k.limit {
			wait = max(wait, fs[len(fs)-k.limit].Add(loginWindow).Sub(now))
		}
	}
	if wait > 0 {
		return wait, nil
	}
	t.bound(now)
	for _, k := range keys {
		t.fails[k.key] = append(t.fails[k.key], now)
	}
	return 0, func(a attempt) {
		if a == attemptFailed {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, k := range keys {
			t.takeBack(k.key, now)
		}
		if a == attemptSucceeded {
			delete(t.fails, keys[1].key) // a good login forgives its name's failures from there
		}
	}
}

// takeBack removes one failure at now from key.
func (t *throttle) takeBack(key string, now time.Time) {
	fs := t.fails[key]
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Equal(now) {
			fs = append(fs[:i], fs[i+1:]...)
			break
		}
	}
	if len(fs) == 0 {
		delete(t.fails, key)
		return
	}
	t.fails[key] = fs
}

// bound keeps the map under maxThrottleKeys: expired keys go first, then
// the tenth whose last failure is oldest. t.mu held.
func (t *throttle) bound(now time.Time) {
	if len(t.fails) < maxThrottleKeys {
		return
	}
	for k := range t.fails {
		t.recent(k, now)
	}
	if len(t.fails) < maxThrottleKeys {
		return
	}
	type keyAge struct {
		key  string
		last time.Time
	}
	all := make([]keyAge, 0, len(t.fails))
	for k, fs := range t.fails {
		all = append(all, keyAge{k, fs[len(fs)-1]})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].last.Before(all[j].last) })
	for _, ka := range all[:len(all)/10+1] {
		delete(t.fails, ka.key)
	}
}
