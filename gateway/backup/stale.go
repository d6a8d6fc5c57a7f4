package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// The temporary files this program makes, each as large as the database,
// that a process killed while writing one (systemd's SIGKILL at the end
// of TimeoutStopSec, a power cut) leaves behind. os.CreateTemp ends a
// name with digits; the control socket's temporary with 8 hex digits.
var (
	// Beside the database, named after it (store.WriteFileAtomic: the
	// marker, a rescued copy; store's restore: the backup being
	// installed; backup's OUT over the database, which older versions
	// allowed).
	staleBesideDB = `^%s(\.id|\.rescued-\d{8}T\d{6}Z(-\d+)?)?\.tmp-\d+$|^%[1]s\.restoring-\d+$`
	// Beside the database: the name a restore keeps the database under
	// (store.Restore, a hard link), still on the live file when the
	// restore was killed before it put the backup in place — a second
	// name of the database, no copy kept; removed only then.
	replacedAlias = `^%s\.replaced-\d{8}T\d{6}Z(-\d+)?$`
	// In the snapshot directory: a snapshot being written.
	staleSnapshot = regexp.MustCompile(`^(daily-|before-schema-\d+-)\d{8}T\d{6}Z(-\d+)?\.db\.tmp-\d+$`)
	// The control socket bound under a temporary name (Listen).
	staleSocket = regexp.MustCompile(`^\.ctl-[0-9a-f]{8}$`)
)

// RemoveStale removes the temporary files a killed gateway, backup or
// restore left beside the database at dbPath and in the snapshot
// directory snapDir: only names this program makes, only regular files,
// a file kept aside by a restore only if it is the database itself (the
// restore was killed before the swap), and a temporary control socket
// only if nothing answers on it. It is
// called before Listen, and removes nothing while a process answers on
// the control socket (SocketPath): the lock the caller holds is on the
// file at dbPath now, and a gateway still running on one moved or
// replaced there by hand may be writing these — a rescued copy among
// them, the only one of what it acknowledged since the last backup. It
// returns the paths removed, and the first error met (the others are
// still tried).
func RemoveStale(dbPath, snapDir string) ([]string, error) {
	if socket := SocketPath(dbPath); socketAnswers(socket) {
		return nil, fmt.Errorf("nothing removed: a process answers on the control socket %s "+
			"(a gateway still running on a database file moved away from %s?)", socket, dbPath)
	}
	dbDir := filepath.Dir(dbPath)
	besideDB := regexp.MustCompile(fmt.Sprintf(staleBesideDB, regexp.QuoteMeta(filepath.Base(dbPath))))
	aliasOfDB := regexp.MustCompile(fmt.Sprintf(replacedAlias, regexp.QuoteMeta(filepath.Base(dbPath))))
	dbFile, dbErr := os.Stat(dbPath)
	// sameAsDB says whether name is another name of the database file
	// itself (the same inode): removing it loses nothing.
	sameAsDB := func(name string) bool {
		st, err := os.Lstat(filepath.Join(dbDir, name))
		return dbErr == nil && err == nil && os.SameFile(st, dbFile)
	}
	var (
		removed []string
		first   error
	)
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if first == nil {
				first = err
			}
			return
		}
		removed = append(removed, path)
	}
	scan := func(dir string, match func(name string, mode fs.FileMode) bool) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && first == nil {
				first = err
			}
			return
		}
		for _, e := range entries {
			if match(e.Name(), e.Type()) {
				remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	scan(dbDir, func(name string, mode fs.FileMode) bool {
		switch {
		case mode.IsRegular():
			return besideDB.MatchString(name) || aliasOfDB.MatchString(name) && sameAsDB(name)
		case mode.Type() == fs.ModeSocket:
			return staleSocket.MatchString(name) && !answers(filepath.Join(dbDir, name))
		}
		return false
	})
	scan(snapDir, func(name string, mode fs.FileMode) bool {
		return mode.IsRegular() && staleSnapshot.MatchString(name)
	})
	return removed, first
}

// socketAnswers says whether a socket is at path and a process may be
// serving it: as answers, so a socket another user's gateway serves
// (EACCES) counts as answering — its temporaries are then left for the
// next start, which finds the socket Listen put in its place.
func socketAnswers(path string) bool {
	st, err := os.Lstat(path)
	return err == nil && st.Mode().Type() == fs.ModeSocket && answers(path)
}

// answers says whether a process accepts connections on the socket at
// path: one binding it now, about to rename it into place.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return true
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}
