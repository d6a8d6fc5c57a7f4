package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

var update = flag.Bool("update", false, "write the golden reports in testdata anew")

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// mallYAML is a small mall in Shanghai: three tenants' meters, one
// public-area meter and two main meters (two transformers).
const mallYAML = `site: {name: Harbour Mall, timezone: Asia/Shanghai}
buses: [{name: b, port: /dev/ttyUSB0}]
meters:
  - {id: M-101, bus: b, address: 1, model: kpm33b, tenant: T-101}
  - {id: M-102, bus: b, address: 2, model: kpm33b, tenant: T-102}
  - {id: M-201, bus: b, address: 3, model: kpm33b, tenant: T-201}
  - {id: M-301, bus: b, address: 4, model: kpm33b, tenant: T-301}
  - {id: M-PUB, bus: b, address: 5, model: kpm33b, role: public}
  - {id: M-MAIN1, bus: b, address: 6, model: kpm33b, role: main}
  - {id: M-MAIN2, bus: b, address: 7, model: kpm33b, role: main}
tenants:
  - {id: T-101, name: Noodle House, category: restaurant}
  - {id: T-102, name: "书店 Books, Ltd", category: retail}
  - {id: T-201, name: Cinema, category: entertainment}
  - {id: T-301, name: Tea Kiosk, category: restaurant}
`

func newMallConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("mall.yaml", []byte(mallYAML+"storage: {path: "+filepath.Join(dir, "m.db")+"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openDB(t *testing.T, cfg *config.Config) *store.DB {
	t.Helper()
	db, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func yuan(t testing.TB, s string) billing.Money {
	t.Helper()
	m, err := billing.ParseMoney(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func at(month time.Month, day, hour, minute int) time.Time {
	return time.Date(2026, month, day, hour, minute, 0, 0, shanghai)
}

// mallHistory writes a deterministic history of October to December 2026
// into db and returns it: the golden report's input.
func mallHistory(t *testing.T, db *store.DB) {
	t.Helper()
	topUp := func(when time.Time, acct, amount, channel, actor, ref, note string) store.Entry {
		t.Helper()
		e, _, err := db.PostTopUp(store.Entry{Time: when, Account: acct, Kind: store.TopUp, Amount: yuan(t, amount),
			Channel: channel, Actor: actor, Ref: ref, Note: note})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	charge := func(when time.Time, acct, meter string, wh int64, window, amount string) store.Entry {
		t.Helper()
		from := when.Add(-15 * time.Minute)
		c := store.Entry{Time: when, Account: acct, Kind: store.Charge, Amount: -yuan(t, amount), Meter: meter, Wh: wh,
			From: &from, To: &when, Window: window, Actor: "gateway"}
		if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{c}}); err != nil {
			t.Fatal(err)
		}
		es, err := db.Entries(acct, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		return es[0]
	}
	post := func(e store.Entry) {
		t.Helper()
		var err error
		if e.Ref != "" { // a correction, kept once by its reference
			_, _, err = db.PostCorrection(e)
		} else {
			_, err = db.PostEntry(e)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Before the month: the opening balances.
	old := topUp(time.Date(2026, 9, 3, 10, 0, 0, 0, shanghai), "T-OLD", "50.00", "cash", "till", "C-0903", "")
	topUp(at(10, 31, 20, 0), "T-101", "500.00", "cash", "till", "C-1031", "")
	charge(at(10, 31, 23, 45), "T-101", "M-101", 10_000, "peak", "8.50")

	// November.
	charge(at(11, 1, 0, 15), "T-101", "M-101", 2_500, "valley", "0.78")
	topUp(at(11, 1, 9, 30), "T-102", "300.00", "wechat", "books", "WX-4200000001", "paid at the counter, 2nd floor")
	charge(at(11, 2, 10, 0), "T-101", "M-101", 12_345, "peak", "10.49")
	charge(at(11, 2, 10, 0), "T-102", "M-102", 4_000, "peak", "3.40")
	charge(at(11, 2, 14, 15), "T-102", "M-102", 3_001, "flat", "1.85")
	topUp(at(11, 3, 11, 0), "T-201", "1000.00", "bank", "books", "BK-77", "")
	charge(at(11, 3, 21, 0), "T-201", "M-201", 40_000, "peak", "34.00")
	wrong := charge(at(11, 4, 3, 0), "T-201", "M-201", 9_000, "valley", "2.79")
	charge(at(11, 5, 12, 0), "T-301", "M-301", 25_000, "flat", "15.40")
	topUp(at(11, 10, 16, 20), "T-301", "10.00", "alipay", "till", "ALI-2026111016", "")
	post(store.Entry{Time: at(11, 15, 9, 0), Account: "T-102", Kind: store.Adjustment, Amount: yuan(t, "5.00"),
		Ref: "ADJ-1", Actor: "books", Note: "meter M-102 swapped: 6.02 kWh billed twice"})
	post(store.Entry{Time: at(11, 20, 14, 0), Account: "T-201", Kind: store.Reversal, Amount: yuan(t, "2.79"),
		Reverses: wrong.ID, Ref: "REV-1", Actor: "books", Note: "the cinema's night test: the meter was on the wrong circuit"})
	// A top-up of September found never paid: reversed in November.
	post(store.Entry{Time: at(11, 25, 10, 0), Account: "T-OLD", Kind: store.Reversal, Amount: -yuan(t, "50.00"),
		Reverses: old.ID, Ref: "REV-2", Actor: "books", Note: "cash C-0903 not in the till"})
	charge(at(11, 28, 18, 0), "T-301", "M-301", 30_000, "peak", "25.50")
	post(store.Entry{Time: at(11, 30, 23, 0), Account: "T-101", Kind: store.Allocation, Amount: -yuan(t, "12.34"), Wh: 14_517,
		Actor: "gateway", Note: "corridors 2026-11: area 120/200"})
	post(store.Entry{Time: at(11, 30, 23, 0), Account: "T-102", Kind: store.Allocation, Amount: -yuan(t, "8.23"), Wh: 9_683,
		Actor: "gateway", Note: "corridors 2026-11: area 80/200"})
	// The month's last second, and the next month's first.
	charge(time.Date(2026, 11, 30, 23, 59, 59, 0, shanghai), "T-201", "M-201", 1_000, "valley", "0.31")
	charge(at(12, 1, 0, 0), "T-201", "M-201", 1_000, "valley", "0.31")
	topUp(at(12, 1, 8, 0), "T-101", "100.00", "cash", "till", "C-1201", "")

	// Interval energy: two days of it, the mains 3–4 % above the
	// sub-meters; one slot on each side of the month.
	var energy []store.IntervalEnergy
	slot := func(meter string, when time.Time, wh int64) {
		energy = append(energy, store.IntervalEnergy{Meter: meter, Time: when, Wh: wh})
	}
	slot("M-MAIN1", at(10, 31, 23, 45), 9_999)
	slot("M-MAIN1", at(12, 1, 0, 0), 9_999)
	for h := 0; h < 24; h++ {
		for _, d := range []int{1, 2} {
			slot("M-101", at(11, d, h, 0), 1_000)
			slot("M-102", at(11, d, h, 15), 600)
			slot("M-PUB", at(11, d, h, 30), 400+int64(d)*10)
			slot("M-MAIN1", at(11, d, h, 0), 1_250)
			slot("M-MAIN2", at(11, d, h, 45), 800+int64(d))
		}
	}
	// The public meter alone on the 3rd: the mains were offline.
	slot("M-PUB", at(11, 3, 12, 0), 5_000)
	if _, err := db.CommitCycle(store.Cycle{Energy: energy}); err != nil {
		t.Fatal(err)
	}
}

func newMall(t *testing.T) (*store.DB, *config.Config) {
	t.Helper()
	cfg := newMallConfig(t, t.TempDir())
	db := openDB(t, cfg)
	mallHistory(t, db)
	return db, cfg
}

func buildReport(t *testing.T, db *store.DB, cfg *config.Config, period string) *Finance {
	t.Helper()
	p, err := ParsePeriod(period, cfg.Location)
	if err != nil {
		t.Fatal(err)
	}
	f, err := BuildFinance(context.Background(), db, cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the report written now (go test -update writes it anew once the change is meant):\n%s",
			path, lineDiff(string(want), string(got)))
	}
}

// lineDiff lists the lines that differ, by number.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func TestFinance_GoldenCSV(t *testing.T) {
	db, cfg := newMall(t)
	for _, period := range []string{"2026-11", "2026-11-02"} {
		t.Run(period, func(t *testing.T) {
			var buf bytes.Buffer
			if err := buildReport(t, db, cfg, period).Write(&buf, "csv"); err != nil {
				t.Fatal(err)
			}
			golden(t, "finance-"+period+".csv", buf.Bytes())
		})
	}
}

// sections parses the CSV of WriteCSV back into its tables' rows (header
// first), by name, and their order.
func sections(t *testing.T, data []byte) (map[string][][]string, []string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][][]string)
	var order []string
	var cur string
	for _, rec := range recs {
		if len(rec) == 1 {
			cur = rec[0]
			order = append(order, cur)
			out[cur] = [][]string{}
			continue
		}
		if cur == "" {
			t.Fatalf("a row before the first section's name: %q", rec)
		}
		out[cur] = append(out[cur], rec)
	}
	return out, order
}

// A period whose bounds are given in another zone than the site's has its
// days and their entries as the site's calendar has them.
func TestFinance_PeriodInAnotherZone(t *testing.T) {
	db, cfg := newMall(t)
	site := Period{From: at(11, 1, 0, 0), To: at(11, 4, 0, 0), Label: "three days"}
	utc := Period{From: site.From.UTC(), To: site.To.UTC(), Label: site.Label}
	want, err := BuildFinance(context.Background(), db, cfg, site)
	if err != nil {
		t.Fatal(err)
	}
	got, err := BuildFinance(context.Background(), db, cfg, utc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Days, want.Days) {
		t.Errorf("days of the period in UTC:\n%+v\nin the site's zone:\n%+v", got.Days, want.Days)
	}
	if want.Days[0].Name != "2026-11-01" || want.Days[0].Revenue != yuan(t, "0.78") || want.Days[1].Revenue != yuan(t, "15.74") {
		t.Errorf("days %+v; want 0.78 of revenue on the 1st, 15.74 on the 2nd", want.Days)
	}
}

// TestFinance_CSVTextIsNotAFormula posts a top-up whose payment reference,
// note and operator, and a tenant whose name, a spreadsheet would run as a
// formula: the CSV holds each with an apostrophe in front, and its numbers
// (a negative amount too) as they are.
func TestFinance_CSVTextIsNotAFormula(t *testing.T) {
	dir := t.TempDir()
	yaml := strings.Replace(mallYAML, "name: Tea Kiosk", `name: "+Tea Kiosk"`, 1)
	cfg, err := config.Parse("mall.yaml", []byte(yaml+"storage: {path: "+filepath.Join(dir, "m.db")+"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, cfg)
	ref, note, actor := `=HYPERLINK("http://evil.example/","pay here")`, "@SUM(A1:A9)", "-till"
	if _, _, err := db.PostTopUp(store.Entry{Time: at(11, 3, 10, 0), Account: "T-301", Kind: store.TopUp, Amount: yuan(t, "20.00"),
		Channel: "cash", Actor: actor, Ref: ref, Note: note}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostCorrection(store.Entry{Time: at(11, 4, 10, 0), Account: "T-301", Kind: store.Adjustment, Amount: -yuan(t, "3.00"),
		Ref: "\tA-1", Actor: "books", Note: "\rreason"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := buildReport(t, db, cfg, "2026-11").Write(&buf, "csv"); err != nil {
		t.Fatal(err)
	}
	tables, _ := sections(t, buf.Bytes())
	want := map[string]map[string]string{
		"Top-ups": {"payment reference": "'" + ref, "note": "'" + note, "operator": "'" + actor, "amount": "20.00", "tenant": "T-301"},
		// encoding/csv's writer with UseCRLF drops a carriage return
		// within a field; the apostrophe stays.
		"Corrections": {"reference": "'\tA-1", "note": "'reason", "amount": "-3.00"},
	}
	for name, cols := range want {
		rows := tables[name]
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows, want a header and one", name, len(rows))
		}
		for col, v := range cols {
			i := indexOf(rows[0], col)
			if i < 0 {
				t.Fatalf("%s: no column %q in %q", name, col, rows[0])
			}
			if rows[1][i] != v {
				t.Errorf("%s: %s %q, want %q", name, col, rows[1][i], v)
			}
		}
	}
	found := false
	for _, r := range tables["Tenants"] {
		for _, c := range r {
			if strings.Contains(c, "Tea Kiosk") {
				found = true
				if c != "'+Tea Kiosk" {
					t.Errorf("Tenants: name %q, want '+Tea Kiosk", c)
				}
			}
		}
	}
	if !found {
		t.Error("Tenants: no Tea Kiosk")
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// cancellingSource cancels its context at the n-th read of a ledger page
// and counts the reads.
type cancellingSource struct {
	*store.DB
	n, reads int
	cancel   context.CancelFunc
}

func (c *cancellingSource) Entries(account string, before uint64, limit int) ([]store.Entry, error) {
	c.reads++
	if c.reads == c.n {
		c.cancel()
	}
	return c.DB.Entries(account, before, limit)
}

// A finance build stops at the next page once its context ends, with the
// context's error, whichever account or page it is at.
func TestFinance_StopsWhenCancelled(t *testing.T) {
	db, cfg := newMall(t)
	all := &cancellingSource{DB: db, cancel: func() {}}
	p, err := MonthPeriod("2026-11", shanghai)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildFinance(context.Background(), all, cfg, p); err != nil {
		t.Fatal(err)
	}
	if all.reads < 4 {
		t.Fatalf("the build read %d pages: too few to stop in the middle", all.reads)
	}
	for n := 1; n < all.reads; n++ {
		ctx, cancel := context.WithCancel(context.Background())
		src := &cancellingSource{DB: db, n: n, cancel: cancel}
		_, err := BuildFinance(ctx, src, cfg, p)
		cancel()
		if !errors.Is(err, context.Canceled) || src.reads != n {
			t.Errorf("cancelled at read %d of %d: %v after %d reads; want context.Canceled at once", n, all.reads, err, src.reads)
		}
	}
}
