package modbus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

// newPTY returns a pseudo-terminal for a transport to open; nothing serves it.
func newPTY(t *testing.T) *sim.PTY {
	t.Helper()
	p, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func openRTU(path, lockDir string) (*modbus.Transport, error) {
	return modbus.Open(modbus.Config{Kind: modbus.RTU, Address: path, Timeout: 50 * time.Millisecond, LockDir: lockDir})
}

func TestOpen_HoldsThePort(t *testing.T) {
	p := newPTY(t)
	dir := t.TempDir()
	tr, err := openRTU(p.Path, dir)
	if err != nil {
		t.Fatal(err)
	}
	lock := modbus.LockFile(dir, p.Path)
	if got := tr.LockFile(); got != lock {
		t.Errorf("LockFile() = %q; want %q", got, lock)
	}
	b, err := os.ReadFile(lock)
	if err != nil {
		t.Fatalf("lock file: %v", err)
	}
	// HDB UUCP: the PID in ten ASCII characters, then a newline.
	if want := fmt.Sprintf("%10d\n", os.Getpid()); string(b) != want {
		t.Errorf("lock file holds %q; want %q", b, want)
	}
	if excl, err := modbus.Exclusive(p.Path); err != nil || !excl {
		t.Errorf("Exclusive = %v, %v; want the terminal in exclusive mode", excl, err)
	}

	// A second master fails at once, told who holds the port.
	start := time.Now()
	_, err = openRTU(p.Path, dir)
	var busy *modbus.BusyError
	if !errors.As(err, &busy) || !errors.Is(err, modbus.ErrPortBusy) {
		t.Fatalf("second Open: %v; want a *BusyError", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("second Open took %v; want it to fail at once", took)
	}
	self, _ := os.Executable()
	if busy.PID != os.Getpid() || busy.LockFile != lock || !strings.Contains(busy.Command, self) {
		t.Errorf("BusyError = %+v; want PID %d, lock %s, command naming %s", busy, os.Getpid(), lock, self)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("(PID %d)", os.Getpid())) {
		t.Errorf("error %q does not name the holder's PID", err)
	}

	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after Close: %v; want it removed", err)
	}
	if excl, err := modbus.Exclusive(p.Path); err != nil || excl {
		t.Errorf("Exclusive after Close = %v, %v; want false", excl, err)
	}
	tr2, err := openRTU(p.Path, dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	tr2.Close()
}

// A lock whose PID runs is respected, whoever holds it; one whose PID is
// gone, or that holds no PID, is taken over.
func TestOpen_LockFileOfAnotherProcess(t *testing.T) {
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Skip("no sleep command: ", err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true command: ", err)
	}
	tests := []struct {
		name    string
		content string
		busy    bool
	}{
		{"running process", fmt.Sprintf("%10d\n", sleeper.Process.Pid), true},
		{"dead process", fmt.Sprintf("%10d\n", dead.Process.Pid), false},
		{"no PID", "garbage\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPTY(t)
			dir := t.TempDir()
			lock := modbus.LockFile(dir, p.Path)
			if err := os.WriteFile(lock, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			tr, err := openRTU(p.Path, dir)
			if tt.busy {
				var busy *modbus.BusyError
				if !errors.As(err, &busy) || busy.PID != sleeper.Process.Pid || busy.Command != "sleep 30" {
					t.Fatalf("Open = %v (%+v); want busy, held by PID %d \"sleep 30\"", err, busy, sleeper.Process.Pid)
				}
				if b, _ := os.ReadFile(lock); string(b) != tt.content {
					t.Errorf("lock file changed to %q; another program's lock is not ours to touch", b)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open over a stale lock: %v", err)
			}
			defer tr.Close()
			if b, _ := os.ReadFile(lock); string(b) != fmt.Sprintf("%10d\n", os.Getpid()) {
				t.Errorf("lock file holds %q; want this process's PID", b)
			}
		})
	}
}

func TestOpen_NoLock(t *testing.T) {
	p := newPTY(t)
	tr, err := openRTU(p.Path, modbus.NoLock)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.LockFile() != "" {
		t.Errorf("LockFile() = %q with NoLock; want none", tr.LockFile())
	}
	if excl, err := modbus.Exclusive(p.Path); err != nil || !excl {
		t.Errorf("Exclusive = %v, %v; want exclusive mode even without a lock file", excl, err)
	}
}

// The simulator's side of a line is held the same way.
func TestOpenLine_HoldsThePort(t *testing.T) {
	p := newPTY(t)
	dir := t.TempDir()
	l, err := modbus.OpenLine(modbus.Config{Address: p.Path, LockDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openRTU(p.Path, dir); !errors.Is(err, modbus.ErrPortBusy) {
		t.Errorf("Open beside OpenLine: %v; want ErrPortBusy", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(modbus.LockFile(dir, p.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after Close: %v; want it removed", err)
	}
}

func TestConfig_SilentInterval(t *testing.T) {
	tests := []struct {
		c    modbus.Config
		want time.Duration
	}{
		{modbus.Config{}, 4010417},                                      // 9600 8E1: 3.5 × 11 bits
		{modbus.Config{Baud: 9600, Parity: 'N'}, 3645834},               // 8N1: 10 bits
		{modbus.Config{Baud: 9600, Parity: 'N', StopBits: 2}, 4010417},  // 8N2
		{modbus.Config{Baud: 2400, Parity: 'O', StopBits: 2}, 17500000}, // 8O2: 12 bits
		{modbus.Config{Baud: 19200}, 2005209},
		{modbus.Config{Baud: 115200}, 1750 * time.Microsecond}, // fixed above 19200
		{modbus.Config{Kind: modbus.RTUOverTCP}, 4010417},
		{modbus.Config{Kind: modbus.TCP}, 0},
	}
	for _, tt := range tests {
		if got := tt.c.SilentInterval(); got != tt.want {
			t.Errorf("SilentInterval(%+v) = %v; want %v", tt.c, got, tt.want)
		}
	}
}

// Back-to-back transactions leave the line silent for 3.5 characters
// between them, whoever calls.
func TestRTU_SilentIntervalBetweenTransactions(t *testing.T) {
	tr, _ := simBus(t, 1)
	ctx := context.Background()
	if _, err := readImport(ctx, tr.Client(1)); err != nil {
		t.Fatal(err)
	}
	const n = 20
	start := time.Now()
	for range n {
		if _, err := readImport(ctx, tr.Client(1)); err != nil {
			t.Fatal(err)
		}
	}
	if per, min := time.Since(start)/n, tr.Config().SilentInterval(); per < min {
		t.Errorf("transactions %v apart; want at least the silent interval %v", per, min)
	}
}

// One line named two ways is one lock: the gateway configured with a
// symbolic link (/dev/serial/by-id/…) and a technician naming the device
// itself find each other. Two devices that only share a base name are two.
func TestOpen_OneLockPerDevice(t *testing.T) {
	p, q := newPTY(t), newPTY(t)
	links := t.TempDir()
	byID := links + "/usb-FTDI_FT232R_A50285BI-if00-port0"
	if err := os.Symlink(p.Path, byID); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b"} { // a/ttyV0 → p, b/ttyV0 → q
		if err := os.Mkdir(links+"/"+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(p.Path, links+"/a/ttyV0"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(q.Path, links+"/b/ttyV0"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := dir + "/LCK.." + strings.ReplaceAll(strings.TrimPrefix(p.Path, "/dev/"), "/", "_") // LCK..pts_N
	tr, err := openRTU(byID, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if got := tr.LockFile(); got != want {
		t.Errorf("lock of %s = %s; want the device's own name, %s", byID, got, want)
	}
	if _, err := openRTU(p.Path, dir); !errors.Is(err, modbus.ErrPortBusy) {
		t.Errorf("open %s, held through a link to it: %v; want ErrPortBusy", p.Path, err)
	}
	other, err := openRTU(links+"/b/ttyV0", dir)
	if err != nil {
		t.Fatalf("open b/ttyV0 (another device with a/ttyV0's base name): %v; want it free", err)
	}
	other.Close()
}
