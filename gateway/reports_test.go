package gateway

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"mallgrid/billing"
	"mallgrid/store"
)

// TestReports_FinanceOnARealMall runs the gateway on simulated meters over
// a database holding two charges of the month; a tenant tops up by WeChat, and
// the month's finance report (CSV and XLSX, finance's token) shows the
// charges the ledger API lists and the top-up with its reference; the
// viewer and the operator are refused; the balance endpoint answers.
func TestReports_FinanceOnARealMall(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	// Charges of a quarter hour are posted when the slot closes: too slow
	// for a test, so the month's charges are in the file before the
	// gateway opens it, as a restart finds them.
	seeded := time.Now()
	seedCharges(t, mall.dbPath, seeded)
	base, _ := mall.start(t)
	const books = "books-secret"
	var ledger []struct {
		Time   time.Time `json:"time"`
		Kind   string    `json:"kind"`
		Amount string    `json:"amount"`
		KWh    string    `json:"kwh"`
	}
	readLedger := func() {
		if code := call(t, "GET", base+"/api/v1/accounts/T-a1/ledger", books, "", &ledger); code != 200 {
			t.Fatalf("ledger: %d", code)
		}
	}
	readLedger()
	var charged billing.Money
	var wh int64
	for _, c := range ledger {
		if c.Kind == "charge" {
			m, err := billing.ParseMoney(c.Amount)
			if err != nil {
				t.Fatal(err)
			}
			charged -= m
		}
	}
	wh = 4_321 + 1_234
	if charged != 5_55*billing.Fen {
		t.Fatalf("the ledger API lists charges of %s; the seeded 5.55", charged)
	}
	var topUp struct {
		Time time.Time `json:"time"`
	}
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", books, `{"amount":"88.80","ref":"WX-REPORT-1","channel":"wechat"}`, &topUp); code != 201 {
		t.Fatalf("top-up: %d", code)
	}
	month := seeded.In(mall.cfg.Location).Format("2006-01")
	if topUp.Time.In(mall.cfg.Location).Format("2006-01") != month {
		t.Skip("a month ended between the seeded charges and the top-up")
	}

	get := func(token, query string) (int, http.Header, []byte) {
		req, err := http.NewRequest("GET", base+"/api/v1/reports/finance?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}
	code, hdr, body := get(books, "month="+month+"&format=csv")
	if code != 200 {
		t.Fatalf("finance csv: %d %s", code, body)
	}
	if cd := hdr.Get("Content-Disposition"); cd != `attachment; filename="mallgrid-finance-`+month+`.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var section string
	var sawTenant, sawTopUp bool
	for _, rec := range recs {
		if len(rec) == 1 {
			section = rec[0]
			continue
		}
		switch {
		case section == "Tenants" && rec[0] == "T-a1":
			sawTenant = true
			// tenant, name, category, charged kWh, revenue, …, top-ups
			if rec[3] != fmt.Sprintf("%d.%03d", wh/1000, wh%1000) || rec[4] != charged.String() || rec[7] != "88.80" {
				t.Errorf("T-a1's row %q; want the ledger's %d Wh charged for %s, and 88.80 topped up", rec, wh, charged)
			}
		case section == "Top-ups" && rec[5] == "WX-REPORT-1":
			sawTopUp = true
			if rec[2] != "T-a1" || rec[3] != "wechat" || rec[4] != "token:books" || rec[6] == "" || rec[7] != "88.80" {
				t.Errorf("the top-up's row %q", rec)
			}
		}
	}
	if !sawTenant || !sawTopUp {
		t.Errorf("tenant row %v, top-up row %v in:\n%s", sawTenant, sawTopUp, body)
	}

	code, _, body = get(books, "month="+month+"&format=xlsx")
	if code != 200 {
		t.Fatalf("finance xlsx: %d %s", code, body)
	}
	wb, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the XLSX does not open: %v", err)
	}
	defer wb.Close()
	if sheets := wb.GetSheetList(); len(sheets) == 0 || sheets[0] != "Summary" {
		t.Errorf("sheets %q; want the summary first", sheets)
	}

	for _, token := range []string{"screen-secret", "till-secret"} {
		if code, _, body := get(token, "month="+month+"&format=csv"); code != http.StatusForbidden {
			t.Errorf("%s: %d %s; want 403", token, code, body)
		}
	}
	if code, _, body := get(books, "month=nope&format=csv"); code != http.StatusBadRequest {
		t.Errorf("a bad month: %d %s; want 400", code, body)
	}
	from := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var bal struct {
		Total struct {
			TenantKWh    string  `json:"tenant_kwh"`
			MainKWh      string  `json:"main_kwh"`
			UnmeteredPct *string `json:"unmetered_pct"`
		} `json:"total"`
	}
	if code := call(t, "GET", base+"/api/v1/reports/balance?from="+from+"&to="+to, books, "", &bal); code != 200 {
		t.Errorf("balance: %d", code)
	}
	// The simulated meters draw nothing: the seeded slot is all, and
	// without a main meter there is no per cent.
	if bal.Total.TenantKWh != "5.555" || bal.Total.MainKWh != "0.000" || bal.Total.UnmeteredPct != nil {
		t.Errorf("balance total %+v; want 5.555 kWh of tenants, no mains, no per cent", bal.Total)
	}
}

// seedCharges writes two charges of T-a1 (4.321 kWh for 4.32, 1.234 kWh
// for 1.23) and their interval energy at when into the gateway's
// database, opened as the daemon opens it.
func seedCharges(t *testing.T, path string, when time.Time) {
	t.Helper()
	db, err := store.Open(path, store.Options{Marker: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from := when.Add(-15 * time.Minute)
	_, err = db.CommitCycle(store.Cycle{
		Charges: []store.Entry{
			{Time: when, Account: "T-a1", Kind: store.Charge, Amount: -432 * billing.Fen, Meter: "M-a1", Wh: 4_321, From: &from, To: &when, Window: "flat"},
			{Time: when, Account: "T-a1", Kind: store.Charge, Amount: -123 * billing.Fen, Meter: "M-a1", Wh: 1_234, From: &from, To: &when, Window: "flat"},
		},
		Energy: []store.IntervalEnergy{{Meter: "M-a1", Time: when, Wh: 5_555}},
	})
	if err != nil {
		t.Fatal(err)
	}
}
