package gateway

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/apibench"
	"mallgrid/gateway/live"
	"mallgrid/gateway/metrics"
	"mallgrid/store"
)

// BenchmarkScrape_Mall2000 is one scrape (the registry's gather) of a
// 2,000-meter mall as the daemon wires it: the real live.Picture of
// apibench's mall, every meter changed since the last scrape (each view
// built again, as while every bus polls), adapted by meterSamples; a real
// database with 100 funded accounts and a scrape interval's charges.
func BenchmarkScrape_Mall2000(b *testing.B) {
	cfg, err := apibench.Mall(2000)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	lv := live.New(cfg, "bench", "", func() time.Time { return at })
	apibench.Fill(lv, cfg, at, rng)
	db, err := store.Open(filepath.Join(b.TempDir(), "m.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for i := range 100 {
		if _, _, err := db.PostTopUp(store.Entry{Time: at, Account: fmt.Sprintf("T-%04d", i+1), Kind: store.TopUp, Amount: 500 * billing.Yuan,
			Ref: fmt.Sprintf("PAY-%d", i), Channel: "cash", Actor: "token:till"}); err != nil {
			b.Fatal(err)
		}
	}
	m := metrics.New(metrics.Options{DB: db, Log: zerolog.Nop()})
	m.Attach(metrics.Sources{Meters: meterSamples(cfg, lv)})
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		at = at.Add(15 * time.Second)
		apibench.Change(lv, cfg, at, rng)
		var cycle store.Cycle
		for j := range 35 { // a 15 s scrape interval's charges at 2,000 meters
			cycle.Charges = append(cycle.Charges, store.Entry{Time: at, Account: fmt.Sprintf("T-%04d", (i+j)%100+1), Kind: store.Charge, Amount: -billing.Fen, Wh: 10})
		}
		if _, err := db.CommitCycle(cycle); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		fams, err := m.Gatherer().Gather()
		if err != nil || len(fams) == 0 {
			b.Fatalf("gather: %v", err)
		}
	}
}
