package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyID is the database's identity in the meta bucket: random, given once
// when the file is created (or first opened by a gateway that knows
// identities), never changed. A copy of the file (a backup) keeps it.
var keyID = []byte("db_id")

// MarkerSuffix is added to the database's path to name its marker: a small
// file holding the identity of the database the gateway has run with.
const MarkerSuffix = ".id"

// MarkerPath returns the path of the marker of the database at path.
func MarkerPath(path string) string { return path + MarkerSuffix }

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return an error
	return hex.EncodeToString(b)
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// ID returns the database's identity; "" for a file from before identities
// opened read-only (a read-write Open gives it one).
func (db *DB) ID() string { return db.id }

// storedID reads the identity from the file; "" if it has none.
func (db *DB) storedID() (string, error) {
	var id string
	err := db.view(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			id = string(meta.Get(keyID))
		}
		return nil
	})
	return id, err
}

// maxMarkerQuote is how much of a damaged marker its error quotes: an
// identity is 32 characters.
const maxMarkerQuote = 64

// readMarker returns the identity the marker at path holds; "" if there
// is no marker. A marker that is there but holds no identity is an error
// wrapping ErrReplaced: what database belongs here cannot be known.
func readMarker(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read marker: %w", err)
	}
	id := strings.TrimSpace(string(raw))
	if !validID(id) {
		// Quoted in part: a marker overwritten by some large file would
		// otherwise fill the journal with it.
		held := fmt.Sprintf("%q", raw)
		if len(raw) > maxMarkerQuote {
			held = fmt.Sprintf("%q… (%d bytes)", raw[:maxMarkerQuote], len(raw))
		}
		return "", fmt.Errorf("%w: the marker %s is damaged (it holds %s, not a database identity); "+
			"if the database beside it is this gateway's, delete the marker and start again", ErrReplaced, path, held)
	}
	return id, nil
}

// writeMarker replaces the marker at path with one naming id, atomically
// (WriteFileAtomic).
func writeMarker(path, id string) error {
	if err := WriteFileAtomic(path, func(f *os.File) error {
		_, err := f.WriteString(id + "\n")
		return err
	}); err != nil {
		return fmt.Errorf("write marker %s: %w", path, err)
	}
	return nil
}

// WriteFileAtomic writes the file at path with write, atomically: a temporary
// file beside it written and synced, renamed over path, and the directory
// synced, so that after a crash path is either the old file or the new
// one, never a torn one.
func WriteFileAtomic(path string, write func(*os.File) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	err = write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = SyncDir(dir)
	}
	return err
}

// asideName is a name for a file kept beside path: path, suffix and the
// time (UTC), with -2, -3… added while the name is taken.
func asideName(path, suffix string, now time.Time) string {
	base := path + suffix + now.UTC().Format("20060102T150405Z")
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// InitOptions tune Init.
type InitOptions struct {
	// Force starts a new database even where a valid one is. The old file
	// is kept aside, renamed; nothing is ever deleted.
	Force bool
	// Now names the file kept aside: PATH.replaced-20060102T150405Z (UTC).
	Now time.Time
}

// Initialized says what Init did.
type Initialized struct {
	ID     string // the new database's identity, which its marker now holds
	KeptAs string // where the file that was at the path now is; "" if there was none
}

// Init starts a new, empty database at path on purpose and writes its
// marker, so that the gateway takes it from then on. A file already at
// path — a damaged or empty one, or with Force a valid database — is
// renamed aside first, never deleted. It returns ErrExists for a valid
// database without Force, and ErrLocked while a gateway holds the file.
func Init(path string, o InitOptions) (Initialized, error) {
	var done Initialized
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return done, fmt.Errorf("init %s: %w", path, err)
	default:
		if err := lockFree(path); err != nil {
			return done, fmt.Errorf("init %s: %w", path, err)
		}
		if st.Size() > 0 && !o.Force {
			// A damaged file is no ledger to protect from a mistake: it is
			// kept aside like any other, and no Force is needed.
			old, err := Open(path, Options{ReadOnly: true, LockTimeout: time.Second})
			switch {
			case err == nil:
				id := old.ID()
				_ = old.Close()
				if id == "" {
					id = "without an identity"
				}
				return done, fmt.Errorf("init %s: %w (database %s)", path, ErrExists, id)
			case errors.Is(err, ErrSchemaOld), errors.Is(err, ErrSchemaTooNew):
				return done, fmt.Errorf("init %s: %w (%v)", path, ErrExists, err)
			case !errors.Is(err, ErrCorrupt):
				return done, fmt.Errorf("init: %w", err)
			}
		}
		if done.KeptAs, err = keepAside(path, o.Now); err != nil {
			return done, fmt.Errorf("init %s: %w", path, err)
		}
	}
	db, err := Open(path, Options{})
	if err != nil {
		return done, fmt.Errorf("init: %w", err)
	}
	done.ID = db.ID()
	if err := db.Close(); err != nil {
		return done, fmt.Errorf("init %s: %w", path, err)
	}
	if err := writeMarker(MarkerPath(path), done.ID); err != nil {
		return done, fmt.Errorf("init %s: %w", path, err)
	}
	return done, nil
}

// lockFree returns ErrLocked if a process holds the file's lock: a
// gateway is running on it.
func lockFree(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() // releases the lock taken below
	err = lockFile(f, true, 0)
	if errors.Is(err, ErrLocked) {
		return fmt.Errorf("%w: stop the gateway first", err)
	}
	return err
}

// keepAside renames the file at path to a name of its own beside it.
func keepAside(path string, now time.Time) (string, error) {
	aside := asideName(path, ".replaced-", now)
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, SyncDir(filepath.Dir(path))
}

// noOthers returns an error wrapping ErrNotHere if the directory of path,
// where there is neither a database nor its marker, holds another
// gateway's: a marker (*.id) or a database with an identity (*.db). A new
// ledger there is most likely a mistake — storage.path changed or
// mistyped, the file moved — and it would credit old payments again.
func noOthers(path string) error {
	dir := filepath.Dir(path)
	var found []string
	markers, _ := filepath.Glob(filepath.Join(dir, "*"+MarkerSuffix)) // only a bad pattern fails
	found = append(found, markers...)
	dbs, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	for _, p := range dbs {
		if p == path {
			continue
		}
		other, err := Open(p, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
		switch {
		case errors.Is(err, ErrLocked):
			found = append(found, p+" (in use)")
		case err == nil:
			if other.ID() != "" {
				found = append(found, p)
			}
			_ = other.Close()
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%w: there is no database at %s, but %s holds %s. "+
		"If the gateway should use that one, point storage.path at it; to start a new, empty ledger at %s on purpose, run `mallgrid db init`",
		ErrNotHere, path, dir, strings.Join(found, ", "), path)
}
