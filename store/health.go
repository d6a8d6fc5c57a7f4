package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// health is what the database's writes and checks have shown: whether its
// path still names the open file, whether the file still holds what this
// process committed, and whether the disk has room.
type health struct {
	mu   sync.Mutex
	file os.FileInfo // the open file, as it was at Open; nil for a read-only Open
	// fd is bbolt's own handle on the file (nil for a read-only Open): its
	// size and its meta pages are what bbolt's mapping shows.
	fd       *os.File
	pageSize int64
	size     int64  // the file's size after the last commit: bbolt never shrinks it
	txid     uint64 // the newest valid meta page after the last commit …
	sum      uint64 // … and its checksum
	pending  uint64 // the write transaction being committed; 0 when none is
	lost     error  // wraps ErrUnavailable: the path names another file or none; reads go on
	// broken wraps ErrUnavailable: the file was changed by someone else, or
	// bbolt faulted. bbolt is never called again: its mapping is not to be
	// trusted, and a fault may have left its internal locks held.
	broken  error
	down    chan struct{} // closed when broken is set
	noSpace error         // wraps ErrNoSpace; cleared by a committed write with the reserve free
	events  uint64        // the last event id committed (the events bucket's sequence)
}

// writeGate lets one write through at a time (bbolt lets only one anyway),
// so that the meta page a commit leaves is known to be its own, and so
// that a write waiting its turn gives up once the database is broken
// rather than wait on bbolt's locks for ever.
type writeGate chan struct{}

// update runs fn in a read-write transaction. Every write of the store goes
// through it, so that each one is refused once the file is gone from its
// path, and each one's outcome is the database's write health: a write that
// fails for lack of space makes Health fail until a write commits again
// with the reserve free.
func (db *DB) update(fn func(*bolt.Tx) error) error {
	return db.commit(fn, true)
}

// commit is update; checked false skips the path check (the file may be
// gone from its path, but it is still the gateway's), for RecordLoss only.
func (db *DB) commit(fn func(*bolt.Tx) error, checked bool) error {
	check := db.checkContent
	if checked {
		check = db.checkFile // the content, then the path
	}
	if err := check(); err != nil {
		return err
	}
	select {
	case db.gate <- struct{}{}:
	case <-db.health.down:
		return db.brokenErr()
	}
	defer func() { <-db.gate }()
	if err := db.checkContent(); err != nil { // it may have broken while this write waited
		return err
	}
	var events uint64
	err := db.call(true, func(tx *bolt.Tx) error {
		db.health.mu.Lock()
		db.health.pending = uint64(tx.ID())
		db.health.mu.Unlock()
		if err := fn(tx); err != nil {
			return err
		}
		if b := tx.Bucket(bucketEvents); b != nil {
			events = b.Sequence()
		}
		return nil
	})
	db.committed(err == nil)
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	switch {
	case err == nil:
		db.health.events = events
		if db.health.noSpace != nil && db.lowSpace() == nil {
			db.health.noSpace = nil
		}
	case noSpace(err):
		err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		db.health.noSpace = err
	}
	return err
}

// view runs fn in a read-only transaction; every read of the store goes
// through it. A file changed behind the gateway's back is refused before
// bbolt reads it: a file cut short faults where bbolt reads past its end.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	if err := db.checkContent(); err != nil {
		return err
	}
	return db.call(false, fn)
}

// errAbandoned is what a transaction returns that its caller stopped
// waiting for before it began.
var errAbandoned = errors.New("store: abandoned: the database broke while this waited")

// call runs fn in a read-write (writable) or read-only bbolt transaction,
// on a goroutine of its own, with protectPanic; after a panic the database
// is broken, and nothing calls bbolt again.
//
// A fault inside bbolt can leave its internal locks held, and a call that
// passed the checks just before would then wait for them for ever — a
// poll cycle or a request that never returns, a shutdown that hangs. So
// call waits for the transaction or for the database to break, whichever
// comes first. A transaction given up on before it began never runs fn;
// one already running fn is waited for (fn only reads and writes pages
// already mapped: it ends, or faults).
func (db *DB) call(writable bool, fn func(*bolt.Tx) error) error {
	var (
		mu        sync.Mutex
		abandoned bool
	)
	guarded := func(tx *bolt.Tx) error {
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			return errAbandoned
		}
		return fn(tx)
	}
	type result struct {
		panicked bool
		err      error
	}
	done := make(chan result, 1)
	go func() {
		panicked, err := protectPanic(func() error {
			if writable {
				return db.bolt.Update(guarded)
			}
			return db.bolt.View(guarded)
		})
		done <- result{panicked, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-db.health.down:
		mu.Lock()
		abandoned = true
		mu.Unlock()
		select {
		case r = <-done: // it ended meanwhile
		default:
			return db.brokenErr()
		}
	}
	if !r.panicked {
		return r.err
	}
	if db.health.fd == nil { // read-only, or still opening: the file is simply damaged
		db.breakDown(r.err)
		return r.err
	}
	// bbolt checked every page at open: a fault now means the file was
	// changed under it, and the control room is told so, whichever of this
	// and the file watch sees it first.
	err := fmt.Errorf("%w: %s was changed behind the gateway's back: %w", ErrUnavailable, db.path, r.err)
	db.breakDown(err)
	return err
}

// protectPanic runs fn, turning a panic into ErrCorrupt. bbolt panics on
// some damaged pages, and a page it reads from a damaged mapping (a file
// cut short under it) can fault; SetPanicOnFault makes such a fault a
// panic too (for this goroutine) rather than the end of the process. Open
// checks every page before bbolt sees the file, so this is for damage done
// after it was opened.
func protectPanic(fn func() error) (panicked bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			err = fmt.Errorf("%w: bbolt failed reading the file: %v", ErrCorrupt, r)
		}
	}()
	return false, fn()
}

// breakDown marks the database broken with err, once.
func (db *DB) breakDown(err error) {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	db.breakLocked(err)
}

func (db *DB) breakLocked(err error) {
	if db.health.broken != nil {
		return
	}
	db.health.broken = err
	if db.health.lost == nil {
		db.health.lost = err
	}
	close(db.health.down)
}

func (db *DB) brokenErr() error {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	return db.health.broken
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
// its path still names the file that is open, compared by device and inode,
// and whether that file still holds what this process committed (see
// checkContent). A path that names no file, or another file, will not be
// the database the next time the gateway starts, so what is written now
// would be lost there. Once it has failed it keeps failing. Another failure
// of the stat (a permission, an I/O error) says nothing about which file
// the path names; the write itself fails if the disk does.
func (db *DB) checkFile() error {
	if err := db.checkContent(); err != nil {
		return err
	}
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

// checkContent returns the broken state of the database: whether the open
// file (wherever its path now points) still holds what this process
// committed. bbolt maps the file and trusts it: a file emptied or cut
// short (`: > FILE`) faults bbolt where it reads past the end, and a file
// overwritten in place (a backup copied over it) is another database under
// bbolt's in-memory freelist, which a write would corrupt. So the file must
// be no shorter than after the last commit (bbolt never shrinks it), and
// its newest meta page must be the one the last commit left, or the one
// the commit under way is writing. Anything else means someone else wrote
// the file: the database is broken, for good.
func (db *DB) checkContent() error {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	if db.health.broken != nil || db.health.fd == nil {
		return db.health.broken
	}
	if err := db.contentLocked(); err != nil {
		db.breakLocked(fmt.Errorf("%w: %s was changed behind the gateway's back: %w", ErrUnavailable, db.path, err))
	}
	return db.health.broken
}

// observeLocked reads the open file's size and newest meta page, and
// fails if it shrank or has no valid meta page. ok is false when the file
// cannot be stat'ed: that says nothing about its content (a read or write
// fails if the disk does).
func (db *DB) observeLocked() (size int64, m meta, ok bool, err error) {
	h := &db.health
	st, serr := h.fd.Stat()
	if serr != nil {
		return 0, meta{}, false, nil
	}
	if st.Size() < h.size {
		return 0, meta{}, false, fmt.Errorf("it shrank from %d to %d bytes (emptied or cut short)", h.size, st.Size())
	}
	m, valid := db.newestMeta(st.Size())
	if !valid {
		return 0, meta{}, false, errors.New("neither meta page is valid")
	}
	return st.Size(), m, true, nil
}

func (db *DB) contentLocked() error {
	h := &db.health
	_, m, ok, err := db.observeLocked()
	switch {
	case err != nil || !ok:
		return err
	case m.txid == h.txid && m.sum == h.sum:
		return nil
	case h.pending != 0 && m.txid == h.pending:
		return nil
	}
	return fmt.Errorf("its newest transaction is %d (checksum %x); this gateway last committed %d (checksum %x) (overwritten)",
		m.txid, m.sum, h.txid, h.sum)
}

// newestMeta reads the two meta pages through the open file and returns
// the valid one with the higher transaction id.
func (db *DB) newestMeta(size int64) (meta, bool) {
	return (&pageWalk{r: db.health.fd, size: size}).newestMeta(db.health.pageSize)
}

// watchContent starts the content check on the open file (fd, bbolt's own
// handle) as it is now; each commit then moves it on.
func (db *DB) watchContent(fd *os.File) error {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	db.health.fd = fd
	db.health.pageSize = int64(db.bolt.Info().PageSize)
	return db.recordLocked(0)
}

// committed records what the write just finished left in the file: on
// success, its meta page; on failure, the meta page before it — or its
// own, where bbolt wrote the meta page and then failed to sync it.
func (db *DB) committed(ok bool) {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	id := db.health.pending
	db.health.pending = 0
	if db.health.fd == nil || db.health.broken != nil || id == 0 {
		return
	}
	want := id
	if !ok {
		want = 0 // either is fine; the content check below tells anything else
		if m, found := db.newestMeta(db.health.size); found && m.txid != id && (m.txid != db.health.txid || m.sum != db.health.sum) {
			db.breakLocked(fmt.Errorf("%w: %s was changed behind the gateway's back: its newest transaction is %d, not %d or %d",
				ErrUnavailable, db.path, m.txid, db.health.txid, id))
			return
		}
	}
	if err := db.recordLocked(want); err != nil {
		db.breakLocked(fmt.Errorf("%w: %s was changed behind the gateway's back: %w", ErrUnavailable, db.path, err))
	}
}

// recordLocked takes the file's size and newest meta page as what this
// process committed; want, unless 0, is the transaction that must be it.
func (db *DB) recordLocked(want uint64) error {
	size, m, ok, err := db.observeLocked()
	switch {
	case err != nil || !ok:
		return err
	case want != 0 && m.txid != want:
		return fmt.Errorf("its newest transaction is %d, where this gateway just committed %d (overwritten)", m.txid, want)
	}
	db.health.size, db.health.txid, db.health.sum = size, m.txid, m.sum
	return nil
}

// minReserve is the least free space Health asks of the database's file
// system.
const minReserve = 4 << 20

// reserve is the free space the database's file system must keep for
// Health to pass: twice the step by which bbolt grows the file next (up
// to the mapping's size while the file is small, then AllocSize, 16 MiB by
// default), and at least 4 MiB. Below it the next growth can fail, and on
// a full disk bbolt still commits whatever fits in pages it freed before
// (a poll cycle rewriting the latest readings), which says nothing about
// whether a top-up, which needs new pages, will.
func (db *DB) reserve() int64 {
	step := int64(db.bolt.AllocSize)
	if db.health.size < step {
		step = max(db.health.size, 32<<10) // the mapping at least doubles from here
	}
	return max(minReserve, 2*step)
}

// Reserve returns the free space the database's file system must keep
// for Health to pass (twice bbolt's next growth step, at least 4 MiB): a
// copy of the database written there, a snapshot, must leave it free.
func (db *DB) Reserve() int64 {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	return db.reserve()
}

// lowSpace returns an error wrapping ErrNoSpace while the database's file
// system has less than the reserve free (for the gateway's user: statfs's
// available blocks, without those kept for root). A failing statfs says
// nothing; a write fails if the disk does. Called with health.mu held.
func (db *DB) lowSpace() error {
	if db.health.fd == nil {
		return nil
	}
	free, err := db.free(filepath.Dir(db.path))
	if err != nil {
		return nil
	}
	if want := db.reserve(); free < want {
		return fmt.Errorf("%w: %d bytes free on the file system of %s, below the %d the gateway keeps in reserve",
			ErrNoSpace, free, db.path, want)
	}
	return nil
}

// statfsFree returns the bytes free for an unprivileged user on the file
// system of dir.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	// Bsize is an int32 on 32-bit ARM (armhf) and an int64 elsewhere.
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Health returns nil while the database takes writes. Otherwise it returns
// why not: ErrUnavailable (the file is gone from its path, or was changed
// behind the gateway's back; until the gateway is restarted) or ErrNoSpace
// (the last write failed for lack of space, or the file system has less
// free than the reserve; until a write commits with the reserve free
// again), wrapped with the details.
func (db *DB) Health() error {
	if err := db.checkFile(); err != nil {
		return err
	}
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	if db.health.noSpace != nil {
		return db.health.noSpace
	}
	return db.lowSpace()
}

// WatchFile checks every interval that the database's path still names the
// open file and that the file holds what the gateway committed, until ctx
// ends. The first time it does not, writes are refused from then on
// (ErrUnavailable) and lost is called, once, with the reason; WatchFile
// then returns. Writes check as well, so none lands in the lost file
// between two checks; the watch is what notices when nothing writes.
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

// Broken says whether the database's file was changed behind the gateway's
// back, or bbolt failed on it: then nothing can be read from it either, and
// Rescue has nothing sound to save.
func (db *DB) Broken() bool { return db.brokenErr() != nil }

// RecordLoss stores e, the event that tells of the loss of the database's
// file, in the file still open although every other write is refused: the
// event then has an id in the one sequence the live event stream orders
// by. The file is no longer at its path, so the event goes with it; the
// log is its lasting record. A broken database (see Broken) stores
// nothing: RecordLoss then returns the error with e given the id that
// follows the last event committed, so that the live stream still
// carries it.
func (db *DB) RecordLoss(e Event) (Event, error) {
	var out []Event
	err := db.commit(func(tx *bolt.Tx) error {
		var err error
		out, err = db.appendEvents(tx, []Event{e})
		return err
	}, false)
	if err != nil {
		db.health.mu.Lock()
		e.ID = db.health.events + 1
		db.health.mu.Unlock()
		return e, err
	}
	return out[0], nil
}

// RescueSuffix is added to the database's path, with the time, to name the
// copy Rescue writes.
const RescueSuffix = ".rescued-"

// Rescue writes the open database, as it is now, to PATH.rescued-TIME
// beside its path (TIME is now in UTC, 20060102T150405Z) and syncs it:
// once the file was deleted or replaced under the running gateway, what it
// acknowledged since the last backup is only in the open, unlinked file,
// gone when the gateway stops. It returns the copy's path. It refuses a
// broken database (ErrUnavailable): its content is not the gateway's.
func (db *DB) Rescue(now time.Time) (string, error) {
	if err := db.checkContent(); err != nil {
		return "", err
	}
	path := asideName(db.path, RescueSuffix, now)
	err := WriteFileAtomic(path, func(f *os.File) error {
		return db.view(func(tx *bolt.Tx) error {
			_, err := tx.WriteTo(f) // through the open file, not the path
			return err
		})
	})
	if err != nil {
		return "", fmt.Errorf("rescue to %s: %w", path, err)
	}
	return path, nil
}
