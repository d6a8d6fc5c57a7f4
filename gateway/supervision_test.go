package gateway

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"mallgrid/gateway/poll"
	"mallgrid/gateway/supervise"
	"mallgrid/gateway/web"
)

// The real gateway under a service manager's notify socket: READY=1 comes
// once the database is open (its lock held) and every bus is started (the
// status line naming them came first); the watchdog pings go out while
// the buses poll, stop when one bus's commit hangs — its loop does not
// return — with the bus named on the status line, come back when the
// commit returns, and STOPPING=1 is sent at shutdown.
func TestRun_Supervised(t *testing.T) {
	mall := newTestMall(t, 1)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type datagram struct {
		msg      string
		dbLocked bool // READY=1 only: the database's lock was held when it came
	}
	got := make(chan datagram, 4096)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			d := datagram{msg: string(buf[:n])}
			if d.msg == "READY=1" {
				// The daemon holds bbolt's exclusive lock for as long as the
				// database is open: a reader cannot open it.
				db, err := bolt.Open(mall.dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: 50 * time.Millisecond})
				if err == nil {
					db.Close()
				}
				d.dbLocked = errors.Is(err, berrors.ErrTimeout)
			}
			got <- d
		}
	}()

	var supLog syncBuffer
	// Pings every 50 ms; a bus polls each second and beats at least as
	// often, so 2 s without a beat is a hang.
	sup := supervise.New(supervise.Options{Socket: sock, Watchdog: 150 * time.Millisecond, Allowance: 2 * time.Second, Log: zerolog.New(&supLog)})
	var hang atomic.Bool
	release := make(chan struct{})
	hold := func(c poll.Cycle) {
		if c.Bus == "b" && hang.Load() {
			<-release
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		sup.Run(ctx)
	}()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Config: mall.cfg, Log: newCheckedLog(t), Listener: ln, Version: "test", Supervisor: sup, holdCycle: hold})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		<-supDone
	}
	defer stop()
	// Deferred after stop, so run before it: a failed check must not
	// leave bus b's commit held while Run waits for the bus to end.
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	// until reads datagrams until one satisfies done; it returns them all.
	until := func(what string, within time.Duration, done func(datagram) bool) []datagram {
		t.Helper()
		var seen []datagram
		deadline := time.After(within)
		for {
			select {
			case d := <-got:
				seen = append(seen, d)
				if done(d) {
					return seen
				}
			case <-deadline:
				t.Fatalf("no %s within %s; got %v", what, within, seen)
			}
		}
	}
	pings := func(ds []datagram) int {
		n := 0
		for _, d := range ds {
			if d.msg == "WATCHDOG=1" {
				n++
			}
		}
		return n
	}
	collect := func(d time.Duration) []datagram {
		var seen []datagram
		end := time.After(d)
		for {
			select {
			case x := <-got:
				seen = append(seen, x)
			case <-end:
				return seen
			}
		}
	}

	start := until("READY=1", 10*time.Second, func(d datagram) bool { return d.msg == "READY=1" })
	ready := start[len(start)-1]
	if !ready.dbLocked {
		t.Error("READY=1 came while the database was not open (its lock not held)")
	}
	var status string
	for _, d := range start {
		if strings.HasPrefix(d.msg, "STATUS=") {
			status = d.msg
		}
	}
	if !strings.HasPrefix(status, "STATUS=polling 2 buses, 2 meters") {
		t.Errorf("status before READY=1: %q; want the buses started named first", status)
	}

	// Healthy: the pings go on, the buses read their meters.
	waitFor(t, 10*time.Second, "a cycle on each bus", func() bool {
		for _, b := range mall.cfgStatus(t, ln) {
			if b.LastCycle.IsZero() {
				return false
			}
		}
		return true
	})
	if n := pings(collect(500 * time.Millisecond)); n < 5 {
		t.Fatalf("%d pings in 500 ms while healthy; want ≥ 5 (one each 50 ms)", n)
	}

	// Bus b's next commit hangs: within the allowance and a cycle the
	// pings stop, and the status line names the bus.
	hang.Store(true)
	hung := time.Now()
	until("the stall on the status line", 6*time.Second, func(d datagram) bool {
		return strings.HasPrefix(d.msg, "STATUS=stalled: bus b made no progress")
	})
	t.Logf("pings stopped %s after the hang was set", time.Since(hung).Round(10*time.Millisecond))
	if n := pings(collect(400 * time.Millisecond)); n != 0 {
		t.Errorf("%d pings while bus b's commit hangs; want none", n)
	}
	if !strings.Contains(supLog.String(), `"loop":"bus b"`) || !strings.Contains(supLog.String(), `"level":"error"`) {
		t.Errorf("no error line naming bus b:\n%s", supLog.String())
	}

	// The commit returns: the pings come back.
	hang.Store(false)
	close(release)
	released = true
	until("pings after the commit returned", 3*time.Second, func(d datagram) bool { return d.msg == "WATCHDOG=1" })

	stop()
	rest := collect(100 * time.Millisecond)
	var stopping bool
	for _, d := range rest {
		stopping = stopping || d.msg == "STOPPING=1"
	}
	if !stopping {
		t.Errorf("no STOPPING=1 at shutdown; got %v", rest)
	}
}

// cfgStatus is the gateway's buses as GET /api/v1/status shows them.
func (m *testMall) cfgStatus(t *testing.T, ln net.Listener) []web.BusView {
	t.Helper()
	var v web.StatusView
	if code := getJSON(t, "http://"+ln.Addr().String()+"/api/v1/status", &v); code != 200 {
		return nil
	}
	return v.Buses
}

func TestStatusLine(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 14, 3, 5, 0, time.UTC)
	cases := []struct {
		v    web.StatusView
		want string
	}{
		{web.StatusView{Buses: []web.BusView{{Name: "a"}}, Counts: web.CountsView{Meters: 1}}, "polling 1 bus, 1 meter: no cycle yet"},
		{web.StatusView{Buses: []web.BusView{{Name: "a", LastCycle: at.Add(-time.Minute)}, {Name: "b", LastCycle: at}, {Name: "c"}},
			Counts: web.CountsView{Meters: 29, Online: 27, Offline: 2}}, "polling 3 buses, 29 meters: 27 online, 2 offline; last cycle 14:03:05"},
	}
	for _, c := range cases {
		if got := statusLine(c.v); got != c.want {
			t.Errorf("statusLine = %q; want %q", got, c.want)
		}
	}
}
