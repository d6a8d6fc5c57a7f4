package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"mallgrid/store"
)

// report finance writes the month's report from a stopped gateway's
// database, CSV or XLSX by the file's extension; a bad month, a missing
// -o and a database the running gateway holds are refused, leaving no
// file behind.
func TestReport_FinanceCLI(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "g.db")
	cfg := gatewayConfig(t, dbPath)
	ranDatabase(t, dbPath)
	// The month is the top-up's, in the site's zone (the configuration's
	// default): read as the report will.
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	es, err := db.Entries("T1", 0, 1)
	db.Close()
	if err != nil || len(es) != 1 {
		t.Fatalf("entries %v %v", es, err)
	}
	month := es[0].Time.In(siteZone(t, cfg)).Format("2006-01")
	csvOut := filepath.Join(dir, "nov.csv")
	code, _, stderr := mallgrid(t, "report", "finance", "-c", cfg, "--month", month, "-o", csvOut)
	if code != 0 {
		t.Fatalf("report finance = %d %s", code, stderr)
	}
	body, err := os.ReadFile(csvOut)
	if err != nil {
		t.Fatal(err)
	}
	// It lists tenants' balances and payments: the owner's alone.
	if fi, err := os.Stat(csvOut); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want -rw-------", csvOut, fi.Mode().Perm())
	}
	if !bytes.HasPrefix(body, []byte("Summary\r\n")) || !bytes.Contains(body, []byte(",T1,cash,,PAY-1,R00000001,100.00,")) {
		t.Errorf("the CSV lacks the summary or the top-up PAY-1:\n%s", body)
	}

	xlsxOut := filepath.Join(dir, "nov.xlsx")
	if code, _, stderr := mallgrid(t, "report", "finance", "-c", cfg, "--month", month, "-o", xlsxOut); code != 0 {
		t.Fatalf("report finance xlsx = %d %s", code, stderr)
	}
	wb, err := excelize.OpenFile(xlsxOut)
	if err != nil {
		t.Fatalf("the XLSX does not open: %v", err)
	}
	if v, _ := wb.GetCellValue("Summary", "B11"); v != "100.00" {
		t.Errorf("Summary!B11 (top-ups) %q; want 100.00", v)
	}
	wb.Close()

	bad := filepath.Join(dir, "bad.csv")
	for _, args := range [][]string{
		{"--month", "2026-13", "-o", bad},
		{"--month", "2026-11", "--format", "pdf", "-o", bad},
		{"--month", "2026-11"},
		{"-o", bad},
	} {
		code, _, stderr := mallgrid(t, append([]string{"report", "finance", "-c", cfg}, args...)...)
		if code != exitFailure || stderr == "" {
			t.Errorf("report finance %q = %d %q; want 1 with a reason", args, code, stderr)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Errorf("report finance %q left %s", args, bad)
		}
	}

	// A running gateway holds the database: refused after lock_timeout,
	// with what to do instead.
	held, err := store.Open(dbPath, store.Options{Marker: true})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	code, _, stderr = mallgrid(t, "report", "finance", "-c", cfg, "--month", "2026-11", "-o", bad)
	if code != exitFailure || !strings.Contains(stderr, "stop it first") {
		t.Errorf("report finance on a held database = %d %q; want 1 and stop it first", code, stderr)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Errorf("a refused report left %s", bad)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("a temporary file was left: %s", e.Name())
		}
	}
}

func siteZone(t *testing.T, cfgPath string) *time.Location {
	t.Helper()
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Location
}
