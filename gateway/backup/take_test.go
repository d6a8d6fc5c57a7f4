package backup_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/backup"
	"mallgrid/store"
)

// An OUT that is the database or a file kept beside it is refused before
// anything is written, through a symbolic link as well: the running
// gateway goes on writing, and its marker and socket are what they were.
func TestTake_RefusesTheDatabasesOwnFiles(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	srv := serve(t, db, backup.SocketPath(db.Path()))
	topUp(t, db, 1)
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	kept := db.Path() + ".replaced-20261201T100000Z"
	if err := os.WriteFile(kept, []byte("the ledger kept aside"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := map[string]os.FileInfo{}
	for _, p := range []string{db.Path(), store.MarkerPath(db.Path()), srv.Path(), kept} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = st
	}
	for _, out := range []string{
		db.Path(),
		store.MarkerPath(db.Path()),
		srv.Path(),
		kept,
		db.Path() + ".new", // a name of the gateway's kind, not there yet
		filepath.Join(link, "mallgrid.db"),
		filepath.Join(link, "mallgrid.db.id"),
		filepath.Join(dir, ".", "sub", "..", "mallgrid.db"),
	} {
		_, err := backup.Take(context.Background(), db.Path(), out, time.Second)
		if !errors.Is(err, backup.ErrOutIsDatabase) || !strings.Contains(err.Error(), "name a file elsewhere") {
			t.Errorf("Take to %s: %v; want ErrOutIsDatabase saying to name a file elsewhere", out, err)
		}
	}
	for p, st := range before {
		now, err := os.Lstat(p)
		switch {
		case err != nil:
			t.Errorf("%s after the refused backups: %v", p, err)
		case !os.SameFile(st, now) || now.Mode() != st.Mode():
			t.Errorf("%s after the refused backups: another file, mode %v; want the same, mode %v", p, now.Mode(), st.Mode())
		}
	}
	if _, err := os.Lstat(db.Path() + ".new"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused OUT written: %v", err)
	}
	topUp(t, db, 2) // fails the test if the gateway no longer takes writes
	if err := db.Health(); err != nil {
		t.Errorf("Health after the refused backups: %v", err)
	}
	// A name that only begins like the database's is another file.
	taken, err := backup.Take(context.Background(), db.Path(), filepath.Join(dir, "mallgrid.db-copy"), time.Second)
	if err != nil || taken.Info.Entries != 2 {
		t.Errorf("Take to mallgrid.db-copy beside it = %+v, %v; want a copy with 2 entries", taken.Info, err)
	}
}

// otherIdentity is a daemon that says it serves another database than
// the one it copies: its copy fails Take's identity check.
type otherIdentity struct{ *store.DB }

func (otherIdentity) ID() string { return "00000000000000000000000000000000" }

// A copy that fails its check leaves the backup already at OUT (last
// night's, under a fixed name) as it was, and no temporary beside it.
func TestTake_FailedCheckKeepsOut(t *testing.T) {
	dir := t.TempDir()
	db := openDaemon(t, dir)
	serve(t, otherIdentity{db}, backup.SocketPath(db.Path()))
	outDir := t.TempDir()
	out := filepath.Join(outDir, "nightly.db")
	yesterday := []byte("last night's backup")
	if err := os.WriteFile(out, yesterday, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := backup.Take(context.Background(), db.Path(), out, time.Second)
	if err == nil || !strings.Contains(err.Error(), "the copy is database") {
		t.Errorf("Take of a copy with the wrong identity: %v; want refused", err)
	}
	if got, err := os.ReadFile(out); err != nil || string(got) != string(yesterday) {
		t.Errorf("OUT after the failed backup = %.40q, %v; want %q", got, err, yesterday)
	}
	if names, _ := filepath.Glob(filepath.Join(outDir, "*")); len(names) != 1 {
		t.Errorf("files beside OUT: %v; want OUT alone", names)
	}
}
