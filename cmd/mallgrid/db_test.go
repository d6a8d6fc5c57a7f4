package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// gatewayConfig writes a configuration whose database is dbPath (a bus on
// a TCP port nothing answers: the gateway starts and keeps retrying it)
// and returns its path.
func gatewayConfig(t *testing.T, dbPath string) string {
	t.Helper()
	cfg := "site: {name: Database test}\nstorage: {path: '" + dbPath + "', lock_timeout: 200ms}\nhttp: {listen: '127.0.0.1:0'}\n" +
		"log: {format: json}\nbuses:\n  - {name: lan, type: tcp, port: '127.0.0.1:1', interval: 1s}\n" +
		"meters:\n  - {id: M1, bus: lan, address: 1, model: kpm33b, tenant: T1}\n" +
		"tenants:\n  - {id: T1, name: Shop}\n"
	path := filepath.Join(t.TempDir(), "mallgrid.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ranDatabase makes the database at path as a gateway that has run leaves
// it: a ledger with one top-up, and the marker beside it.
func ranDatabase(t *testing.T, path string) {
	t.Helper()
	db, err := store.Open(path, store.Options{Marker: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(store.Entry{Account: "T1", Amount: 100 * billing.Yuan, Ref: "PAY-1", Channel: "cash", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// damageFile overwrites the middle of the file, where the ledger's pages are.
func damageFile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copy(raw[2*4096:], bytes.Repeat([]byte{0xA5}, 3*4096))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestExitCodes runs the real commands against each kind of database
// problem and checks each has its own exit status, the same from run,
// verify and db, and a message that says what is wrong and what to do.
func TestExitCodes(t *testing.T) {
	type step struct {
		name    string
		prepare func(t *testing.T, dbPath string)
		args    func(cfg, dbPath string) []string
		code    int
		says    []string
	}
	run := func(cfg, _ string) []string { return []string{"run", "-c", cfg} }
	verifyC := func(cfg, _ string) []string { return []string{"verify", "-c", cfg} }
	verifyDB := func(_, db string) []string { return []string{"verify", "--db", db} }
	refusedHint := []string{"restore the database file from a backup", "mallgrid db init -c FILE"}
	steps := []step{
		{"verify, clean ledger", ranDatabase, verifyC, 0, []string{"ledger ok (1 accounts, 1 entries)"}},
		{"verify, a ledger violation", func(t *testing.T, p string) {
			ranDatabase(t, p)
			db, err := store.Open(p, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// An adjustment with neither who nor why breaks a ledger rule.
			if _, err := db.PostEntry(store.Entry{Account: "T1", Kind: store.Adjustment, Amount: -billing.Yuan, Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}, verifyC, exitFailure, []string{"adjustment without who and why", "1 violation(s)"}},
		{"run, configuration problem", nil, func(_, _ string) []string { return []string{"run", "-c", "/nonexistent.yaml"} }, exitConfig, []string{"/nonexistent.yaml"}},
		{"run, damaged database", func(t *testing.T, p string) { ranDatabase(t, p); damageFile(t, p) }, run, exitDamaged,
			[]string{"database is damaged", "Restore it from a backup", "mallgrid db init -c FILE"}},
		{"verify, damaged database", func(t *testing.T, p string) { ranDatabase(t, p); damageFile(t, p) }, verifyDB, exitDamaged, []string{"database is damaged"}},
		{"verify, not a database at all", func(t *testing.T, p string) {
			if err := os.WriteFile(p, bytes.Repeat([]byte("text "), 3000), 0o600); err != nil {
				t.Fatal(err)
			}
		}, verifyDB, exitDamaged, []string{"no valid meta page"}},
		{"run, database deleted", func(t *testing.T, p string) { ranDatabase(t, p); must(t, os.Remove(p)) }, run, exitRefused,
			append([]string{"database file is missing", "g.db.id"}, refusedHint...)},
		{"verify, database deleted", func(t *testing.T, p string) { ranDatabase(t, p); must(t, os.Remove(p)) }, verifyC, exitRefused, []string{"database file is missing"}},
		{"run, database emptied", func(t *testing.T, p string) { ranDatabase(t, p); must(t, os.Truncate(p, 0)) }, run, exitRefused,
			append([]string{"database file is empty"}, refusedHint...)},
		{"run, another database", func(t *testing.T, p string) {
			ranDatabase(t, p)
			other := filepath.Join(filepath.Dir(p), "other.db")
			db, err := store.Open(other, store.Options{})
			must(t, err)
			must(t, db.Close())
			must(t, os.Rename(other, p))
		}, run, exitRefused, append([]string{"not the one this gateway ran with", "it is database"}, refusedHint...)},
		{"run, no database beside another gateway's", func(t *testing.T, p string) {
			ranDatabase(t, filepath.Join(filepath.Dir(p), "mallgrid.db")) // storage.path mistyped: g.db
		}, run, exitRefused, []string{"mallgrid.db.id", "mallgrid.db", "storage.path", "mallgrid db init -c FILE"}},
		{"db init over a valid database", ranDatabase, func(cfg, _ string) []string { return []string{"db", "init", "-c", cfg} }, exitFailure,
			[]string{"a database already exists there", "--force"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "g.db")
			cfg := gatewayConfig(t, dbPath)
			if s.prepare != nil {
				s.prepare(t, dbPath)
			}
			before, _ := os.ReadFile(dbPath)
			code, stdout, stderr := mallgrid(t, s.args(cfg, dbPath)...)
			if code != s.code {
				t.Errorf("exit status = %d; want %d\nstdout: %s\nstderr: %s", code, s.code, stdout, stderr)
			}
			for _, want := range s.says {
				if !strings.Contains(stdout+stderr, want) {
					t.Errorf("output lacks %q:\n%s%s", want, stdout, stderr)
				}
			}
			if after, _ := os.ReadFile(dbPath); !bytes.Equal(before, after) {
				t.Error("the database file was changed")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDBInit_NewLedgerOnPurpose goes through what the README tells an
// operator: the daemon, run once, refuses to start on a deleted database;
// `db init` starts a new one, which the daemon then takes; `db init` again
// refuses without --force, and with it keeps the old file aside.
func TestDBInit_NewLedgerOnPurpose(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "g.db")
	cfg := gatewayConfig(t, dbPath)

	cmd, out := start(t, "run", "-c", cfg)
	readLineContaining(t, out, "gateway running")
	stopWithin(t, cmd, syscall.SIGTERM, 5*time.Second)
	marker, err := os.ReadFile(dbPath + ".id")
	if err != nil {
		t.Fatalf("no marker after the first run: %v", err)
	}

	must(t, os.Remove(dbPath))
	if code, _, stderr := mallgrid(t, "run", "-c", cfg); code != exitRefused {
		t.Fatalf("run on a deleted database = %d %s; want %d", code, stderr, exitRefused)
	}
	if _, err := os.Stat(dbPath); err == nil {
		t.Fatal("the refused run created a database")
	}

	code, stdout, stderr := mallgrid(t, "db", "init", "-c", cfg)
	if code != 0 || !strings.Contains(stdout, "new, empty database") {
		t.Fatalf("db init = %d %q %q", code, stdout, stderr)
	}
	newMarker, err := os.ReadFile(dbPath + ".id")
	if err != nil || bytes.Equal(newMarker, marker) {
		t.Fatalf("marker after db init = %q, %v; want a new identity", newMarker, err)
	}
	cmd, out = start(t, "run", "-c", cfg)
	readLineContaining(t, out, "gateway running")
	stopWithin(t, cmd, syscall.SIGTERM, 5*time.Second)

	if code, _, stderr := mallgrid(t, "db", "init", "--db", dbPath); code != exitFailure || !strings.Contains(stderr, "--force") {
		t.Errorf("db init over the new database = %d %q; want %d and a word about --force", code, stderr, exitFailure)
	}
	kept, err := os.ReadFile(dbPath)
	must(t, err)
	code, stdout, stderr = mallgrid(t, "db", "init", "--db", dbPath, "--force")
	if code != 0 || !strings.Contains(stdout, "kept as "+dbPath+".replaced-") {
		t.Fatalf("db init --force = %d %q %q", code, stdout, stderr)
	}
	aside, err := filepath.Glob(dbPath + ".replaced-*")
	if err != nil || len(aside) != 1 {
		t.Fatalf("files kept aside: %v, %v; want one", aside, err)
	}
	if raw, _ := os.ReadFile(aside[0]); !bytes.Equal(raw, kept) {
		t.Error("the file kept aside is not the database that was there")
	}
	if code, stdout, _ := mallgrid(t, "verify", "-c", cfg); code != 0 || !strings.Contains(stdout, "ledger ok (0 accounts") {
		t.Errorf("verify of the new database = %d %q", code, stdout)
	}
}

// TestRestore_BackupFromBeforeInitForce goes through what the README says
// of a backup taken before `db init --force`: it is of the old database,
// so the gateway refuses it (exit 4) while the marker names the new one;
// checked where it lies, moved into place and the marker deleted, it is
// taken, with its ledger.
func TestRestore_BackupFromBeforeInitForce(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "g.db")
	cfg := gatewayConfig(t, dbPath)
	ranDatabase(t, dbPath)
	backup := filepath.Join(t.TempDir(), "g.db")
	raw, err := os.ReadFile(dbPath)
	must(t, err)
	must(t, os.WriteFile(backup, raw, 0o600))
	if code, stdout, stderr := mallgrid(t, "db", "init", "--db", dbPath, "--force"); code != 0 {
		t.Fatalf("db init --force = %d %q %q", code, stdout, stderr)
	}

	must(t, os.WriteFile(dbPath, raw, 0o600)) // the backup copied into place
	for _, args := range [][]string{{"run", "-c", cfg}, {"verify", "-c", cfg}} {
		if code, _, stderr := mallgrid(t, args...); code != exitRefused || !strings.Contains(stderr, "not the one this gateway ran with") {
			t.Errorf("%s on the older backup = %d %q; want %d, not the database the marker names", args[0], code, stderr, exitRefused)
		}
	}
	if code, stdout, stderr := mallgrid(t, "verify", "--db", backup); code != 0 {
		t.Errorf("verify --db of the backup where it lies = %d %q %q; want 0", code, stdout, stderr)
	}
	must(t, os.Remove(store.MarkerPath(dbPath)))
	cmd, out := start(t, "run", "-c", cfg)
	readLineContaining(t, out, "gateway running")
	stopWithin(t, cmd, syscall.SIGTERM, 5*time.Second)
	if code, stdout, stderr := mallgrid(t, "verify", "-c", cfg); code != 0 || !strings.Contains(stdout, "1 entries") {
		t.Errorf("verify after the restore = %d %q %q; want the backup's ledger, sound", code, stdout, stderr)
	}
}
