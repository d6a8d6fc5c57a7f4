package gateway

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/supervise"
)

// A reload is a watched loop of its own ("reload"): while it runs, the old
// generation's loops end one by one and the new one's have not begun, so
// a step that does not return — here the file's loading — would leave the
// pings going with the reload stuck. Within the allowance the pings stop
// with the reload named; they come back, and READY=1 ends the reload, once
// the step returns.
func TestRun_ReloadWatched(t *testing.T) {
	mall := newTestMall(t, 1)
	src := reloadMallYAML(mall, false, "")
	cfg, err := config.Parse("reload.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan string, 4096)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	until := func(what string, within time.Duration, done func(string) bool) []string {
		t.Helper()
		var seen []string
		deadline := time.After(within)
		for {
			select {
			case d := <-got:
				seen = append(seen, d)
				if done(d) {
					return seen
				}
			case <-deadline:
				t.Fatalf("no %s within %s; got %q", what, within, seen)
			}
		}
	}
	pingsIn := func(d time.Duration) int {
		n := 0
		end := time.After(d)
		for {
			select {
			case x := <-got:
				if x == "WATCHDOG=1" {
					n++
				}
			case <-end:
				return n
			}
		}
	}

	var supLog syncBuffer
	// Pings every 50 ms; 2 s without a beat is a hang.
	sup := supervise.New(supervise.Options{Socket: sock, Watchdog: 150 * time.Millisecond, Allowance: 2 * time.Second, Log: zerolog.New(&supLog)})
	supCtx, stopSup := context.WithCancel(context.Background())
	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		sup.Run(supCtx)
	}()
	defer func() { stopSup(); <-supDone }()

	hung, release := make(chan struct{}), make(chan struct{})
	var loads atomic.Int32
	load := func() (*config.Config, error) {
		if loads.Add(1) == 1 {
			close(hung)
			<-release
		}
		return config.Parse("reload.yaml", []byte(src), nil)
	}
	reload := make(chan struct{}, 1)
	_, stop := runGateway(t, Options{Config: cfg, Log: newCheckedLog(t), Supervisor: sup, Reload: reload, Load: load})
	defer stop()
	released := false
	defer func() { // before stop: Run waits for the reload
		if !released {
			close(release)
		}
	}()

	until("READY=1", 10*time.Second, func(d string) bool { return d == "READY=1" })
	if n := pingsIn(500 * time.Millisecond); n < 5 {
		t.Fatalf("%d pings in 500 ms before the reload; want ≥ 5", n)
	}

	reload <- struct{}{}
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload never loaded its file")
	}
	began := time.Now()
	until("the stalled reload on the status line", 6*time.Second, func(d string) bool {
		return strings.HasPrefix(d, "STATUS=stalled: reload made no progress")
	})
	t.Logf("pings stopped %s after the reload hung", time.Since(began).Round(10*time.Millisecond))
	if n := pingsIn(400 * time.Millisecond); n != 0 {
		t.Errorf("%d pings while the reload hangs; want none", n)
	}
	if !strings.Contains(supLog.String(), `"loop":"reload"`) {
		t.Errorf("no line naming the reload:\n%s", supLog.String())
	}

	close(release)
	released = true
	seen := until("READY=1 after the reload", 10*time.Second, func(d string) bool { return d == "READY=1" })
	seen = append(seen, until("pings after the reload", 3*time.Second, func(d string) bool { return d == "WATCHDOG=1" })...)
	t.Logf("after the reload: %q", seen)
}
