package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mallgrid/gateway/verify"
	"mallgrid/store"
)

// Every schema's fixture (store/testdata/schema), upgraded by the daemon's
// Open, passes verify: its ledger, alarms and audit chain as a gateway of
// this version reads them.
func TestFixtures_VerifyAfterUpgrade(t *testing.T) {
	fixtures, err := filepath.Glob(filepath.Join("..", "..", "store", "testdata", "schema", "*.db"))
	if err != nil || len(fixtures) < store.SchemaVersion {
		t.Fatalf("fixtures %v, %v; want one a schema at least", fixtures, err)
	}
	for _, f := range fixtures {
		name := strings.TrimSuffix(filepath.Base(f), ".db")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "mallgrid.db")
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(path, store.Options{Marker: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			report, err := verify.File(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(report.Violations) > 0 {
				t.Errorf("verify after the upgrade: %v", report.Violations)
			}
			if name != "v1" && report.Entries == 0 {
				t.Errorf("verify saw no entries")
			}
		})
	}
}
