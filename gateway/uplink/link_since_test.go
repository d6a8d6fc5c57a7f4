package uplink

import (
	"testing"
	"time"

	"mallgrid/gateway/config"
)

// The status says since when the link is up or down: the control room's
// "disconnected for 2 h" reads it.
func TestLink_StatusSince(t *testing.T) {
	db := openDB(t)
	b := startBroker(t, newRecorder())
	before := time.Now()
	l := runLink(t, db, b, config.Uplink{}, nil, fast)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	up, err := l.Status()
	if err != nil || !up.Connected || up.Since.Before(before) {
		t.Fatalf("status %+v, %v; want connected since after %s", up, err, before)
	}
	time.Sleep(20 * time.Millisecond)
	b.stop()
	waitFor(t, 5*time.Second, "link down", func() bool { return !l.connected.Load() })
	down, err := l.Status()
	if err != nil || down.Connected || !down.Since.After(up.Since) {
		t.Errorf("status %+v, %v; want down since after it went up at %s", down, err, up.Since)
	}
	time.Sleep(400 * time.Millisecond) // retries fail meanwhile: still down since then
	if again, _ := l.Status(); !again.Since.Equal(down.Since) {
		t.Errorf("since %s after failed retries; want %s, when the link went down", again.Since, down.Since)
	}
}
