package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestConfigPaths_DatabaseAndSnapshots: `config paths` prints where the
// gateway would keep its database and snapshots, the environment's
// override included (the package's prerm records it for the purge).
func TestConfigPaths_DatabaseAndSnapshots(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mallgrid.yaml")
	file := "site: {name: x}\nbuses:\n  - {name: b1, port: /dev/ttyUSB0}\n" +
		"meters:\n  - {id: M1, bus: b1, address: 1, model: kpm33b, tenant: T1}\n" +
		"tenants:\n  - {id: T1, name: A}\n" +
		"storage:\n  path: /data/mallgrid/mallgrid.db\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := mallgrid(t, "config", "paths", "-c", path)
	if want := "database /data/mallgrid/mallgrid.db\nsnapshots /data/mallgrid/snapshots\n"; code != 0 || out != want {
		t.Errorf("config paths = %d, %q %q; want 0, %q", code, out, stderr, want)
	}

	t.Setenv("MALLGRID_STORAGE_PATH", "/srv/ledger/mallgrid.db")
	code, out, stderr = mallgrid(t, "config", "paths", "-c", path)
	if want := "database /srv/ledger/mallgrid.db\nsnapshots /srv/ledger/snapshots\n"; code != 0 || out != want {
		t.Errorf("config paths with MALLGRID_STORAGE_PATH = %d, %q %q; want 0, %q", code, out, stderr, want)
	}

	if err := os.WriteFile(path, []byte(file+"  tarif: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := mallgrid(t, "config", "paths", "-c", path); code != 2 || out != "" {
		t.Errorf("config paths of a file with problems = %d, %q; want 2 and nothing on stdout", code, out)
	}
}
