package modbus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A serial line carries one master. Two on one RS-485 pair collide on the
// wire, and a technician's `meter relay` beside the daemon switches a relay
// behind enforcement's back. A port is therefore held twice over while a
// Transport has it open:
//
//   - a UUCP lock file, LCK..<name> in the lock directory, holding the
//     holder's PID as ten ASCII characters and a newline (the HDB UUCP
//     convention that minicom, picocom, mbpoll's libmodbus users and
//     lockdev follow), so that a second program fails at once and can say
//     who holds the port;
//   - TIOCEXCL on the terminal, so that a program that ignores lock files
//     gets EBUSY from open(2) (the kernel lets root through regardless).

// Lock directories, tried in order when Config.LockDir is empty.
const (
	RunLockDir = "/run/lock"
	VarLockDir = "/var/lock"
)

// NoLock as Config.LockDir takes no lock file (TIOCEXCL is still set).
const NoLock = "-"

// DefaultLockDir returns /run/lock, or /var/lock where /run/lock is absent,
// or "" when neither exists.
func DefaultLockDir() string {
	for _, d := range []string{RunLockDir, VarLockDir} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return ""
}

// LockFile is the UUCP lock file of device in dir: LCK.. and the name of
// the device it really is, below /dev with "/" as "_" (/dev/ttyUSB0 →
// LCK..ttyUSB0, /dev/pts/3 → LCK..pts_3, as lockdev names them). Symbolic
// links are followed first: /dev/serial/by-id/usb-FTDI… and /dev/ttyUSB0
// are one line, and must be one lock, or a technician naming the port one
// way beside a gateway configured the other way would be a second master.
func LockFile(dir, device string) string {
	return filepath.Join(dir, "LCK.."+lockName(device))
}

// lockName is the device's own name for its lock file.
func lockName(device string) string {
	real, err := filepath.EvalSymlinks(device)
	if err != nil {
		real = filepath.Clean(device) // not there (yet): as named
	}
	if rel, ok := strings.CutPrefix(real, "/dev/"); ok && rel != "" {
		return strings.ReplaceAll(rel, "/", "_")
	}
	return filepath.Base(real)
}

// BusyError is returned by Open when another program holds the port. It
// matches ErrPortBusy with errors.Is.
type BusyError struct {
	Port     string // the device asked for
	LockFile string // "" when the kernel's exclusive mode refused the open
	PID      int    // the holder's process id; 0 if unknown
	Command  string // the holder's command line from /proc, "" if unreadable
}

func (e *BusyError) Error() string {
	who := "another program"
	switch {
	case e.Command != "" && e.PID > 0:
		who = fmt.Sprintf("%q (PID %d)", e.Command, e.PID)
	case e.PID > 0:
		who = fmt.Sprintf("PID %d", e.PID)
	}
	if e.LockFile != "" {
		return fmt.Sprintf("modbus: port %s is held by %s (lock file %s)", e.Port, who, e.LockFile)
	}
	return fmt.Sprintf("modbus: port %s is held by %s (the terminal is in exclusive mode)", e.Port, who)
}

// Is makes errors.Is(err, ErrPortBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrPortBusy }

// portLock is a held UUCP lock file.
type portLock struct {
	path string
}

// lockPort takes the lock file of device in dir. A lock whose PID is no
// longer running (a gateway killed with -9, a crashed tool) is stale and
// taken over; a lock file that cannot be read as a PID is taken over too,
// as lockdev does, since nothing could tell who holds it.
func lockPort(dir, device string) (*portLock, error) {
	path := LockFile(dir, device)
	content := fmt.Sprintf("%10d\n", os.Getpid())
	err := createExclusive(dir, path, content)
	if err == nil {
		return &portLock{path: path}, nil
	}
	if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("modbus: lock %s: %w (check that the lock directory exists and is writable: "+
			"under systemd, ReadWritePaths must name it)", path, err)
	}
	if busy := holder(device, path); busy != nil {
		return nil, busy
	}
	// Stale. Two programs finding it stale at once must not both take it
	// (one would remove the other's fresh lock): the takeover is done under
	// an flock of a file beside it, and the lock is looked at again there.
	guard, err := os.OpenFile(path+".takeover", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("modbus: take over stale lock %s: %w", path, err)
	}
	defer guard.Close() // releases the flock
	if err := unix.Flock(int(guard.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("modbus: take over stale lock %s: %w", path, err)
	}
	if busy := holder(device, path); busy != nil {
		return nil, busy // taken over by another program while this one waited
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("modbus: remove stale lock %s: %w", path, err)
	}
	if err := createExclusive(dir, path, content); err != nil {
		if errors.Is(err, os.ErrExist) { // a program that ignores the guard
			if busy := holder(device, path); busy != nil {
				return nil, busy
			}
		}
		return nil, fmt.Errorf("modbus: lock %s: %w", path, err)
	}
	return &portLock{path: path}, nil
}

// holder returns the BusyError of a lock file held by a running process,
// or nil when the lock is stale (its PID gone or unreadable) or gone.
func holder(device, path string) *BusyError {
	pid, ok := readLockPID(path)
	if ok && processAlive(pid) {
		return &BusyError{Port: device, LockFile: path, PID: pid, Command: commandLine(pid)}
	}
	return nil
}

// createExclusive writes content to a temporary file in dir and links it
// to path: the lock appears whole or not at all, so a reader never sees a
// lock file without its PID.
func createExclusive(dir, path, content string) error {
	tmp, err := os.CreateTemp(dir, ".LTMP.")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	// Readable by every program that wants to know who holds the port.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// readLockPID reads a lock file's PID: HDB UUCP's ten ASCII characters, or
// the binary int some old programs wrote.
func readLockPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		return pid, true
	}
	if len(b) == 4 {
		pid := int(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
		return pid, pid > 0
	}
	return 0, false
}

// processAlive reports whether pid runs: kill(pid, 0) succeeds, or fails
// only for want of permission (another user's process).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// commandLine is pid's command line as ps shows it, "" if unreadable.
func commandLine(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// unlock removes the lock file if it still holds this process's PID: one
// that was taken over (by hand, or after this process was thought dead) is
// not ours to remove.
func (l *portLock) unlock() error {
	if l == nil {
		return nil
	}
	if pid, ok := readLockPID(l.path); ok && pid != os.Getpid() {
		return nil
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("modbus: remove lock %s: %w", l.path, err)
	}
	return nil
}

// exclusive puts the terminal at device into exclusive mode (TIOCEXCL)
// through an fd of its own, which it returns: tarm/serial does not give out
// its fd, and the mode holds for as long as the terminal stays open. The
// caller closes the fd after closing the port.
func exclusive(device string) (*os.File, error) {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("exclusive mode: %w", err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.TIOCEXCL, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("exclusive mode: TIOCEXCL on %s: %w", device, err)
	}
	return f, nil
}

// Exclusive reports whether the terminal at device is in exclusive mode
// (TIOCGEXCL), for tests and diagnostics.
func Exclusive(device string) (bool, error) {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if errors.Is(err, syscall.EBUSY) {
		return true, nil // refused to a user other than root: exclusive
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	v, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGEXCL)
	if err != nil {
		return false, fmt.Errorf("TIOCGEXCL on %s: %w", device, err)
	}
	return v != 0, nil
}
