package report

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// BenchmarkFinance_Month is a month's report of a mall of 100 tenants
// whose ledger holds October and November 2026, a charge every 15 minutes
// for each (9,600 entries a day, 585,600 in all): November, the newest
// month, and October, read under November's entries: November costs its
// own entries, October its own and November's.
func BenchmarkFinance_Month(b *testing.B) {
	cfg, db := benchMall(b, 100, 61)
	for _, month := range []string{"2026-11", "2026-10"} {
		b.Run(month, func(b *testing.B) {
			p, err := MonthPeriod(month, cfg.Location)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				f, err := BuildFinance(context.Background(), db, cfg, p)
				if err != nil {
					b.Fatal(err)
				}
				if f.Total.ChargeWh == 0 {
					b.Fatal("no charges in the month")
				}
			}
		})
	}
}

func benchMall(b *testing.B, tenants, days int) (*config.Config, *store.DB) {
	b.Helper()
	var y strings.Builder
	y.WriteString("site: {name: Bench, timezone: Asia/Shanghai}\nstorage: {path: " + b.TempDir() + "/b.db}\nbuses: [{name: b0, port: /dev/ttyUSB0}, {name: b1, port: /dev/ttyUSB1}, {name: b2, port: /dev/ttyUSB2}]\nmeters:\n")
	for i := range tenants {
		fmt.Fprintf(&y, "  - {id: M-%d, bus: b%d, address: %d, model: kpm33b, tenant: T-%d}\n", i, i/247, i%247+1, i)
	}
	y.WriteString("tenants:\n")
	for i := range tenants {
		fmt.Fprintf(&y, "  - {id: T-%d, name: Shop %d, category: c%d}\n", i, i, i%7)
	}
	cfg, err := config.Parse("b.yaml", []byte(y.String()), nil)
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	// The ledger ends with November: the month reported is its last.
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, cfg.Location).AddDate(0, 0, -days)
	for slot := start; slot.Before(start.AddDate(0, 0, days)); slot = slot.Add(15 * time.Minute) {
		c := store.Cycle{Charges: make([]store.Entry, 0, tenants)}
		for i := range tenants {
			c.Charges = append(c.Charges, store.Entry{Time: slot, Account: fmt.Sprintf("T-%d", i), Kind: store.Charge,
				Amount: -12 * billing.Fen, Meter: fmt.Sprintf("M-%d", i), Wh: 150, Window: "flat"})
		}
		if _, err := db.CommitCycle(c); err != nil {
			b.Fatal(err)
		}
	}
	return cfg, db
}
