package main

import (
	"context"
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
	select {
	case <-reload:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s of three SIGHUPs")
	}
	// Signals are delivered asynchronously: give a late one time to land.
	time.Sleep(200 * time.Millisecond)
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
