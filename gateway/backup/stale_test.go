package backup_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mallgrid/gateway/backup"
)

// RemoveStale removes the temporaries a killed gateway, backup or restore
// left, and nothing else: not another file of a similar name, not a
// directory, not a temporary socket something answers on.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mallgrid.db")
	snaps := filepath.Join(dir, "snapshots")
	if err := os.MkdirAll(snaps, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := []string{
		db + ".tmp-123456",
		db + ".id.tmp-42",
		db + ".rescued-20261201T100000Z.tmp-7",
		db + ".rescued-20261201T100000Z-2.tmp-7",
		db + ".restoring-3141592653",
		filepath.Join(snaps, "daily-20261201T100000Z.db.tmp-99"),
		filepath.Join(snaps, "daily-20261201T100000Z-2.db.tmp-99"),
		filepath.Join(snaps, "before-schema-8-20261201T100000Z.db.tmp-1"),
	}
	kept := []string{
		db,
		db + ".id",
		db + ".replaced-20261201T100000Z",
		db + ".rescued-20261201T100000Z",
		db + ".tmp-notes",
		db + ".restoring-",
		filepath.Join(dir, "other.db.tmp-123"), // another database's, or a backup's OUT
		filepath.Join(dir, "mallgrid.dbx.tmp-1"),
		filepath.Join(snaps, "daily-20261201T100000Z.db"),
		filepath.Join(snaps, "daily-manual.db.tmp-1"),
		filepath.Join(snaps, "mallgrid.db.tmp-5"), // the database's name, in the wrong directory
	}
	for _, p := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keptDir := filepath.Join(snaps, "daily-20261202T100000Z.db.tmp-5")
	if err := os.Mkdir(keptDir, 0o700); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, keptDir)
	// A temporary socket nothing answers on (its gateway killed between
	// bind and rename), and one being bound now.
	deadSocket := filepath.Join(dir, ".ctl-0a1b2c3d")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: deadSocket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	stale = append(stale, deadSocket)
	liveSocket := filepath.Join(dir, ".ctl-deadbeef")
	live, err := net.Listen("unix", liveSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	kept = append(kept, liveSocket)

	removed, err := backup.RemoveStale(db, snaps)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	slices.Sort(stale)
	if !slices.Equal(removed, stale) {
		t.Errorf("removed %v;\nwant %v", removed, stale)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s still there", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v; want left alone", p, err)
		}
	}
	// No snapshot directory yet (a new installation): nothing to do.
	if _, err := backup.RemoveStale(db, filepath.Join(dir, "none")); err != nil {
		t.Errorf("RemoveStale without a snapshot directory: %v", err)
	}
}

// While a process answers on the database's control socket, a gateway
// still runs on a file that was at the path (moved, or replaced by hand):
// the temporaries may be its own, being written — a rescued copy among
// them, the only one of what it acknowledged since the last backup — so
// nothing is removed, whatever lock the caller holds on the file now at
// the path.
func TestRemoveStale_GatewayAnswers(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mallgrid.db")
	snaps := filepath.Join(dir, "snapshots")
	if err := os.MkdirAll(snaps, 0o700); err != nil {
		t.Fatal(err)
	}
	written := []string{
		db,
		db + ".rescued-20261201T100000Z.tmp-7",
		db + ".tmp-123456",
		filepath.Join(snaps, "daily-20261201T100000Z.db.tmp-99"),
	}
	for _, p := range written {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("unix", backup.SocketPath(db))
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

	removed, err := backup.RemoveStale(db, snaps)
	if err == nil || !strings.Contains(err.Error(), backup.SocketPath(db)) {
		t.Errorf("RemoveStale while a gateway answers on its socket: %v; want an error naming %s", err, backup.SocketPath(db))
	}
	if len(removed) != 0 {
		t.Errorf("removed %v; want nothing while a gateway answers", removed)
	}
	for _, p := range written {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v; want left alone", p, err)
		}
	}

	// Its gateway gone, the socket left behind: the clean-up goes ahead.
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(backup.SocketPath(db)); err != nil {
		dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: backup.SocketPath(db), Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		dead.SetUnlinkOnClose(false)
		dead.Close()
	}
	removed, err = backup.RemoveStale(db, snaps)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(written)-1 {
		t.Errorf("removed %v after the gateway stopped; want the three temporaries", removed)
	}
}

// A restore killed between keeping the database aside (a hard link,
// PATH.replaced-TIME) and putting the backup in its place leaves that name
// on the live database, changing with every write: it is no copy kept, and
// is removed. A file kept aside by a restore that finished is another file,
// and stays.
func TestRemoveStale_ReplacedNameOfTheDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mallgrid.db")
	if err := os.WriteFile(db, []byte("live"), 0o600); err != nil {
		t.Fatal(err)
	}
	alias := db + ".replaced-20261201T100000Z-2"
	if err := os.Link(db, alias); err != nil {
		t.Fatal(err)
	}
	kept := db + ".replaced-20261201T100000Z"
	if err := os.WriteFile(kept, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db.replaced-20261201T100000Z") // another database's name
	if err := os.Link(db, other); err != nil {
		t.Fatal(err)
	}

	removed, err := backup.RemoveStale(db, filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{alias}) {
		t.Errorf("removed %v; want only %s, a second name of the database", removed, alias)
	}
	if _, err := os.Lstat(alias); err == nil {
		t.Errorf("%s still there", alias)
	}
	for _, p := range []string{db, kept, other} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v; want left alone", p, err)
		}
	}
	if b, _ := os.ReadFile(db); string(b) != "live" {
		t.Errorf("the database holds %q; want it as it was", b)
	}
}
