package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// config check --db names what the database knows and the configuration no
// longer does, and still exits 0: drift is reported, not refused.
func TestConfigCheck_ReportsDrift(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "g.db")
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostTopUp(store.Entry{Account: "T-OLD", Amount: 20 * billing.Yuan, Ref: "PAY-1", Channel: "cash", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cfg := filepath.Join(dir, "m.yaml")
	src := "site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}]\ntenants: [{id: T-1, name: Shop}]\n"
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := mallgrid(t, "config", "check", "-c", cfg, "--db", dbPath)
	if code != 0 || !strings.Contains(out, "drift: account T-OLD (balance 20.00, 1 entries) has no tenant in the configuration") {
		t.Errorf("config check --db = %d\n%s%s\nwant 0 and the archived account named", code, out, stderr)
	}
	if code, out, _ := mallgrid(t, "config", "check", "-c", cfg); code != 0 || strings.Contains(out, "drift") {
		t.Errorf("config check without --db = %d %q; want 0, no drift looked for", code, out)
	}
}
