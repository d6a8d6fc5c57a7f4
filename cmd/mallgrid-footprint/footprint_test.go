package main

import (
	"os"
	"path/filepath"
	"testing"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// The configuration the bench runs is one the gateway accepts: every bus,
// meter and tenant, and no warning that would change what runs.
func TestConfig_Valid(t *testing.T) {
	dir := t.TempDir()
	ports := []string{"/dev/pts/90", "/dev/pts/91", "/dev/pts/92"}
	path := filepath.Join(dir, "mallgrid.yaml")
	if err := os.WriteFile(path, gatewayConfig(filepath.Join(dir, "g.db"), "127.0.0.1:9", ports, 5), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if len(cfg.Buses) != 3 || len(cfg.Meters) != 15 || len(cfg.Tenants) != 15 {
		t.Errorf("%d buses, %d meters, %d tenants; want 3, 15, 15", len(cfg.Buses), len(cfg.Meters), len(cfg.Tenants))
	}
	for _, w := range cfg.Warnings {
		t.Errorf("warning: %v", w)
	}
}

// prepareDB credits every tenant and writes history until the file holds
// the bytes asked for, in a database the gateway opens with its marker.
func TestPrepareDB_History(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	const want = 4 << 20
	if err := prepareDB(t.Context(), path, 2, 10, want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < want {
		t.Errorf("file of %d bytes; want at least %d", st.Size(), want)
	}
	db, err := store.Open(path, store.Options{Marker: true})
	if err != nil {
		t.Fatalf("the gateway's open: %v", err)
	}
	defer db.Close()
	acct, err := db.Account(tenantID(2, 10))
	if err != nil {
		t.Fatal(err)
	}
	if acct.Entries < 2 || acct.Balance >= 100_000*1_000_000 {
		t.Errorf("account %s: %d entries, balance %v; want the top-up and charges after it", acct.ID, acct.Entries, acct.Balance)
	}
	samples, err := db.Samples(meterID(1, 1), st.ModTime().AddDate(0, 0, -31), st.ModTime())
	if err != nil || len(samples) == 0 {
		t.Errorf("samples of %s: %d, %v; want the history's", meterID(1, 1), len(samples), err)
	}
}

func TestProcStat(t *testing.T) {
	pid := os.Getpid()
	if _, err := procCPU(pid); err != nil {
		t.Errorf("procCPU: %v", err)
	}
	rss, hwm, err := procMem(pid)
	if err != nil || rss <= 0 || hwm < rss {
		t.Errorf("procMem = %d, %d, %v; want 0 < VmRSS ≤ VmHWM", rss, hwm, err)
	}
	anon, file, err := procRSS(pid)
	if err != nil || anon <= 0 || file <= 0 {
		t.Errorf("procRSS = %d, %d, %v; want both above 0", anon, file, err)
	}
}
