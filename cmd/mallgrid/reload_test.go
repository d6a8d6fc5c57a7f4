package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUPs in a row while nothing takes them make one reload: the channel
// holds one, and a send never blocks the signal's goroutine.
func TestHangups_Coalesce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := hangups(ctx)
	for range 3 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// Signals are delivered asynchronously: nothing takes the reload until
	// all three have had time to land (taken earlier, a late one would
	// rightly make a second reload).
	time.Sleep(300 * time.Millisecond)
	select {
	case <-reload:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s of three SIGHUPs")
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-reload:
		t.Error("three SIGHUPs in a row made a second reload")
	default:
	}
}

// The real daemon reloads its -c file on SIGHUP: a file with a problem is
// logged with its FILE:LINE and keeps the daemon running on the old one;
// a valid one is taken up and what it changed is logged.
func TestRun_SIGHUPReloads(t *testing.T) {
	path := gatewayConfig(t, filepath.Join(t.TempDir(), "g.db"))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := start(t, "run", "-c", path)
	lines := make(chan string, 100)
	go func() { // reads to the end, so the daemon never blocks on its pipe
		defer close(lines)
		for {
			line, err := out.ReadString('\n')
			if err != nil {
				return
			}
			lines <- line
		}
	}()
	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before a line with %q", want)
				}
				if strings.Contains(line, want) {
					t.Logf("%s", line)
					return
				}
			case <-timeout:
				t.Fatalf("no line with %q within 20s", want)
			}
		}
	}
	waitLine("gateway running")

	bad := strings.Replace(string(good), "tenants:\n", "tenants:\n  - {id: T1, name: Twice}\n", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine("configuration reload refused: " + path + ":11: tenants[1].id: duplicate tenant id")
	waitLine("configuration not reloaded")

	more := string(good) + "  - {id: T2, name: Second shop}\n"
	if err := os.WriteFile(path, []byte(more), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine("configuration reloaded: tenants added T2")
	go func() {
		for range lines {
		}
	}()
	stopWithin(t, cmd, syscall.SIGTERM, 5*time.Second)
}

// The daemon's log is timed in the site's zone of the configuration in
// force: a reload that changes site.timezone moves the log's clock to the
// new zone at once, and a file with a problem changes nothing, its zone
// neither.
func TestRun_SIGHUPTimezone(t *testing.T) {
	path := gatewayConfig(t, filepath.Join(t.TempDir(), "g.db"))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inZone := func(zone string) string {
		out := strings.Replace(string(good), "site: {name: Database test}", "site: {name: Database test, timezone: "+zone+"}", 1)
		if out == string(good) {
			t.Fatal("the test configuration has no site line to give a zone")
		}
		return out
	}
	if err := os.WriteFile(path, []byte(inZone("Asia/Shanghai")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out := start(t, "run", "-c", path)
	lines := make(chan string, 100)
	go func() { // reads to the end, so the daemon never blocks on its pipe
		defer close(lines)
		for {
			line, err := out.ReadString('\n')
			if err != nil {
				return
			}
			lines <- line
		}
	}()
	// zoneOf waits for the line with want and returns its time's offset.
	zoneOf := func(want string) string {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before a line with %q", want)
				}
				if !strings.Contains(line, want) {
					continue
				}
				var l struct{ Time string }
				if err := json.Unmarshal([]byte(line), &l); err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				at, err := time.Parse(time.RFC3339, l.Time)
				if err != nil {
					t.Fatalf("the line's time %q: %v", l.Time, err)
				}
				return at.Format("-07:00")
			case <-timeout:
				t.Fatalf("no line with %q within 20s", want)
			}
		}
	}
	if got := zoneOf("gateway running"); got != "+08:00" {
		t.Errorf("logged at start in %s; want Asia/Shanghai's +08:00", got)
	}

	bad := strings.Replace(inZone("America/New_York"), "tenants:\n", "tenants:\n  - {id: T1, name: Twice}\n", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := zoneOf("configuration not reloaded"); got != "+08:00" {
		t.Errorf("logged after a refused file in %s; want the running +08:00", got)
	}

	if err := os.WriteFile(path, []byte(inZone("America/New_York")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := zoneOf("configuration reloaded: site changed"), time.Now().In(ny).Format("-07:00"); got != want {
		t.Errorf("logged after a reload to America/New_York in %s; want %s", got, want)
	}
	go func() {
		for range lines {
		}
	}()
	stopWithin(t, cmd, syscall.SIGTERM, 5*time.Second)
}
