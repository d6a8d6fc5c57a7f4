//go:build e2e

package gateway

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// libreOfficeCSV is soffice's CSV export filter with its options: comma,
// double quotes, UTF-8 (76), from line 1, cells as shown (their number
// formats applied: the ninth token), and every sheet to a file of its own
// (-1, LibreOffice 7.2 and later), named BASE-SHEET.csv.
const libreOfficeCSV = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"

// needSoffice skips the test where LibreOffice is missing, except in CI,
// where a missing package is a broken setup that must not pass as a skip.
func needSoffice(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("soffice")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("soffice not installed in CI (apt-get install libreoffice-calc-nogui): %v", err)
		}
		t.Skipf("soffice not installed (apt-get install libreoffice-calc-nogui): %v", err)
	}
	return path
}

// TestE2E_LibreOfficeReadsTheFinanceXLSX: the month's report as the API
// serves it in XLSX, converted by LibreOffice (another reader than the
// excelize that wrote it) to CSV sheet by sheet, shows every figure the
// API's CSV has, cell for cell, with the number formats applied.
func TestE2E_LibreOfficeReadsTheFinanceXLSX(t *testing.T) {
	soffice := needSoffice(t)
	mall := newTestMall(t, 2)
	seeded := time.Now()
	seedCharges(t, mall.dbPath, seeded)
	base, _ := mall.start(t)
	for _, body := range []string{
		`{"amount":"88.80","ref":"WX-LO-1","channel":"wechat"}`,
		`{"amount":"1200.00","ref":"BK-LO-2","channel":"bank"}`,
	} {
		if code := call(t, "POST", base+"/api/v1/accounts/T-b1/topups", "books-secret", body, nil); code != http.StatusCreated {
			t.Fatalf("top-up %s: %d", body, code)
		}
	}
	month := seeded.In(mall.cfg.Location).Format("2006-01")
	fetch := func(format string) []byte {
		req, err := http.NewRequest("GET", base+"/api/v1/reports/finance?month="+month+"&format="+format, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer books-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("finance %s: %d %v %s", format, resp.StatusCode, err, body)
		}
		return body
	}
	want, order := csvSections(t, fetch("csv"))

	dir := t.TempDir()
	xlsx := filepath.Join(dir, "finance.xlsx")
	if err := os.WriteFile(xlsx, fetch("xlsx"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A profile of its own: no first-start dialogs, no lock shared with
	// another soffice of the machine.
	cmd := exec.CommandContext(ctx, soffice, "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--headless", "--convert-to", libreOfficeCSV, "--outdir", dir, xlsx)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, out)
	}
	t.Logf("soffice converted %d sheets in %v", len(order), time.Since(start).Round(time.Millisecond))
	for _, name := range order {
		data, err := os.ReadFile(filepath.Join(dir, "finance-"+name+".csv"))
		if err != nil {
			t.Errorf("sheet %q: %v", name, err)
			continue
		}
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		got, err := r.ReadAll()
		if err != nil {
			t.Fatalf("sheet %q: %v", name, err)
		}
		if len(got) != len(want[name]) {
			t.Errorf("sheet %q: %d rows in LibreOffice; the API's CSV has %d", name, len(got), len(want[name]))
			continue
		}
		for i := range got {
			if !slices.Equal(got[i], want[name][i]) {
				t.Errorf("sheet %q row %d: LibreOffice shows %q; the API's CSV has %q", name, i+1, got[i], want[name][i])
			}
		}
	}
	// The figures the mall made are there, not only empty tables.
	tenants := want["Tenants"]
	var sawCharge, sawTopUps bool
	for _, r := range tenants {
		sawCharge = sawCharge || r[0] == "T-a1" && r[4] == "5.55"
		sawTopUps = sawTopUps || r[0] == "T-b1" && r[7] == "1288.80"
	}
	if !sawCharge || !sawTopUps {
		t.Errorf("the report lacks T-a1's 5.55 of charges or T-b1's 1288.80 of top-ups: %q", tenants)
	}
}

// csvSections parses the report's CSV into its tables' rows (header
// first) by name, and their order.
func csvSections(t *testing.T, data []byte) (map[string][][]string, []string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][][]string)
	var order []string
	for _, rec := range recs {
		if len(rec) == 1 {
			order = append(order, rec[0])
			out[rec[0]] = [][]string{}
			continue
		}
		if len(order) == 0 {
			t.Fatalf("a row before the first section: %q", rec)
		}
		out[order[len(order)-1]] = append(out[order[len(order)-1]], rec)
	}
	return out, order
}
