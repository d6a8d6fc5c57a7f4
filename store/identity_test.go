package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

// openMarked opens path as the daemon does and closes it at the end of the test.
func openMarked(t *testing.T, path string) (*DB, error) {
	t.Helper()
	db, err := Open(path, Options{Marker: true, LockTimeout: 200 * time.Millisecond})
	if err == nil {
		t.Cleanup(func() { _ = db.Close() })
	}
	return db, err
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestOpen_Marker_FreshInstallWritesMarker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	db, err := openMarked(t, path)
	if err != nil {
		t.Fatalf("Open of a fresh path: %v", err)
	}
	if !validID(db.ID()) {
		t.Fatalf("ID = %q; want 32 hex digits", db.ID())
	}
	if got := strings.TrimSpace(string(readFile(t, MarkerPath(path)))); got != db.ID() {
		t.Errorf("marker holds %q; want the database's id %q", got, db.ID())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory holds %d files; want the database and its marker, no temporary file left", len(entries))
	}
	id := db.ID()
	db.Close()
	again, err := openMarked(t, path)
	if err != nil || again.ID() != id {
		t.Errorf("reopen = %v, id %q; want the same database %q", err, again.ID(), id)
	}
}

// TestOpen_Marker_RefusesWhatIsNotItsDatabase: once a gateway has run, a
// missing, empty or different file at the path is refused with its own
// error, and nothing is written to it.
func TestOpen_Marker_RefusesWhatIsNotItsDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	db, err := openMarked(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ours := readFile(t, path)

	other := filepath.Join(dir, "other.db")
	odb, err := Open(other, Options{})
	if err != nil {
		t.Fatal(err)
	}
	odb.Close()
	older := filepath.Join(dir, "older.db") // a file from before identities
	odb, err = Open(older, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := odb.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyID) }); err != nil {
		t.Fatal(err)
	}
	odb.Close()

	cases := []struct {
		name    string
		prepare func() error
		want    error
		says    string
	}{
		{"deleted", func() error { return os.Remove(path) }, ErrMissing, "no file"},
		{"zero length", func() error { return os.WriteFile(path, nil, 0o600) }, ErrEmpty, "zero bytes"},
		{"another database", func() error { return os.WriteFile(path, readFile(t, other), 0o600) }, ErrReplaced, "it is database"},
		{"a file from before identities", func() error { return os.WriteFile(path, readFile(t, older), 0o600) }, ErrReplaced, "no identity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.prepare(); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			_, err := openMarked(t, path)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Open = %v; want %v saying %q", err, c.want, c.says)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("the refused file was changed")
			}
			if _, err := os.Stat(path); c.want == ErrMissing && err == nil {
				t.Error("a refused Open created the file")
			}
		})
	}
	// The database restored from a copy is taken again.
	if err := os.WriteFile(path, ours, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = openMarked(t, path)
	if err != nil {
		t.Fatalf("Open of the restored file: %v", err)
	}
	if a, err := db.Account("T-1"); err != nil || a.Balance != billing.Yuan {
		t.Errorf("restored account = %+v, %v", a, err)
	}
}

func TestOpen_Marker_DamagedMarkerRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	if err := os.WriteFile(MarkerPath(path), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openMarked(t, path); !errors.Is(err, ErrReplaced) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Open with a damaged marker = %v; want ErrReplaced saying the marker is damaged", err)
	}
}

// An older file gets an identity, and its marker, the first time the
// daemon opens it.
func TestOpen_Marker_OlderFileGetsIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyID) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil || ro.ID() != "" {
		t.Fatalf("read-only Open of an older file = %v, id %q; want it opened without an identity", err, ro.ID())
	}
	ro.Close()
	db, err = openMarked(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if !validID(db.ID()) || strings.TrimSpace(string(readFile(t, MarkerPath(path)))) != db.ID() {
		t.Errorf("id %q, marker %q; want a new identity in both", db.ID(), readFile(t, MarkerPath(path)))
	}
}

func TestOpen_ReadOnly_MissingOrEmpty(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "none.db"), Options{ReadOnly: true}); !errors.Is(err, ErrMissing) {
		t.Errorf("read-only Open of no file = %v; want ErrMissing", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("read-only Open created the file")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty, Options{ReadOnly: true}); !errors.Is(err, ErrEmpty) {
		t.Errorf("read-only Open of a zero-length file = %v; want ErrEmpty", err)
	}
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.db")
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

	first, err := Init(path, InitOptions{Now: now})
	if err != nil || first.KeptAs != "" || !validID(first.ID) {
		t.Fatalf("Init where nothing is = %+v, %v", first, err)
	}
	db, err := openMarked(t, path)
	if err != nil || db.ID() != first.ID {
		t.Fatalf("Open after Init = %v, id %q; want %q", err, db.ID(), first.ID)
	}
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}

	// While the gateway holds it, Init touches nothing.
	if _, err := Init(path, InitOptions{Now: now, Force: true}); !errors.Is(err, ErrLocked) {
		t.Errorf("Init of a file in use = %v; want ErrLocked", err)
	}
	db.Close()
	kept := readFile(t, path)

	if _, err := Init(path, InitOptions{Now: now}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), first.ID) {
		t.Errorf("Init over a valid database = %v; want ErrExists naming %s", err, first.ID)
	}
	if !bytes.Equal(readFile(t, path), kept) {
		t.Fatal("a refused Init changed the database")
	}

	second, err := Init(path, InitOptions{Now: now, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".replaced-20260304T050607Z"; second.KeptAs != want || second.ID == first.ID {
		t.Errorf("forced Init = %+v; want the old file kept as %s and a new identity", second, want)
	}
	if !bytes.Equal(readFile(t, second.KeptAs), kept) {
		t.Error("the file kept aside is not the old database")
	}
	db, err = openMarked(t, path)
	if err != nil || db.ID() != second.ID {
		t.Fatalf("Open after a forced Init = %v, id %q; want %q", err, db.ID(), second.ID)
	}
	if accts, err := db.Accounts(); err != nil || len(accts) != 0 {
		t.Errorf("new database holds %d accounts, %v; want none", len(accts), err)
	}
	db.Close()

	// A damaged file needs no Force, and is kept aside too; a second Init
	// in the same second gets a name of its own.
	garbage := bytes.Repeat([]byte("not a database "), 1000)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	third, err := Init(path, InitOptions{Now: now})
	if err != nil || third.KeptAs != path+".replaced-20260304T050607Z-2" {
		t.Fatalf("Init over a damaged file = %+v, %v", third, err)
	}
	if !bytes.Equal(readFile(t, third.KeptAs), garbage) {
		t.Error("the damaged file kept aside was changed")
	}
}

// TestOpen_Marker_ForeignFileWithoutFreelistUntouched: a read-write bbolt
// Open of a file that has no freelist saved (written with NoFreelistSync)
// writes one at once; the file must be refused before that, untouched.
func TestOpen_Marker_ForeignFileWithoutFreelistUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	b, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyID, []byte("0123456789abcdef0123456789abcdef"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(MarkerPath(path), "fedcba9876543210fedcba9876543210"); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	if _, err := openMarked(t, path); !errors.Is(err, ErrReplaced) {
		t.Fatalf("Open = %v; want ErrReplaced", err)
	}
	if after := readFile(t, path); !bytes.Equal(before, after) {
		t.Error("the refused file was changed")
	}
}

// TestOpen_Marker_NoNewLedgerBesideAnother: where neither the file nor
// its marker is, a new database is made only if the directory holds no
// other gateway's database or marker (storage.path changed or mistyped).
func TestOpen_Marker_NoNewLedgerBesideAnother(t *testing.T) {
	t.Run("another database", func(t *testing.T) {
		dir := t.TempDir()
		other, err := Open(filepath.Join(dir, "mallgrid.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		other.Close()
		path := filepath.Join(dir, "malgrid.db")
		_, err = openMarked(t, path)
		if !errors.Is(err, ErrNotHere) || !strings.Contains(err.Error(), filepath.Join(dir, "mallgrid.db")) ||
			!strings.Contains(err.Error(), "storage.path") || !strings.Contains(err.Error(), "db init") {
			t.Errorf("Open = %v; want ErrNotHere naming the other database and both ways out", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a file was made at %s: %v", path, err)
		}
	})
	t.Run("a marker", func(t *testing.T) {
		dir := t.TempDir()
		if err := writeMarker(filepath.Join(dir, "old.db.id"), newID()); err != nil {
			t.Fatal(err)
		}
		if _, err := openMarked(t, filepath.Join(dir, "mallgrid.db")); !errors.Is(err, ErrNotHere) || !strings.Contains(err.Error(), "old.db.id") {
			t.Errorf("Open = %v; want ErrNotHere naming the marker", err)
		}
	})
	t.Run("other files", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.db"), []byte("not bbolt"), 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := openMarked(t, filepath.Join(dir, "mallgrid.db"))
		if err != nil || !db.Created() {
			t.Fatalf("Open = %v; want a new database (Created)", err)
		}
		db.Close()
		again, err := openMarked(t, filepath.Join(dir, "mallgrid.db"))
		if err != nil || again.Created() {
			t.Errorf("reopen = %v, Created %v; want the same database, not created", err, err == nil && again.Created())
		}
	})
}

// A marker overwritten by a large file is quoted in part: the refusal
// says what it holds without carrying the whole file into the journal.
func TestOpen_Marker_LargeDamagedMarkerQuotedInPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	if err := os.WriteFile(MarkerPath(path), bytes.Repeat([]byte{0}, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := openMarked(t, path)
	if !errors.Is(err, ErrReplaced) || !strings.Contains(err.Error(), "(65536 bytes)") || len(err.Error()) > 1024 {
		t.Errorf("Open with a 64 KiB marker = %d characters %.300q…; want ErrReplaced, under 1024 characters, giving the marker's size", len(err.Error()), err)
	}
}
