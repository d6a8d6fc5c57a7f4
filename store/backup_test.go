package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

var tRestore = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// openDaemon opens a database the way the daemon does: with its marker.
func openDaemon(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{Marker: true, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestWriteBackup_SizeAndIdentity(t *testing.T) {
	db, _ := openTemp(t)
	for i := range 3 {
		if _, _, err := db.PostTopUp(topUp("T-1", "PAY-"+strconv.Itoa(i), billing.Yuan)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	var announced int64
	n, err := db.WriteBackup(&buf, func(size int64) error { announced = size; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != announced || int64(buf.Len()) != n {
		t.Errorf("announced %d, wrote %d, buffer %d; want all equal", announced, n, buf.Len())
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != db.ID() || info.Schema != SchemaVersion || info.Entries != 3 || info.Newest == nil || info.Newest.Ref != "PAY-2" {
		t.Errorf("Inspect(copy) = %+v; want database %s, schema %d, 3 entries, newest PAY-2", info, db.ID(), SchemaVersion)
	}
	// A size callback's error ends the backup before anything is written.
	buf.Reset()
	if _, err := db.WriteBackup(&buf, func(int64) error { return errors.New("no room") }); err == nil || buf.Len() != 0 {
		t.Errorf("WriteBackup with a failing header: %v, %d bytes; want the error and nothing written", err, buf.Len())
	}
}

// setSchema writes a schema version into a closed file by hand.
func setSchema(t *testing.T, path string, v int) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, uint32(v)))
	})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// The message for a file of a newer schema names both versions and what
// to do, for run (read-write Open), verify (read-only Open) and backup or
// restore (Inspect) alike.
func TestSchemaTooNew_Message(t *testing.T) {
	db, path := openTemp(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	setSchema(t, path, SchemaVersion+1)
	want := fmt.Sprintf("the file is schema %d, this gateway knows schema %d at most; install the newer mallgrid package again, or restore a backup taken before the upgrade", SchemaVersion+1, SchemaVersion)
	for name, open := range map[string]func() error{
		"Open":          func() error { _, err := Open(path, Options{}); return err },
		"Open readonly": func() error { _, err := Open(path, Options{ReadOnly: true}); return err },
		"Inspect":       func() error { _, err := Inspect(path); return err },
		"Restore": func() error {
			_, err := Restore(filepath.Join(t.TempDir(), "m.db"), path, RestoreOptions{Now: tRestore})
			return err
		},
	} {
		err := open()
		if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want ErrSchemaTooNew saying %q", name, err, want)
		}
	}
}

// A restore keeps the current file aside, installs the backup at the path
// with the marker naming it, and the daemon's Open takes it.
func TestRestore_SameDatabase(t *testing.T) {
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
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-2", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	id := db.ID()

	// While the daemon holds the file: refused, nothing changed.
	_, err := Restore(path, bak, RestoreOptions{Now: tRestore})
	if !errors.Is(err, ErrLocked) {
		t.Errorf("Restore under a running gateway: %v; want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checked := ""
	done, err := Restore(path, bak, RestoreOptions{Now: tRestore, Check: func(p string) error { checked = p; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if checked == "" || checked == path || checked == bak {
		t.Errorf("Check ran on %q; want the copy about to be installed", checked)
	}
	if done.ID != id || done.KeptAs != path+".replaced-20261201T100000Z" || done.Upgraded || done.Entries != 1 {
		t.Errorf("Restore = %+v; want database %s, kept aside as .replaced-20261201T100000Z, 1 entry", done, id)
	}
	if info, err := Inspect(done.KeptAs); err != nil || info.Entries != 2 {
		t.Errorf("the file kept aside: %+v, %v; want the current database with its 2 entries", info, err)
	}
	db = openDaemon(t, path)
	if got := db.ID(); got != id {
		t.Errorf("restored database %s; want %s", got, id)
	}
	if n := countEntries(t, db); n != 1 {
		t.Errorf("restored database holds %d entries; want the backup's 1", n)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.restoring-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func countEntries(t *testing.T, db *DB) int {
	t.Helper()
	n := 0
	if err := db.EachEntry(func(Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A backup of another database than the marker names is refused without
// Force; with it, the marker is written to name the backup. A check that
// fails, and a damaged backup, leave everything as it was.
func TestRestore_Refusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db := openDaemon(t, path)
	cur := db.ID()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	otherPath := filepath.Join(t.TempDir(), "other.db")
	other, err := Open(otherPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	oid := other.ID()
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	_, err = Restore(path, otherPath, RestoreOptions{Now: tRestore})
	if !errors.Is(err, ErrReplaced) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("Restore of another database: %v; want ErrReplaced naming --force", err)
	}
	_, err = Restore(path, otherPath, RestoreOptions{Now: tRestore, Force: true, Check: func(string) error { return errors.New("ledger violations") }})
	if err == nil || !strings.Contains(err.Error(), "ledger violations") {
		t.Errorf("Restore failing its check: %v", err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	if err := os.WriteFile(damaged, bytes.Repeat([]byte{0xa5}, 16384), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(path, damaged, RestoreOptions{Now: tRestore, Force: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Restore of a damaged file: %v; want ErrCorrupt", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a refused restore changed the database")
	}
	if m, _ := readMarker(MarkerPath(path)); m != cur {
		t.Errorf("a refused restore changed the marker to %s", m)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 2 {
		t.Errorf("files in the directory after refusals: %v; want the database and its marker", left)
	}

	done, err := Restore(path, otherPath, RestoreOptions{Now: tRestore, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := readMarker(MarkerPath(path)); m != oid || done.ID != oid {
		t.Errorf("marker %s, restored %s after a forced restore; want %s", m, done.ID, oid)
	}
	openDaemon(t, path)
}

// A restore where there is no database (lost disk, new box) installs it.
func TestRestore_NoDatabase(t *testing.T) {
	src, bak := openTemp(t)
	id := src.ID()
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	done, err := Restore(path, bak, RestoreOptions{Now: tRestore})
	if err != nil {
		t.Fatal(err)
	}
	if done.KeptAs != "" || done.ID != id {
		t.Errorf("Restore = %+v; want nothing kept aside, database %s", done, id)
	}
	if _, err := os.Stat(MarkerPath(path)); err != nil {
		t.Errorf("marker: %v", err)
	}
	if _, err := os.Stat(bak); errors.Is(err, fs.ErrNotExist) {
		t.Error("the backup file is gone; want it only read")
	}
	openDaemon(t, path)
}

// BeforeUpgrade is called for a file of an older schema, before it is
// upgraded, and not for a current one.
func TestOpen_BeforeUpgrade(t *testing.T) {
	db, path := openTemp(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	setSchema(t, path, SchemaVersion-1)
	var from, seen int
	snap := filepath.Join(t.TempDir(), "snap.db")
	hook := func(v int, db *DB) error {
		from = v
		seen, _ = db.SchemaVersion()
		return backupTo(db, snap)
	}
	db, err := Open(path, Options{BeforeUpgrade: hook})
	if err != nil {
		t.Fatal(err)
	}
	if from != SchemaVersion-1 || seen != SchemaVersion-1 {
		t.Errorf("BeforeUpgrade(%d) saw schema %d; want %d, before the upgrade", from, seen, SchemaVersion-1)
	}
	if info, err := Inspect(snap); err != nil || info.Schema != SchemaVersion-1 || info.ID != db.ID() {
		t.Errorf("snapshot before the upgrade: %+v, %v; want schema %d, database %s", info, err, SchemaVersion-1, db.ID())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	from = 0
	db, err = Open(path, Options{BeforeUpgrade: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if from != 0 {
		t.Errorf("BeforeUpgrade called for a current file (from %d)", from)
	}
	// A failed hook stops Open with the file not upgraded.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	setSchema(t, path, SchemaVersion-1)
	if _, err := Open(path, Options{BeforeUpgrade: func(int, *DB) error { return errors.New("disk full") }}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Open with a failing hook: %v", err)
	}
	if info, _ := Inspect(path); info.Schema != SchemaVersion-1 {
		t.Errorf("schema after a failed hook %d; want %d, not upgraded", info.Schema, SchemaVersion-1)
	}
}

// Restored as root, the database and its marker keep the owner of the
// file they replace: the gateway's user can open them.
func TestRestore_KeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db := openDaemon(t, path)
	bak := filepath.Join(t.TempDir(), "bak.db")
	if err := backupTo(db, bak); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 4242, 4343 // the gateway's user
	for _, p := range []string{path, MarkerPath(path)} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Restore(path, bak, RestoreOptions{Now: tRestore}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, MarkerPath(path)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != uid || s.Gid != gid {
			t.Errorf("%s owned by %d:%d; want %d:%d", p, s.Uid, s.Gid, uid, gid)
		}
	}
}

// backupTo writes a copy of db to path atomically, as a snapshot does.
func backupTo(db *DB, path string) error {
	return WriteFileAtomic(path, func(f *os.File) error {
		_, err := db.WriteBackup(f, nil)
		return err
	})
}

// A restore holds the database's lock from its first check until the
// marker names the restored file: a gateway started meanwhile waits, then
// runs on the restored database — not on the file kept aside, and without
// refusing the restored one as another database than the old marker named.
func TestRestore_HoldsLockUntilMarker(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db := openDaemon(t, path)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	other, bak := openTemp(t)
	oid := other.ID()
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}

	type opened struct {
		db  *DB
		err error
	}
	started := make(chan opened, 1)
	check := func(string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := lockFile(f, true, 0); !errors.Is(err, ErrLocked) {
			t.Errorf("the database's lock during the check: %v; want held by the restore (ErrLocked)", err)
		}
		go func() {
			db, err := Open(path, Options{Marker: true, LockTimeout: 20 * time.Second})
			started <- opened{db, err}
		}()
		time.Sleep(300 * time.Millisecond) // the gateway reaches the lock and waits
		return nil
	}
	done, err := Restore(path, bak, RestoreOptions{Now: tRestore, Force: true, Check: check})
	if err != nil {
		t.Fatal(err)
	}
	var gw opened
	select {
	case gw = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway started during the restore never opened the database")
	}
	if gw.err != nil {
		t.Fatalf("the gateway started during the restore: %v; want it on the restored database", gw.err)
	}
	defer gw.db.Close()
	if gw.db.ID() != oid || done.ID != oid {
		t.Errorf("the gateway runs on database %s (restored %s); want the restored %s", gw.db.ID(), done.ID, oid)
	}
	if n := countEntries(t, gw.db); n != 0 {
		t.Errorf("the gateway's database holds %d entries; want the backup's none (the current file's 1 is kept aside)", n)
	}
	if !namesFile(path, gw.db.health.file) {
		t.Error("the gateway holds a file that is no longer at the path")
	}
}

// With the database's file gone (deleted or moved) while a gateway still
// runs on it, the file lock shows nothing; the gateway's control socket
// answering refuses the restore.
func TestRestore_GatewayOnMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db := openDaemon(t, path)
	bak := filepath.Join(t.TempDir(), "bak.db")
	if err := backupTo(db, bak); err != nil {
		t.Fatal(err)
	}
	socket := path + ".ctl"
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = Restore(path, bak, RestoreOptions{Now: tRestore, Socket: socket})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), socket) {
		t.Errorf("Restore while a gateway answers on its socket: %v; want ErrLocked naming %s", err, socket)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused restore put a file at the path (%v)", err)
	}

	// Stopped, its socket gone: the restore goes ahead.
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(path, bak, RestoreOptions{Now: tRestore, Socket: socket}); err != nil {
		t.Fatal(err)
	}
	openDaemon(t, path)
}

// Where there is no marker, the database at the path says which one
// belongs there: a backup of another is refused without Force, one of the
// same database is taken, and so is any backup over a damaged file.
func TestRestore_NoMarkerComparesCurrentFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	cur, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	same := filepath.Join(t.TempDir(), "same.db")
	if err := backupTo(cur, same); err != nil {
		t.Fatal(err)
	}
	cid := cur.ID()
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	other, otherPath := openTemp(t)
	oid := other.ID()
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	_, err = Restore(path, otherPath, RestoreOptions{Now: tRestore})
	if !errors.Is(err, ErrReplaced) || !strings.Contains(err.Error(), cid) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("Restore of another database over one without a marker: %v; want ErrReplaced naming %s and --force", err, cid)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a refused restore changed the database")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
		t.Errorf("files in the directory after the refusal: %v; want the database alone", left)
	}
	if done, err := Restore(path, same, RestoreOptions{Now: tRestore}); err != nil || done.ID != cid {
		t.Errorf("Restore of the same database without a marker = %+v, %v; want database %s", done, err, cid)
	}

	// Over a damaged file there is no database to compare with.
	if err := os.Remove(MarkerPath(path)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xa5}, 16384), 0o600); err != nil {
		t.Fatal(err)
	}
	if done, err := Restore(path, otherPath, RestoreOptions{Now: tRestore}); err != nil || done.ID != oid {
		t.Errorf("Restore over a damaged file without a marker = %+v, %v; want database %s", done, err, oid)
	}
}

// From the moment the restored file is at the path until the marker names
// it, that file's lock is held too: a gateway starting then waits, and
// runs on it once the marker is written — before, it found the restored
// file unlocked, checked it against the old marker and refused it as
// another database.
func TestRestore_LocksRestoredFileUntilMarker(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db := openDaemon(t, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	other, bak := openTemp(t)
	oid := other.ID()
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}

	type opened struct {
		db  *DB
		err error
	}
	started := make(chan opened, 1)
	var early *opened // the gateway's Open, if it returned before the marker was written
	installed := func() {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		if err := lockFile(f, true, 0); !errors.Is(err, ErrLocked) {
			t.Errorf("the restored file's lock before the marker names it: %v; want held by the restore (ErrLocked)", err)
		}
		_ = f.Close() // releases the lock if it was taken here
		go func() {
			db, err := Open(path, Options{Marker: true, LockTimeout: 20 * time.Second})
			started <- opened{db, err}
		}()
		select {
		case gw := <-started:
			early = &gw
		case <-time.After(500 * time.Millisecond): // the gateway reaches the lock and waits
		}
	}
	done, err := Restore(path, bak, RestoreOptions{Now: tRestore, Force: true, installed: installed})
	if err != nil {
		t.Fatal(err)
	}
	gw := early
	if gw == nil {
		select {
		case r := <-started:
			gw = &r
		case <-time.After(30 * time.Second):
			t.Fatal("the gateway started during the restore never opened the database")
		}
	}
	if gw.err != nil {
		t.Fatalf("the gateway started before the marker was written: %v; want it on the restored database", gw.err)
	}
	defer gw.db.Close()
	if gw.db.ID() != oid || done.ID != oid {
		t.Errorf("the gateway runs on database %s (restored %s); want the restored %s", gw.db.ID(), done.ID, oid)
	}
}

// A file put at the path while a read-write Open waits for the lock of the
// one it opened (a restore that took the lock after Open's checks, then
// put the backup in place) is the one Open runs on: not the file it
// opened, now no longer at the path.
func TestOpen_FileReplacedWhileWaitingForLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db := openDaemon(t, path)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(dir, "next.db") // the same database, one entry
	if err := backupTo(db, next); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-2", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	replaced := 0
	opening := func(f *os.File) {
		if replaced++; replaced > 1 {
			return
		}
		// The lock of the file Open has just opened, taken as a restore
		// does; the next file put at the path; then the lock released.
		held, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		if err := lockFile(held, true, 0); err != nil {
			t.Errorf("the lock of the file Open opened: %v; want free until bbolt takes it", err)
		}
		if err := os.Rename(next, path); err != nil {
			t.Error(err)
		}
		go func() {
			time.Sleep(200 * time.Millisecond) // Open waits for the lock meanwhile
			_ = held.Close()
		}()
	}
	db, err := Open(path, Options{Marker: true, LockTimeout: 20 * time.Second, opening: opening})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if replaced == 0 {
		t.Fatal("Open never called its opening hook")
	}
	if !namesFile(path, db.health.file) {
		t.Error("Open runs on a file that is no longer at the path")
	}
	if n := countEntries(t, db); n != 1 {
		t.Errorf("Open's database holds %d entries; want the file put at the path, with 1", n)
	}
}
