package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/upfeed"
	"mallgrid/gateway/uplink"
	"mallgrid/gateway/web"
)

// statusOf reads GET /api/v1/status as it came (raw) and decoded.
func statusOf(t *testing.T, base string) (web.StatusView, string) {
	t.Helper()
	resp, err := viewerGet(base + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var st web.StatusView
	if err := json.Unmarshal(raw, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d %s: %v", resp.StatusCode, raw, err)
	}
	return st, string(raw)
}

// The control room sees the uplink: connected, the broker without its
// credentials, the last command handled; then, the broker gone,
// disconnected since then with what waits — while /healthz stays 200: the
// internet is optional, the site runs without it.
func TestRun_UplinkStatus(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	srv, stopBroker := mallBrokerServer(t, addr)
	broker := "tcp://" + addr
	k := newConsumer(t, broker, "", "")
	m := newTestMall(t, 1, uplinkYAML(broker, "  username: site-user\n  password: s3cret-pw\n"))
	base, stop := m.start(t)
	defer stop()
	waitFor(t, 10*time.Second, "uplink connected in the status", func() bool {
		st, _ := statusOf(t, base)
		return st.Uplink != nil && st.Uplink.Connected
	})
	waitSubscribed(t, srv)
	if tok := k.c.Publish("mallgrid/test-mall/down", 1, false, signedTopUp(t, "cmd-s1", "T-a1", "5.00", "PAY-S1")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish the command: %v", tok.Error())
	}
	waitFor(t, 10*time.Second, "the last command in the status", func() bool {
		st, _ := statusOf(t, base)
		return st.Uplink.LastCommand != nil
	})
	st, raw := statusOf(t, base)
	up := st.Uplink
	if up.Broker != broker || up.SiteID != "test-mall" || up.Since.IsZero() || up.Head == 0 {
		t.Errorf("uplink %+v; want broker %s, site test-mall, connected since a time, messages given", up, broker)
	}
	if c := up.LastCommand; c.ID != "cmd-s1" || c.Status != "ok" || c.Time.IsZero() {
		t.Errorf("last command %+v; want cmd-s1 ok", c)
	}
	if strings.Contains(raw, "s3cret-pw") || strings.Contains(raw, "site-user") {
		t.Errorf("status %s names the uplink's credentials", raw)
	}
	connectedSince := up.Since

	stopBroker()
	waitFor(t, 10*time.Second, "uplink disconnected in the status", func() bool {
		st, _ := statusOf(t, base)
		return !st.Uplink.Connected
	})
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "till-secret", `{"amount":"20.00","ref":"TILL-S1","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up at the till with the uplink down: %d", code)
	}
	waitFor(t, 10*time.Second, "the till's top-up waiting", func() bool {
		st, _ := statusOf(t, base)
		return st.Uplink.Depth > 0 && st.Uplink.Bytes > 0 && !st.Uplink.Oldest.IsZero()
	})
	st, _ = statusOf(t, base)
	if up := st.Uplink; !up.Since.After(connectedSince) || up.Backlog || up.OldestAgeS > 60 {
		t.Errorf("uplink %+v; want down since after %s, a fresh backlog not highlighted", up, connectedSince)
	}
	var health struct {
		Status   string   `json:"status"`
		Problems []string `json:"problems"`
	}
	if code := getJSON(t, base+"/healthz", &health); code != 200 {
		t.Errorf("healthz %d %+v with the uplink down; want 200: the site runs without it", code, health)
	}
}

// Without an uplink configured the status has none.
func TestRun_StatusWithoutUplink(t *testing.T) {
	t.Parallel()
	m := newTestMall(t, 1)
	base, stop := m.start(t)
	defer stop()
	if st, raw := statusOf(t, base); st.Uplink != nil || strings.Contains(raw, `"uplink"`) {
		t.Errorf("status %s; want no uplink", raw)
	}
}

// fakeUplink is an uplink's state as a test sets it.
type fakeUplink struct {
	st  uplink.Status
	err error
}

func (f fakeUplink) Status() (uplink.Status, error)          { return f.st, f.err }
func (f fakeUplink) LastCommand() (uplink.LastCommand, bool) { return uplink.LastCommand{}, false }

// The backlog is highlighted once its oldest message waits longer than
// the feed's BacklogAge; the broker is shown without a user or password
// written into its address; an outbox that cannot be read is said.
func TestUplinkView(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Uplink: config.Uplink{Broker: "ssl://site-7:pw@group.example:8883", SiteID: "s7"}}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		age     time.Duration
		backlog bool
	}{{0, false}, {9 * time.Minute, false}, {upfeed.BacklogAge, false}, {upfeed.BacklogAge + time.Second, true}, {2 * time.Hour, true}} {
		up := fakeUplink{st: uplink.Status{Depth: 12345, Bytes: 99, Oldest: 7, OldestTime: now.Add(-tc.age)}}
		v := uplinkView(cfg, up, func() time.Time { return now }, zerolog.Nop())()
		if v.Backlog != tc.backlog || v.OldestAgeS != int64(tc.age/time.Second) || v.Broker != "ssl://group.example:8883" {
			t.Errorf("oldest %s old: %+v; want backlog %v, age %d s, broker ssl://group.example:8883", tc.age, v, tc.backlog, int64(tc.age/time.Second))
		}
	}
	v := uplinkView(cfg, fakeUplink{err: errors.New("disk gone")}, func() time.Time { return now }, zerolog.Nop())()
	if v.Error == "" || v.Connected {
		t.Errorf("outbox unreadable: %+v; want the error said", v)
	}
}
