package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/xuri/excelize/v2"

	"mallgrid/gateway/web"
)

type staticSource struct{}

func (staticSource) Status() web.StatusView  { return web.StatusView{} }
func (staticSource) Meters() []web.MeterView { return nil }

func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// newReportServer serves the golden mall's reports over real HTTP, with a
// token per role: the secret is the role's name.
func newReportServer(t *testing.T) *httptest.Server {
	t.Helper()
	db, cfg := newMall(t)
	var tokens []web.Token
	for _, role := range []string{web.RoleViewer, web.RoleOperator, web.RoleFinance, web.RoleAdmin} {
		tokens = append(tokens, web.Token{Name: role, Role: role, SHA256: hash(role)})
	}
	s, err := web.New(staticSource{}, web.Options{Log: zerolog.Nop(), Tokens: tokens, Location: cfg.Location,
		Reports: &Reports{DB: db, Config: cfg}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, role, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+role)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestReports_FinanceAPI(t *testing.T) {
	srv := newReportServer(t)
	golden, err := os.ReadFile(filepath.Join("testdata", "finance-2026-11.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{web.RoleFinance, web.RoleAdmin} {
		resp, body := get(t, srv, role, "/api/v1/reports/finance?month=2026-11&format=csv")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", role, resp.StatusCode, body)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="mallgrid-finance-2026-11.csv"` {
			t.Errorf("Content-Disposition %q", cd)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if !bytes.Equal(body, golden) {
			t.Errorf("%s: the API's CSV is not the golden report:\n%s", role, lineDiff(string(golden), string(body)))
		}
	}
	resp, body := get(t, srv, web.RoleFinance, "/api/v1/reports/finance?month=2026-11&format=xlsx")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("xlsx: %d %s", resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="mallgrid-finance-2026-11.xlsx"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	wb, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the API's XLSX does not open: %v", err)
	}
	if v, _ := wb.GetCellValue("Summary", "B8"); v != "94.52" {
		t.Errorf("Summary!B8 (revenue) %q; want 94.52", v)
	}
	wb.Close()
	resp, body = get(t, srv, web.RoleFinance, "/api/v1/reports/finance?day=2026-11-02&format=csv")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("period,2026-11-02")) {
		t.Errorf("day report: %d %s", resp.StatusCode, body)
	}

	for _, c := range []struct {
		role, query string
		code        int
		reason      string
	}{
		{web.RoleViewer, "month=2026-11&format=csv", http.StatusForbidden, ""},
		{web.RoleOperator, "month=2026-11&format=csv", http.StatusForbidden, ""},
		{web.RoleFinance, "month=2026-13&format=csv", http.StatusBadRequest, `month "2026-13": want YYYY-MM, like 2026-11`},
		{web.RoleFinance, "month=2026-1&format=csv", http.StatusBadRequest, `month "2026-1": want YYYY-MM, like 2026-11`},
		{web.RoleFinance, "month=2026-11&format=pdf", http.StatusBadRequest, `format "pdf": want xlsx or csv`},
		{web.RoleFinance, "format=csv", http.StatusBadRequest, "month: required, YYYY-MM like 2026-11 (or day=YYYY-MM-DD for one day)"},
		{web.RoleFinance, "month=2026-11&day=2026-11-02", http.StatusBadRequest, "give month=YYYY-MM or day=YYYY-MM-DD, not both"},
		{web.RoleFinance, "day=2026-11-31&format=csv", http.StatusBadRequest, `day "2026-11-31": want YYYY-MM-DD, like 2026-11-27`},
	} {
		resp, body := get(t, srv, c.role, "/api/v1/reports/finance?"+c.query)
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d %s; want %d", c.role, c.query, resp.StatusCode, body, c.code)
			continue
		}
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || c.reason != "" && e.Error != c.reason {
			t.Errorf("%s %s: %s; want the reason %q", c.role, c.query, body, c.reason)
		}
	}
}

func TestReports_BalanceAPI(t *testing.T) {
	srv := newReportServer(t)
	resp, body := get(t, srv, web.RoleFinance, "/api/v1/reports/balance?from=2026-11-01T00:00:00%2B08:00&to=2026-11-03T00:00:00%2B08:00")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var v web.BalanceView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Days) != 2 || len(v.Months) != 1 || len(v.MainMeters) != 2 || len(v.PublicMeters) != 1 {
		t.Fatalf("%s", body)
	}
	d := v.Days[0]
	if d.Period != "2026-11-01" || d.MainKWh != "49.224" || d.TenantKWh != "38.400" || d.PublicKWh != "9.840" ||
		d.UnmeteredKWh != "0.984" || d.UnmeteredPct == nil || *d.UnmeteredPct != "2.00" {
		t.Errorf("the 1st: %+v; want main 49.224, tenants 38.400, public 9.840, unmetered 0.984 (2.00 %%)", d)
	}
	if v.Total.MainKWh != "98.472" || v.Total.UnmeteredKWh != "1.752" || v.From.Format("2006-01-02T15:04:05Z07:00") != "2026-11-01T00:00:00+08:00" {
		t.Errorf("total %+v from %v", v.Total, v.From)
	}
	for _, c := range []struct {
		role, query string
		code        int
	}{
		{web.RoleViewer, "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", http.StatusForbidden},
		{web.RoleFinance, "from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", http.StatusBadRequest},
		{web.RoleFinance, "from=yesterday&to=2026-11-01T00:00:00Z", http.StatusBadRequest},
		{web.RoleFinance, "from=2000-01-01T00:00:00Z&to=2026-11-01T00:00:00Z", http.StatusBadRequest}, // too many days
	} {
		if resp, body := get(t, srv, c.role, "/api/v1/reports/balance?"+c.query); resp.StatusCode != c.code {
			t.Errorf("%s %s: %d %s; want %d", c.role, c.query, resp.StatusCode, body, c.code)
		}
	}
}
