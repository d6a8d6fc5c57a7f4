package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/store"
)

func TestVerify_CLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(store.Entry{Account: "T-1", Amount: 100 * billing.Yuan, Ref: "PAY-1", Channel: "cash", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if code, out, stderr := mallgrid(t, "verify", "--db", path); code != 0 || !strings.Contains(out, "ledger ok (1 accounts, 1 entries)") {
		t.Errorf("verify of a clean ledger = %d %q %q; want 0 and ledger ok", code, out, stderr)
	}
	if code, _, stderr := mallgrid(t, "verify"); code != 1 || !strings.Contains(stderr, "-c FILE or --db FILE") {
		t.Errorf("verify with no database = %d %q", code, stderr)
	}
	if code, _, _ := mallgrid(t, "verify", "--db", filepath.Join(t.TempDir(), "none.db")); code == 0 {
		t.Error("verify of a missing file succeeded")
	}
}

// verify checks the audit log's chain: whole, it prints the newest hash;
// with a record edited behind the gateway's back, it names the record and
// exits 1.
func TestVerify_CLI_AuditLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var last store.AuditRecord
	for _, who := range []string{"user:ann", "user:bob"} {
		if last, err = db.AppendAudit(store.AuditRecord{Time: time.Now(), Actor: who, Role: "admin", Action: "POST /api/v1/meters/{id}/relay", Target: "M-1"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	code, out, stderr := mallgrid(t, "verify", "--db", path)
	if want := "audit log whole (2 records; newest hash " + last.Hash + ")"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("verify = %d %q %q; want 0 and %q", code, out, stderr, want)
	}
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		key := []byte{0, 0, 0, 0, 0, 0, 0, 1} // record 1 (big-endian)
		return tx.Bucket([]byte("audit")).Put(key, bytes.Replace(tx.Bucket([]byte("audit")).Get(key), []byte("user:ann"), []byte("user:eve"), 1))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr = mallgrid(t, "verify", "--db", path)
	if code != exitFailure || !strings.Contains(out, "audit record 1: its content hashes to") || strings.Contains(out, "audit log whole") {
		t.Errorf("verify after an edit = %d %q %q; want %d naming audit record 1", code, out, stderr, exitFailure)
	}
}

// verify takes a file of an older schema (a backup, a snapshot from before
// an upgrade): it checks a copy upgraded in $TMPDIR, says so, and leaves
// the file, its directory and $TMPDIR as they were. Its marker is still
// checked first.
func TestVerify_CLI_OlderSchema(t *testing.T) {
	fixtures := []string{"v2-early"}
	for n := 1; n < store.SchemaVersion; n++ {
		fixtures = append(fixtures, fmt.Sprintf("v%d", n))
	}
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "store", "testdata", "schema", name+".db"))
			if err != nil {
				t.Fatal(err)
			}
			dir, tmp := t.TempDir(), t.TempDir()
			t.Setenv("TMPDIR", tmp)
			path := filepath.Join(dir, "mallgrid.db")
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			info, err := store.Inspect(path)
			if err != nil {
				t.Fatal(err)
			}
			code, out, stderr := mallgrid(t, "verify", "--db", path)
			upgraded := fmt.Sprintf("%s: schema %d, older than this gateway's %d: checked on a temporary copy upgraded to %d (the file was only read)",
				path, info.Schema, store.SchemaVersion, store.SchemaVersion)
			if code != 0 || !strings.Contains(out, upgraded) || !strings.Contains(out, "ledger ok") {
				t.Errorf("verify of a schema %d file = %d %q %q; want 0, %q and ledger ok", info.Schema, code, out, stderr, upgraded)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, raw) {
				t.Error("verify changed the file")
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
				t.Errorf("files beside the database after verify: %v; want the database alone", left)
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}

			// A marker naming another database is refused as before, and
			// nothing is copied.
			if err := os.WriteFile(store.MarkerPath(path), []byte(strings.Repeat("0", 32)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr = mallgrid(t, "verify", "--db", path)
			if code != exitRefused || !strings.Contains(stderr, store.MarkerPath(path)) {
				t.Errorf("verify under a marker naming another database = %d %q; want %d naming the marker", code, stderr, exitRefused)
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
		})
	}
}
