package store

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockRetry is how often a held lock is tried again, as bbolt does.
const lockRetry = 50 * time.Millisecond

// lockFile takes the lock bbolt takes on a database file (flock: exclusive
// for a read-write open, shared for a read-only one) on f, trying until
// timeout has passed (0: once), and returns ErrLocked if another process
// holds it. Closing f releases it.
func lockFile(f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if !time.Now().Before(deadline) {
			return ErrLocked
		}
		time.Sleep(lockRetry)
	}
}
