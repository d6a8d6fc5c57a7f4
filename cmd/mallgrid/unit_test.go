package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mallgrid/drivers/modbus"
	"mallgrid/gateway/config"
	"mallgrid/gateway/supervise"
)

// The unit makes the file system read-only (ProtectSystem=strict): the
// directory of the serial ports' lock files must be among the paths it
// leaves writable, or the gateway cannot open a single port.
func TestUnit_LockDirWritable(t *testing.T) {
	raw, err := os.ReadFile("../../systemd/mallgrid.service")
	if err != nil {
		t.Fatal(err)
	}
	var strict bool
	var writable []string
	for _, line := range strings.Split(string(raw), "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		switch {
		case !ok:
		case key == "ProtectSystem":
			strict = value == "strict"
		case key == "ReadWritePaths":
			writable = append(writable, strings.Fields(value)...)
		}
	}
	if !strict {
		t.Skip("the unit does not make the file system read-only")
	}
	for _, dir := range writable {
		if dir == modbus.RunLockDir {
			return
		}
	}
	t.Errorf("ReadWritePaths = %v; want %s among them (the serial ports' lock files)", writable, modbus.RunLockDir)
}

// unitKeys reads the [Service] keys of the unit; a key given more than once
// keeps every value.
func unitKeys(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("../../systemd/mallgrid.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if key, value, ok := strings.Cut(line, "="); ok && section == "[Service]" && !strings.HasPrefix(line, "#") {
			keys[key] = append(keys[key], value)
		}
	}
	return keys
}

// The keys the gateway's supervision relies on: it notifies READY=1 (and
// only the main process may), pings a watchdog whose period leaves room
// for a few missed pings yet is shorter than a loop's allowance, reloads on
// SIGHUP, and can open the serial ports through the device sandbox.
func TestUnit_Supervision(t *testing.T) {
	keys := unitKeys(t)
	one := func(key string) string {
		t.Helper()
		if v := keys[key]; len(v) == 1 {
			return v[0]
		}
		t.Errorf("%s given %d times (%q); want once", key, len(keys[key]), keys[key])
		return ""
	}
	if v := one("Type"); v != "notify" {
		t.Errorf("Type=%s; want notify (the gateway sends READY=1)", v)
	}
	if v := one("NotifyAccess"); v != "main" {
		t.Errorf("NotifyAccess=%s; want main", v)
	}
	wd, err := time.ParseDuration(one("WatchdogSec"))
	if err != nil || wd < 10*time.Second || wd >= supervise.DefaultAllowance {
		t.Errorf("WatchdogSec=%s (%v); want 10 s or more (three pings missed on a busy box) and under the loops' allowance %s",
			keys["WatchdogSec"], err, supervise.DefaultAllowance)
	}
	if v := one("ExecReload"); v != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%s; want /bin/kill -HUP $MAINPID (the gateway reloads on SIGHUP)", v)
	}
	// A file with problems must be refused by the main process, whose exit
	// 2 RestartPreventExitStatus= judges; refused by an ExecStartPre= it
	// is restarted every RestartSec= for ever. `mallgrid run` checks the
	// file itself (TestExitCodes: "run, configuration problem").
	if v := keys["ExecStartPre"]; len(v) > 0 {
		t.Errorf("ExecStartPre=%s; want none (a configuration refused there is restarted for ever)", v)
	}
	if v := one("ExecStart"); !strings.Contains(v, "mallgrid run -c ") {
		t.Errorf("ExecStart=%s; want mallgrid run -c FILE (it checks the configuration, exit 2)", v)
	}
	if v := one("StateDirectory"); v != "mallgrid" {
		t.Errorf("StateDirectory=%s; want mallgrid", v)
	}
	if v := one("RestartPreventExitStatus"); v != "2 3 4" {
		t.Errorf("RestartPreventExitStatus=%s; want 2 3 4", v)
	}
	// The database, its control socket (mallgrid backup) and snapshots
	// are written beside the default storage.path under ProtectSystem=strict;
	// the notify and control sockets are AF_UNIX.
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dbDir := filepath.Dir(cfg.Storage.Path)
	if !slices.Contains(strings.Fields(strings.Join(keys["ReadWritePaths"], " ")), dbDir) && "/var/lib/"+one("StateDirectory") != dbDir {
		t.Errorf("%s (the default database's directory) is neither ReadWritePaths nor the StateDirectory", dbDir)
	}
	if families := strings.Fields(one("RestrictAddressFamilies")); !slices.Contains(families, "AF_UNIX") {
		t.Errorf("RestrictAddressFamilies=%v; want AF_UNIX (the notify and control sockets)", families)
	}
	// PrivateDevices=yes would hide every serial port.
	if v := keys["PrivateDevices"]; len(v) > 0 && v[len(v)-1] != "no" {
		t.Errorf("PrivateDevices=%s; the buses' /dev/tty* would be hidden", v[len(v)-1])
	}
	if v := one("DevicePolicy"); v == "closed" || v == "strict" {
		allowed := strings.Join(keys["DeviceAllow"], " ")
		// The boards' own UARTs too: i.MX8/i.MX93 LPUART, STM32MP1, MAX310x.
		for _, group := range []string{"char-ttyS", "char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-ttyLP", "char-ttySTM", "char-ttyMAX"} {
			if !strings.Contains(allowed, group+" rw") {
				t.Errorf("DevicePolicy=%s and DeviceAllow has no %q rw: those ports cannot be opened", v, group)
			}
		}
	}
}

// The unit's exposure by systemd-analyze security stays at 2.0 or less.
// Skipped where systemd-analyze is missing (make test needs only Go);
// TestE2E_UnitExposure, which CI runs once systemd is installed, is not.
func TestUnit_Exposure(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	checkExposure(t, tool)
}

// maxExposure is the highest exposure systemd-analyze security may give
// the unit ("OK" ends at 4.9; the sandbox scores 1.5).
const maxExposure = 2.0

// checkExposure runs tool (systemd-analyze) on the unit file and fails
// above maxExposure. systemd 252 reads a unit file that is not installed
// with --offline=true.
func checkExposure(t *testing.T, tool string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, "security", "--offline=true", "--no-pager", "../../systemd/mallgrid.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for mallgrid\.service: (\d+\.\d)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f", score)
	if score > maxExposure {
		t.Errorf("exposure %.1f; want %.1f or less:\n%s", score, maxExposure, out)
	}
}

// unitEnvironment reads the unit's Environment= assignments.
func unitEnvironment(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range unitKeys(t)["Environment"] {
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(strings.Trim(kv, `"`), "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

// The watchdog ends a hung gateway with SIGABRT (systemd's default
// WatchdogSignal=). The gateway, run with the unit's environment, must die
// by that signal — not exit 2, which RestartPreventExitStatus= keeps down
// as a configuration with problems, leaving a hung bus's mall with no
// gateway at all. A panic ends the same way under GOTRACEBACK=crash.
func TestUnit_WatchdogAbortIsRestarted(t *testing.T) {
	keys := unitKeys(t)
	env := unitEnvironment(t)
	if env["GOTRACEBACK"] != "crash" {
		t.Errorf("Environment GOTRACEBACK=%q; want crash (else SIGABRT and a panic exit 2)", env["GOTRACEBACK"])
	}
	cmd := exec.Command(binary, "run", "-c", gatewayConfig(t, filepath.Join(t.TempDir(), "g.db")))
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// As LimitCORE=0 in the unit: no core file of the test's gateway.
	if slices.Contains(keys["LimitCORE"], "0") {
		if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	readLineContaining(t, bufio.NewReader(stdout), "gateway running")
	if err := cmd.Process.Signal(syscall.SIGABRT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGABRT")
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	prevented := strings.Fields(strings.Join(keys["RestartPreventExitStatus"], " "))
	switch {
	case ws.Exited() && slices.Contains(prevented, strconv.Itoa(ws.ExitStatus())):
		t.Errorf("after SIGABRT: exit status %d, in RestartPreventExitStatus=%s: a watchdog kill would not be restarted", ws.ExitStatus(), prevented)
	case !ws.Signaled() || ws.Signal() != syscall.SIGABRT:
		t.Errorf("after SIGABRT: %v; want killed by SIGABRT", cmd.ProcessState)
	}
	// The stacks are what says where it hung.
	if !strings.Contains(stderr.String(), "goroutine ") {
		t.Errorf("no goroutine stacks on stderr after SIGABRT:\n%.2000s", stderr.String())
	}
}
