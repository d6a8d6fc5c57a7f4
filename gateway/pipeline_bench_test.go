package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/pipeline"
	"mallgrid/gateway/poll"
	"mallgrid/store"
)

// benchMall is a configuration of buses × perBus tenant meters, each
// meter its own tenant, and a pipeline on a fresh database.
func benchMall(b testing.TB, buses, perBus int) (*pipeline.Pipeline, *store.DB, *config.Config, string) {
	b.Helper()
	var y strings.Builder
	dir := b.TempDir()
	fmt.Fprintf(&y, "site: {name: bench}\nstorage: {path: %s}\nbuses:\n", filepath.Join(dir, "b.db"))
	for i := 0; i < buses; i++ {
		fmt.Fprintf(&y, "  - {name: b%d, port: /dev/ttyUSB%d}\n", i, i)
	}
	y.WriteString("meters:\n")
	for i := 0; i < buses; i++ {
		for a := 1; a <= perBus; a++ {
			fmt.Fprintf(&y, "  - {id: M-%d-%d, bus: b%d, address: %d, model: kpm33b, tenant: T-%d-%d}\n", i, a, i, a, i, a)
		}
	}
	// Every tenant on a time-of-use tariff: readings are priced as in a mall.
	y.WriteString("tariffs:\n  - name: standard\n    kind: tou\n    rates: {valley: '0.40', flat: '0.85', peak: '1.20'}\n" +
		"    days: [{days: all, windows: [{from: '00:00', to: '08:00', rate: valley}, {from: '08:00', to: '18:00', rate: flat}, {from: '18:00', to: '24:00', rate: peak}]}]\n")
	y.WriteString("tenants:\n")
	for i := 0; i < buses; i++ {
		for a := 1; a <= perBus; a++ {
			fmt.Fprintf(&y, "  - {id: T-%d-%d, name: shop}\n", i, a)
		}
	}
	cfg, err := config.Parse("bench.yaml", []byte(y.String()), nil)
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	p, err := pipeline.New(db, cfg, live.New(cfg, "bench", cfg.Storage.Path, time.Now), nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	return p, db, cfg, cfg.Storage.Path
}

// busCycles builds one cycle per bus at time at, every meter's counter at
// wh(meter index) — full readings as a KPM33B gives them.
func busCycles(cfg *config.Config, at time.Time, wh func(i int) int64) []poll.Cycle {
	var out []poll.Cycle
	i := 0
	for _, b := range cfg.Buses {
		c := poll.Cycle{Bus: b.Name, Start: at, End: at}
		for _, m := range cfg.MetersOn(b.Name) {
			var rd meter.Reading
			rd.Meter, rd.Time, rd.Relay = m.ID, at, meter.RelayClosed
			for _, q := range meter.Quantities() {
				rd.Set(q, 0)
			}
			rd.Set(meter.VoltageA, 229.5)
			rd.Set(meter.Power, 3120)
			rd.Set(meter.Import, float64(wh(i))/1000)
			c.Results = append(c.Results, poll.Result{Meter: m.ID, Start: at, Reading: rd})
			i++
		}
		out = append(out, c)
	}
	return out
}

// BenchmarkPipeline_2000Meters: readings validated, priced and durably
// committed per second, 2,000 meters on 20 buses of 100, one transaction
// per bus cycle.
func BenchmarkPipeline_2000Meters(b *testing.B) {
	p, _, cfg, _ := benchMall(b, 20, 100)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, c := range busCycles(cfg, t0, func(i int) int64 { return int64(i) * 1_000_000 }) {
		p.Cycle(ctx, c)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		at := t0.Add(time.Duration(n) * 10 * time.Second)
		b.StopTimer() // what the meters send is not the pipeline's work
		cycles := busCycles(cfg, at, func(i int) int64 { return int64(i)*1_000_000 + int64(n)*9 })
		b.StartTimer()
		for _, c := range cycles {
			p.Cycle(ctx, c)
		}
	}
	b.ReportMetric(float64(n*2000)/b.Elapsed().Seconds(), "readings/s")
}

// TestDiskPerMeterDay measures the database's growth for a day of 10 s
// polling of 20 meters on a time-of-use tariff (8,640 cycles), per meter:
// the data bbolt holds (pages in use), and the file's size, which grows in
// steps and keeps free pages. Run with MALLGRID_DISK_DAY=1 (make bench
// does); it takes a few seconds.
func TestDiskPerMeterDay(t *testing.T) {
	if os.Getenv("MALLGRID_DISK_DAY") == "" {
		t.Skip("set MALLGRID_DISK_DAY=1 to measure (make bench)")
	}
	const meters = 20
	p, db, cfg, path := benchMall(t, 1, meters)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	day := 24 * time.Hour / (10 * time.Second)
	var usedBefore, fileBefore int64
	for n := 0; n <= int(day); n++ {
		at := t0.Add(time.Duration(n) * 10 * time.Second)
		for _, c := range busCycles(cfg, at, func(i int) int64 { return 1_000_000 + int64(n)*9 }) {
			p.Cycle(ctx, c)
		}
		if n == 0 {
			var err error
			if usedBefore, err = db.UsedBytes(); err != nil {
				t.Fatal(err)
			}
			fileBefore = fileSize(t, path)
		}
	}
	used, err := db.UsedBytes()
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	if err := db.EachEntry(func(store.Entry) error { entries++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("bytes on disk per meter per day: %d in use (%d entries posted a meter), file %d (%d → %d bytes for %d meters)",
		(used-usedBefore)/meters, entries/meters, (fileSize(t, path)-fileBefore)/meters, fileBefore, fileSize(t, path), meters)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
