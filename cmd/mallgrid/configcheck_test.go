package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeFile writes text to name under a new temporary directory and returns
// its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Warnings are printed and do not change the exit status; problems (with
// the warnings beside them) exit 2.
func TestConfigCheck_WarningsExit0ProblemsExit2(t *testing.T) {
	t.Setenv("MALLGRID_LOG_LEVL", "debug")
	open := writeFile(t, "open.yaml", "site: {name: x}\nhttp: {listen: ':8080'}\nbuses: [{name: b1, port: /dev/ttyUSB0}]\n")
	code, out, stderr := mallgrid(t, "config", "check", "-c", open)
	if code != 0 {
		t.Errorf("warnings only: exit %d; want 0\n%s", code, stderr)
	}
	if want := open + ": ok (1 buses, 0 meters, 0 tenants, 2 warnings)\n"; out != want {
		t.Errorf("stdout %q; want %q", out, want)
	}
	for _, want := range []string{
		open + ":2: http.listen: warning: listens on every network interface",
		open + ": warning: env MALLGRID_LOG_LEVL: unknown variable, ignored (did you mean MALLGRID_LOG_LEVEL?)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	twice := writeFile(t, "twice.yaml", "site: {name: x}\nhttp: {listen: ':8080'}\nbuses:\n"+
		"  - {name: b1, port: /dev/ttyUSB0}\n  - {name: b2, port: /dev/./ttyUSB0}\n")
	code, out, stderr = mallgrid(t, "config", "check", "-c", twice)
	if code != exitConfig || out != "" {
		t.Errorf("two buses on one port: exit %d, stdout %q; want %d and nothing", code, out, exitConfig)
	}
	for _, want := range []string{
		twice + ":2: http.listen: warning: ",
		twice + ":5: buses[1].port: the same serial port as bus b1 (line 4)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// A 50 MB file is refused with the limit named, and binary garbage gets one
// problem with a line.
func TestConfigCheck_NotAConfiguration(t *testing.T) {
	huge := filepath.Join(t.TempDir(), "huge.yaml")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 50<<20); err != nil {
		t.Fatal(err)
	}
	garbage := writeFile(t, "garbage.yaml", "site: {name: x}\n\x7fELF\x02\x01\x01\x00\x00\x00")
	for _, tc := range []struct{ file, want string }{
		{huge, huge + ": file is 52428800 bytes; a configuration file may hold at most 1 MiB (1048576 bytes): is this the right file?\n"},
		{garbage, garbage + ":2: control character U+007F at column 1; YAML allows only printable characters, tabs and line breaks\n"},
	} {
		code, out, stderr := mallgrid(t, "config", "check", "-c", tc.file)
		if code != exitConfig || out != "" || stderr != tc.want {
			t.Errorf("config check %s = %d, %q, %q; want %d and\n%s", filepath.Base(tc.file), code, out, stderr, exitConfig, tc.want)
		}
	}
}

// The daemon starts with warnings, having logged each once.
func TestRun_LogsConfigurationWarnings(t *testing.T) {
	t.Setenv("MALLGRID_STORAGE_PAHT", "/data/mallgrid.db") // inherited by the daemon
	cfg := gatewayConfig(t, filepath.Join(t.TempDir(), "g.db"))
	cmd, out := start(t, "run", "-c", cfg)
	lines := make(chan string)
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
	var warned []string
	timeout := time.After(20 * time.Second)
	for running := false; !running; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before the gateway ran; warnings logged: %q", warned)
			}
			if strings.Contains(line, "configuration warning") {
				warned = append(warned, line)
			}
			running = strings.Contains(line, "gateway running")
		case <-timeout:
			t.Fatalf("gateway not running within 20s; warnings logged: %q", warned)
		}
	}
	go func() {
		for range lines {
		}
	}()
	want := "env MALLGRID_STORAGE_PAHT: unknown variable, ignored (did you mean MALLGRID_STORAGE_PATH?)"
	if len(warned) != 1 || !strings.Contains(warned[0], want) || !strings.Contains(warned[0], `"level":"warn"`) {
		t.Errorf("warnings logged before the gateway ran: %q; want one warn-level line with %q", warned, want)
	}
	stopWithin(t, cmd, syscall.SIGTERM, 5*time.Second)
}
