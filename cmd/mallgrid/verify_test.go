package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

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
