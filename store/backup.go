package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// WriteBackup writes a consistent copy of the open database to w: the
// whole file as one read transaction sees it (bbolt's tx.WriteTo), so
// writes committed while it runs are not in it and do not wait for it.
// The copy is a database of its own with this one's identity, so the
// marker beside the path takes it back as this gateway's. If size is not
// nil it is called first with the copy's exact length (a stream's header);
// an error from it ends the backup before anything is written. It returns
// the bytes written, and ErrUnavailable for a broken database.
func (db *DB) WriteBackup(w io.Writer, size func(int64) error) (int64, error) {
	var n int64
	err := db.view(func(tx *bolt.Tx) error {
		if size != nil {
			if err := size(tx.Size()); err != nil {
				return err
			}
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup %s: %w", db.path, err)
	}
	return n, nil
}

// Info is what Inspect found in a database file.
type Info struct {
	Path   string
	Size   int64  // bytes
	ID     string // the database's identity; "" for a file from before identities
	Schema int    // the schema version recorded in it
	// Entries is how many ledger entries it holds (0 before schema 2), and
	// Newest the newest of them (nil for none).
	Entries int
	Newest  *Entry
}

// Inspect opens the database file at path read-only, checks it as Open
// does (every page, bbolt's consistency check) and says what it is. Unlike
// a read-only Open it takes a file of an older schema (a backup from
// before an upgrade: the gateway upgrades it when it opens it). It returns
// ErrMissing, ErrEmpty or ErrCorrupt for a file that is no database,
// ErrSchemaTooNew for one from a newer gateway, and ErrLocked while a
// gateway holds it.
func Inspect(path string) (Info, error) {
	info, err := inspect(path)
	if err != nil {
		return info, fmt.Errorf("inspect %s: %w", path, err)
	}
	return info, nil
}

// CopyFile writes a consistent copy of the database file at path to w
// (see WriteBackup), with no gateway running on it: the file is opened
// read-only and checked as Inspect does, so a file of an older schema is
// copied as it is. It returns what Inspect says of the file, and ErrLocked
// while a gateway holds it (the gateway serves copies itself).
func CopyFile(path string, w io.Writer) (Info, error) {
	info, err := inspectWith(path, func(db *DB) error {
		_, err := db.WriteBackup(w, nil)
		return err
	})
	if err != nil {
		return info, fmt.Errorf("copy %s: %w", path, err)
	}
	return info, nil
}

func inspect(path string) (Info, error) { return inspectWith(path, nil) }

// inspectWith is Inspect, calling then (if not nil) with the file still
// open read-only.
func inspectWith(path string, then func(*DB) error) (Info, error) {
	info := Info{Path: path}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return info, fmt.Errorf("%w: no such file", ErrMissing)
	case err != nil:
		return info, err
	case st.Size() == 0:
		return info, fmt.Errorf("%w: zero bytes", ErrEmpty)
	}
	info.Size = st.Size()
	opts := Options{ReadOnly: true, LockTimeout: time.Second}
	if err := checkPages(path, false, lockTimeout(opts)); err != nil {
		return info, err
	}
	b, _, _, err := openBolt(path, opts)
	if err != nil {
		return info, err
	}
	db := newDB(b, path)
	defer db.Close()
	if err := db.checkIdentity(""); err != nil {
		return info, err
	}
	info.ID = db.id
	err = db.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("no meta bucket: %w", ErrCorrupt)
		}
		raw := meta.Get(keySchema)
		if len(raw) != 4 {
			return fmt.Errorf("schema version: %w", ErrCorrupt)
		}
		info.Schema = int(binary.BigEndian.Uint32(raw))
		if info.Schema > SchemaVersion {
			return TooNew(info.Schema)
		}
		entries := tx.Bucket(bucketEntries)
		if entries == nil {
			return nil
		}
		info.Entries = entries.Stats().KeyN
		if k, v := entries.Cursor().Last(); k != nil {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %x: %w: %v", k, ErrCorrupt, err)
			}
			info.Newest = &e
		}
		return nil
	})
	if err == nil && then != nil {
		err = then(db)
	}
	return info, err
}

// TooNew is the error for a file of schema version v, written by a newer
// gateway than this one: it wraps ErrSchemaTooNew and says what to do.
func TooNew(v int) error {
	return fmt.Errorf("%w: the file is schema %d, this gateway knows schema %d at most; "+
		"install the newer mallgrid package again, or restore a backup taken before the upgrade "+
		"(`mallgrid restore`, README \"Backups and upgrades\")", ErrSchemaTooNew, v, SchemaVersion)
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force installs a backup of another database than the one the marker
	// names (a backup from before `mallgrid db init --force`, or of another
	// gateway); the marker is rewritten to name it.
	Force bool
	// Now names the file kept aside: PATH.replaced-20060102T150405Z (UTC).
	Now time.Time
	// Check, if set, is run on the copy about to be installed, already
	// upgraded to this gateway's schema (mallgrid restore runs the ledger's
	// rules, gateway/verify): an error keeps everything as it was.
	Check func(path string) error
	// Socket, if set, is the gateway's control socket: while something
	// answers on it a gateway is running, even one whose file is no longer
	// at the path (deleted or moved), and the restore is refused.
	Socket string

	// installed, if set, is called once the restored file is at the path
	// and before the marker names it: a test's look at that moment.
	installed func()
}

// Restored says what Restore did.
type Restored struct {
	ID       string // the installed database's identity, which the marker now names
	Schema   int    // the backup's schema version, before any upgrade
	Upgraded bool   // the backup was of an older schema and was upgraded
	Size     int64  // the installed file's size
	KeptAs   string // where the file that was at the path now is; "" if there was none
	Entries  int    // ledger entries in the backup
	Newest   *Entry // the newest of them; nil for none
}

// Restore installs the backup file at backup as the database at path, with
// the gateway stopped. The backup is checked (Inspect; a newer schema is
// refused), copied beside path, upgraded to this gateway's schema and
// checked again (Options.Check) before anything at path changes; then the
// file at path is kept aside (PATH.replaced-TIME, never deleted), the copy
// renamed into place and the marker written to name it. From the first
// check to the marker, the current file's lock is held, and the restored
// file's from before it is put in place, so no gateway starts on either
// meanwhile. The backup file itself is only read. It returns
// ErrLocked while a gateway holds the database or answers on
// Options.Socket, and an error wrapping ErrReplaced for a backup of another
// database than the marker names (where there is no marker, than the
// current file is), unless Force.
func Restore(path, backup string, o RestoreOptions) (Restored, error) {
	done, err := restore(path, backup, o)
	if err != nil {
		return done, fmt.Errorf("restore %s to %s: %w", backup, path, err)
	}
	return done, nil
}

func restore(path, backup string, o RestoreOptions) (Restored, error) {
	var done Restored
	if err := socketAnswers(o.Socket); err != nil {
		return done, err
	}
	cur, statErr := os.Stat(path)
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return done, statErr
	}
	want, err := readMarker(MarkerPath(path))
	if err != nil && !o.Force {
		return done, fmt.Errorf("%w; give --force to restore the backup and write the marker again", err)
	}
	// Without a marker, the file at path says which database belongs
	// here. Read before its lock is taken: the lock below is exclusive,
	// and reading takes a shared one. A damaged or empty file names none.
	curID := ""
	if statErr == nil && want == "" && err == nil && !o.Force {
		info, err := Inspect(path)
		switch {
		case errors.Is(err, ErrLocked):
			return done, fmt.Errorf("%w: stop the gateway first", ErrLocked)
		case err == nil, errors.Is(err, ErrSchemaTooNew):
			curID = info.ID
		}
	}
	if statErr == nil {
		lock, err := holdLock(path, cur)
		if err != nil {
			return done, err
		}
		defer lock.Close() // after the marker: a gateway waiting for the lock then finds the restored file
		if bst, err := os.Stat(backup); err == nil && os.SameFile(bst, cur) {
			return done, fmt.Errorf("the backup is the database file itself: nothing to restore")
		}
	}
	info, err := Inspect(backup)
	if err != nil {
		return done, err
	}
	done.Schema, done.Entries, done.Newest = info.Schema, info.Entries, info.Newest
	id := info.ID
	if id == "" {
		id = "without an identity (from before identities)"
	}
	switch {
	case o.Force:
	case want != "" && info.ID != want:
		return done, fmt.Errorf("%w: the backup is database %s, the marker %s names %s; "+
			"give --force to restore it anyway (the marker is written to name it; the current file is kept aside)",
			ErrReplaced, id, MarkerPath(path), want)
	case want == "" && curID != "" && info.ID != curID:
		return done, fmt.Errorf("%w: the backup is database %s, the file at %s is database %s (there is no marker %s); "+
			"give --force to restore it anyway (the marker is written to name it; the current file is kept aside)",
			ErrReplaced, id, path, curID, MarkerPath(path))
	}
	tmp, err := copyBeside(path, backup)
	if err != nil {
		return done, err
	}
	defer os.Remove(tmp) // fails harmlessly once renamed
	// Opened read-write on its own, without the marker: an older schema is
	// upgraded here, where a failure leaves the database at path alone.
	db, err := Open(tmp, Options{LockTimeout: time.Second})
	if err != nil {
		return done, err
	}
	done.ID = db.ID()
	if err := db.Close(); err != nil {
		return done, err
	}
	done.Upgraded = info.Schema < SchemaVersion
	if o.Check != nil {
		if err := o.Check(tmp); err != nil {
			return done, fmt.Errorf("the backup failed its check: %w", err)
		}
	}
	// Run as root, the files made here would be root's, and the gateway's
	// user could not open them: they get the owner of the file they
	// replace, or of the directory.
	if err := chownLike(tmp, path); err != nil {
		return done, err
	}
	// The restored file's lock too, until the marker names it: a gateway
	// starting once it is at the path, and finding it unlocked, would check
	// it against the old marker and refuse it as another database.
	next, err := lockRestored(tmp)
	if err != nil {
		return done, err
	}
	defer next.Close()
	if statErr == nil {
		if done.KeptAs, err = replaceKeeping(path, tmp, o.Now); err != nil {
			return done, err
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return done, err
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return done, err
	}
	if o.installed != nil {
		o.installed()
	}
	if st, err := os.Stat(path); err == nil {
		done.Size = st.Size()
	}
	if err := writeMarker(MarkerPath(path), done.ID); err != nil {
		return done, err
	}
	return done, chownLike(MarkerPath(path), path)
}

// socketAnswers returns ErrLocked if something answers on the control
// socket: a gateway is running. A socket nothing answers on (refused,
// absent, or not this user's to reach) is no gateway's.
func socketAnswers(socket string) error {
	if socket == "" {
		return nil
	}
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return nil
	}
	_ = c.Close()
	return fmt.Errorf("%w: a gateway answers on the control socket %s; stop the gateway first", ErrLocked, socket)
}

// holdLock takes the lock a read-write Open takes on the file at path, and
// returns the file that holds it: until it is closed no gateway opens the
// database. It returns ErrLocked while a gateway holds it, and an error if
// path no longer names was (the file looked at before).
func holdLock(path string, was os.FileInfo) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	err = lockFile(f, true, 0)
	if errors.Is(err, ErrLocked) {
		err = fmt.Errorf("%w: stop the gateway first", err)
	}
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil && !os.SameFile(st, was) {
			err = fmt.Errorf("%s was replaced while the restore looked at it; run the restore again", path)
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// lockRestored takes the lock a read-write Open takes on the file at tmp,
// which only this restore knows of yet, and returns the file that holds
// it.
func lockRestored(tmp string) (*os.File, error) {
	f, err := os.Open(tmp)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, true, 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	return f, nil
}

// replaceKeeping puts the file next in the place of the file at path,
// which is kept aside under a name of its own (PATH.replaced-TIME), and
// returns that name. The file kept aside is linked to its new name first
// and next renamed over path, so that path names a database throughout: a
// gateway never finds it missing. Killed between the two, it leaves the
// new name on the database itself, no copy kept: the gateway removes
// such a name at its start (gateway/backup.RemoveStale). Where the file
// system has no hard links, path is renamed aside instead, and is missing
// for a moment.
func replaceKeeping(path, next string, now time.Time) (string, error) {
	aside := asideName(path, ".replaced-", now)
	if err := os.Link(path, aside); err != nil {
		if aside, err = keepAside(path, now); err != nil {
			return "", err
		}
		return aside, os.Rename(next, path)
	}
	if err := os.Rename(next, path); err != nil {
		_ = os.Remove(aside) // path is still the file it was
		return "", err
	}
	return aside, nil
}

// chownLike gives name the owner of the file at like, or where there is
// none of like's directory. Nothing is done where they already match, so
// a user who is not root restoring their own files needs no privilege.
func chownLike(name, like string) error {
	ref, err := os.Stat(like)
	if errors.Is(err, fs.ErrNotExist) {
		ref, err = os.Stat(filepath.Dir(like))
	}
	if err != nil {
		return err
	}
	cur, err := os.Stat(name)
	if err != nil {
		return err
	}
	want, ok1 := ref.Sys().(*syscall.Stat_t)
	have, ok2 := cur.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || want.Uid == have.Uid && want.Gid == have.Gid {
		return nil
	}
	return os.Chown(name, int(want.Uid), int(want.Gid))
}

// copyBeside copies the file src to a new temporary file beside path,
// synced, and returns its name.
func copyBeside(path, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".restoring-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}
