package report

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/store"
)

// benchTenants is the mall of the statements benchmark (issue 14: 500
// tenants' statements).
const benchTenants = 500

// writeBenchMonth fills db with November 2026 for n tenants, as a busy
// mall's ledger holds it: each tenant's meter has every 15-minute slot of
// the month (2,880), a charge per tariff window per day (4 × 30), two
// top-ups with notes and receipts, a public-area share and an adjustment.
func writeBenchMonth(b *testing.B, db *store.DB, loc *time.Location, n int) {
	b.Helper()
	windows := []struct {
		name string
		hour int
	}{{"valley", 3}, {"flat", 9}, {"peak", 14}, {"sharp", 19}}
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, loc)
	for day := 0; day < 30; day++ {
		d := from.AddDate(0, 0, day)
		var c store.Cycle
		for i := 0; i < n; i++ {
			meter, tenant := fmt.Sprintf("M-%03d", i), fmt.Sprintf("T-%03d", i)
			for s := 0; s < 96; s++ {
				c.Energy = append(c.Energy, store.IntervalEnergy{Meter: meter, Time: d.Add(time.Duration(s) * store.IntervalLength), Wh: int64(200 + (i+s)%150)})
			}
			for q := 0; q < 96; q++ {
				w := windows[q/24]
				at := d.Add(time.Duration(q+1) * store.IntervalLength)
				f := at.Add(-store.IntervalLength)
				c.Charges = append(c.Charges, store.Entry{Time: at, Account: tenant, Kind: store.Charge, Amount: -billing.Money(1_234_567 + i),
					Meter: meter, Wh: 1_500, From: &f, To: &at, Window: w.name, Actor: "gateway"})
			}
		}
		if _, err := db.CommitCycle(c); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		tenant := fmt.Sprintf("T-%03d", i)
		for k, day := range []int{2, 17} {
			if _, _, err := db.PostTopUp(store.Entry{Time: from.AddDate(0, 0, day), Account: tenant, Amount: 2_000 * billing.Yuan, Channel: "wechat",
				Ref: fmt.Sprintf("WX-%s-%d", tenant, k), Actor: "books", Note: "monthly prepayment"}); err != nil {
				b.Fatal(err)
			}
		}
		af, at := from, from.AddDate(0, 1, 0)
		for _, e := range []store.Entry{
			{Time: from.AddDate(0, 0, 29), Account: tenant, Kind: store.Allocation, Amount: -37 * billing.Yuan, Wh: 42_000, From: &af, To: &at,
				Actor: "gateway", Note: "corridors 2026-11: area 120 of 24,000 m² (0.50 %)\ntariff standard"},
			{Time: from.AddDate(0, 0, 20), Account: tenant, Kind: store.Adjustment, Amount: 5 * billing.Yuan, Actor: "books", Note: "meter swapped"},
		} {
			if _, err := db.PostEntry(e); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStatements500 makes the November statements of a 500-tenant
// mall: the figures (one pass over the ledger, each tenant's 2,880
// slots), then every statement as HTML and as PDF. An op is all 500.
func BenchmarkStatements500(b *testing.B) {
	var y strings.Builder
	y.WriteString("site: {name: Bench Mall, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}, {name: c, port: /dev/ttyUSB1}, {name: d, port: /dev/ttyUSB2}]\nmeters:\n")
	for i := 0; i < benchTenants; i++ {
		fmt.Fprintf(&y, "  - {id: M-%03d, bus: %s, address: %d, model: kpm33b, tenant: T-%03d}\n", i, string("bcd"[i/240]), i%240+1, i)
	}
	y.WriteString("tenants:\n")
	for i := 0; i < benchTenants; i++ {
		fmt.Fprintf(&y, "  - {id: T-%03d, name: \"商铺 Shop %03d\", area_m2: 120}\n", i, i)
	}
	y.WriteString("storage: {path: " + filepath.Join(b.TempDir(), "m.db") + "}\n")
	cfg, err := config.Parse("bench.yaml", []byte(y.String()), nil)
	if err != nil {
		b.Fatal(err)
	}
	db := stmtOpen(b, cfg)
	// October: one top-up each, and its statements, which November's
	// "next" build starts from.
	for i := 0; i < benchTenants; i++ {
		if _, _, err := db.PostTopUp(store.Entry{Time: time.Date(2026, 10, 20, 9, 0, 0, 0, cfg.Location), Account: fmt.Sprintf("T-%03d", i),
			Amount: 1_000 * billing.Yuan, Channel: "cash", Ref: fmt.Sprintf("OCT-%03d", i), Actor: "till"}); err != nil {
			b.Fatal(err)
		}
	}
	october, err := BuildStatements(db, cfg, "2026-10")
	if err != nil {
		b.Fatal(err)
	}
	writeBenchMonth(b, db, cfg.Location, benchTenants)
	r, err := NewStatementRenderer(cfg.Location)
	if err != nil {
		b.Fatal(err)
	}
	var all []Statement
	b.Run("figures", func(b *testing.B) {
		for b.Loop() {
			if all, err = BuildStatements(db, cfg, "2026-11"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchTenants, "µs/statement")
	})
	for _, s := range all {
		if err := s.Reconcile(); err != nil || len(s.TopUps) != 2 || s.Totals.Wh == 0 {
			b.Fatalf("%s: %v (%d top-ups, %d Wh)", s.Tenant, err, len(s.TopUps), s.Totals.Wh)
		}
	}
	// November from October's statements and the entries posted since:
	// what each month after a tenant's first costs, whatever the ledger's
	// age (here the ledger holds only this month, so it reads as much as
	// the whole-ledger pass).
	b.Run("next", func(b *testing.B) {
		for b.Loop() {
			next, err := buildNext(context.Background(), db, cfg, "2026-11", october)
			if err != nil {
				b.Fatal(err)
			}
			if next[7].Closing != all[7].Closing {
				b.Fatalf("closing %s; the whole ledger gives %s", next[7].Closing, all[7].Closing)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchTenants, "µs/statement")
	})
	generated := time.Date(2026, 12, 1, 1, 0, 0, 0, cfg.Location)
	for _, format := range []string{"html", "pdf"} {
		b.Run(format, func(b *testing.B) {
			var size int64
			for b.Loop() {
				size = 0
				for i, s := range all {
					w := &countingWriter{}
					is, lang := Issue{Statement: s, Generated: generated, Issued: true}, i18n.Langs()[i%2]
					if format == "pdf" {
						err = r.PDF(w, is, lang, PDFOptions{})
					} else {
						err = r.HTML(w, is, lang)
					}
					if err != nil {
						b.Fatal(err)
					}
					size += w.n
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/benchTenants, "µs/statement")
			b.ReportMetric(float64(size)/benchTenants, "bytes/statement")
		})
	}
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkStatementPDF is one statement's PDF, the font's cost included.
func BenchmarkStatementPDF(b *testing.B) {
	is, r := stmtIssue(b, "T-102")
	for b.Loop() {
		if err := r.PDF(io.Discard, is, i18n.ZhCN, PDFOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
