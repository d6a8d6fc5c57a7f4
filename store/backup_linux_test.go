package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"mallgrid/billing"
)

// The database's path names a file throughout a restore: the current file
// is kept aside by a second name and the backup renamed over it, so the
// directory never loses the name (no IN_DELETE or IN_MOVED_FROM of it) —
// a gateway starting meanwhile never finds the file missing and starts a
// new ledger or refuses to start.
func TestRestore_PathNeverMissing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db := openDaemon(t, path)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	bak := filepath.Join(t.TempDir(), "bak.db")
	if err := backupTo(db, bak); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_DELETE|syscall.IN_MOVED_FROM|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	done, err := Restore(path, bak, RestoreOptions{Now: tRestore})
	if err != nil {
		t.Fatal(err)
	}
	if done.KeptAs == "" {
		t.Fatal("nothing kept aside; want the current file")
	}

	base := filepath.Base(path)
	installed := false
	for _, ev := range dirEvents(t, fd) {
		if ev.name != base {
			continue
		}
		switch {
		case ev.mask&(syscall.IN_DELETE|syscall.IN_MOVED_FROM) != 0:
			t.Errorf("%s left the directory during the restore (event %#x); want it there throughout", base, ev.mask)
		case ev.mask&syscall.IN_MOVED_TO != 0:
			installed = true
		}
	}
	if !installed {
		t.Errorf("no rename onto %s seen; want the backup renamed over it", base)
	}
	openDaemon(t, path)
}

type dirEvent struct {
	mask uint32
	name string
}

// dirEvents reads the events queued on the inotify descriptor fd.
func dirEvents(t *testing.T, fd int) []dirEvent {
	t.Helper()
	var (
		events []dirEvent
		buf    = make([]byte, 64<<10)
	)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return events
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			raw := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if raw.Mask&syscall.IN_Q_OVERFLOW != 0 {
				t.Fatal("inotify queue overflowed: events lost")
			}
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(raw.Len)]
			events = append(events, dirEvent{mask: raw.Mask, name: string(bytes.TrimRight(name, "\x00"))})
			off += syscall.SizeofInotifyEvent + int(raw.Len)
		}
	}
}
