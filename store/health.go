package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// health is what the database's writes have shown: whether its path still
// names the open file, and whether the last write failed for lack of space.
type health struct {
	mu      sync.Mutex
	file    os.FileInfo // the open file, as it was at Open; nil for a read-only Open
	lost    error       // wraps ErrUnavailable; once set, never cleared
	noSpace error       // wraps ErrNoSpace; cleared by the next committed write
}

// update runs fn in a read-write transaction. Every write of the store goes
// through it, so that each one is refused once the file is gone from its
// path, and each one's outcome is the database's write health: a write that
// fails for lack of space makes Health fail until a write commits again.
func (db *DB) update(fn func(*bolt.Tx) error) error {
	return db.commit(fn, true)
}

// commit is update; checked false skips the file check, for RecordLoss only.
func (db *DB) commit(fn func(*bolt.Tx) error, checked bool) error {
	if checked {
		if err := db.checkFile(); err != nil {
			return err
		}
	}
	err := protect(func() error { return db.bolt.Update(fn) })
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	switch {
	case err == nil:
		db.health.noSpace = nil
	case noSpace(err):
		err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		db.health.noSpace = err
	}
	return err
}

// view runs fn in a read-only transaction; every read of the store goes
// through it.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	return protect(func() error { return db.bolt.View(fn) })
}

// protect runs fn, turning a panic into ErrCorrupt. bbolt panics on some
// damaged pages, and a page it reads from a damaged mapping can fault;
// SetPanicOnFault makes such a fault a panic too (for this goroutine)
// rather than the end of the process. Open checks every page before bbolt
// sees the file, so this is for damage done after it was opened.
func protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}

// noSpace says whether err is a write that failed for lack of disk: the
// disk or a quota is full, or a file size limit was reached. bbolt formats
// the error of growing the file with %s, which loses the errno, so its text
// is matched too.
func noSpace(err error) bool {
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG} {
		if errors.Is(err, e) || strings.Contains(err.Error(), e.Error()) {
			return true
		}
	}
	return false
}

// checkFile returns the ErrUnavailable the database's file is in: whether
// its path still names the file that is open, compared by device and inode.
// A path that names no file, or another file, will not be the database the
// next time the gateway starts, so what is written now would be lost
// there. Once it has failed it keeps failing. Another failure of the stat
// (a permission, an I/O error) says nothing about which file the path
// names; the write itself fails if the disk does.
func (db *DB) checkFile() error {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	if db.health.lost != nil || db.health.file == nil {
		return db.health.lost
	}
	cur, err := os.Stat(db.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		db.health.lost = fmt.Errorf("%w: %s was deleted or renamed", ErrUnavailable, db.path)
	case err != nil:
		return nil
	case !os.SameFile(cur, db.health.file):
		db.health.lost = fmt.Errorf("%w: %s is now another file", ErrUnavailable, db.path)
	}
	return db.health.lost
}

// Health returns nil while the database takes writes. Otherwise it returns
// why not: ErrUnavailable (the file is gone from its path; until the
// gateway is restarted) or ErrNoSpace (the last write failed for lack of
// space; until a write commits again), wrapped with the details.
func (db *DB) Health() error {
	if err := db.checkFile(); err != nil {
		return err
	}
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	return db.health.noSpace
}

// WatchFile checks every interval that the database's path still names the
// open file, until ctx ends. The first time it does not, writes are refused
// from then on (ErrUnavailable) and lost is called, once, with the reason;
// WatchFile then returns. Writes check as well, so none lands in the lost
// file between two checks; the watch is what notices when nothing writes.
func (db *DB) WatchFile(ctx context.Context, interval time.Duration, lost func(reason error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := db.checkFile(); err != nil {
			lost(err)
			return
		}
	}
}

// RecordLoss stores e, the event that tells of the loss of the database's
// file, in the file still open although every other write is refused: the
// event then has an id in the one sequence the live event stream orders
// by. The file is no longer at its path, so the event goes with it; the
// log is its lasting record.
func (db *DB) RecordLoss(e Event) (Event, error) {
	var out []Event
	err := db.commit(func(tx *bolt.Tx) error {
		var err error
		out, err = appendEvents(tx, []Event{e})
		return err
	}, false)
	if err != nil {
		return Event{}, err
	}
	return out[0], nil
}
