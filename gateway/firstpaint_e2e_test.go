//go:build e2e

package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

// Issue 11 item 8: the dashboard of a gateway with 2,000 meters paints
// within a second in headless Chromium on this machine. `make bench` runs
// this (MALLGRID_BENCH_PAINT=1, build tag e2e); it is not one of the
// TestE2E scenarios, since it takes about a minute to set up.

const (
	paintMeters = 2000 // 20 buses of 100, as apibench wires a mall
	paintPerBus = 100
	paintLoads  = 9 // dashboard loads measured; the median is the figure
	paintSilent = 40
	paintTarget = time.Second
)

// bigMall is a running-daemon mall of n simulated KPM33Bs on n/perBus
// simulated RTU buses (one pseudo-terminal each): the last meter of each bus
// is a public area's, every other a tenant's.
func bigMall(t *testing.T, n, perBus int) *testMall {
	t.Helper()
	var y, tenants strings.Builder
	fmt.Fprintf(&y, "site: {name: Benchmark Plaza, timezone: Asia/Shanghai}\nstorage: {path: %s/m.db}\n", t.TempDir())
	// The viewer's token "screen-secret" (newTestMall's) and ann's login.
	y.WriteString("http:\n  listen: '127.0.0.1:0'\n  tokens:\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n" +
		"  users:\n    - {name: ann, role: operator, password_hash: '$2a$04$j..DbBWyoWONxmsZuPUs6OA8C7xgM1PZphej3RP0m7AYyjEsAaMZ.'}\n")
	y.WriteString("buses:\n")
	buses := (n + perBus - 1) / perBus
	for b := 1; b <= buses; b++ {
		// Each bus gets its pseudo-terminal below; a 5 s cycle is a mall's.
		fmt.Fprintf(&y, "  - {name: floor-%02d, port: /dev/ttyBENCH%d, timeout: 200ms, pause: 1ms, interval: 5s}\n", b, b)
	}
	y.WriteString("meters:\n")
	for i := range n {
		bus, addr := i/perBus+1, i%perBus+1
		if addr == perBus {
			fmt.Fprintf(&y, "  - {id: P-%04d, bus: floor-%02d, address: %d, model: kpm33b, role: public}\n", i+1, bus, addr)
			continue
		}
		fmt.Fprintf(&y, "  - {id: M-%04d, bus: floor-%02d, address: %d, model: kpm33b, tenant: T-%04d}\n", i+1, bus, addr, i+1)
		fmt.Fprintf(&tenants, "  - {id: T-%04d, name: 'Shop %dF-%03d'}\n", i+1, bus, addr)
	}
	y.WriteString("tenants:\n" + tenants.String())
	cfg, err := config.Parse("bench.yaml", []byte(y.String()), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	mall := &testMall{cfg: cfg, meters: make(map[string]*sim.Meter), dbPath: cfg.Storage.Path}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(cfg.Buses))
	for i, b := range cfg.Buses {
		bus, err := sim.NewBus()
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range cfg.MetersOn(b.Name) {
			load := float64(2000 + (i*perBus+j)*7919%23000) // 2–25 kW, a shop's
			sm, err := sim.NewMeter(meter.KPM33B(), uint8(m.Address), sim.WithProfile(sim.Constant(load)), sim.WithImportWh(int64(1_000_000+j*7_919)))
			if err != nil {
				t.Fatal(err)
			}
			if err := bus.Add(sm); err != nil {
				t.Fatal(err)
			}
			mall.meters[m.ID] = sm
		}
		pty, err := sim.NewPTY()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Buses[i].Port = pty.Path
		go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
		t.Cleanup(func() { pty.Close() })
	}
	t.Cleanup(func() {
		cancel()
		for range cfg.Buses {
			if err := <-done; err != nil {
				t.Errorf("simulated bus: %v", err)
			}
		}
	})
	return mall
}

// TestFirstPaint opens the dashboard of a running gateway with 2,000
// simulated meters, 40 of them silent (their meter_offline alarms and the
// offline list on the page), and reports the first contentful paint of
// paintLoads loads with the browser's cache off: each load fetches the page
// and its style sheet and script again, as a first visit does.
func TestFirstPaint(t *testing.T) {
	if os.Getenv("MALLGRID_BENCH_PAINT") == "" {
		t.Skip("a benchmark: make bench runs it (MALLGRID_BENCH_PAINT=1)")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("first paint not measured: chromium is not installed (apt-get install chromium)")
	}
	mall := bigMall(t, paintMeters, paintPerBus)
	mall.offlineAfter = 2 * time.Second
	setup := time.Now()
	base, _ := mall.start(t)
	waitFor(t, 2*time.Minute, "every meter read", func() bool {
		var st web.StatusView
		return getJSON(t, base+"/api/v1/status", &st) == http.StatusOK && st.Counts.Online == paintMeters
	})
	for i := range paintSilent {
		id := fmt.Sprintf("M-%04d", 1+i*(paintMeters/paintSilent))
		if err := mall.meters[id].SetFaultRates(map[sim.FaultKind]float64{sim.NoReply: 1}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d meters online after %v", paintMeters, time.Since(setup).Round(time.Second))

	p := browser(t, base)
	p.open("/")
	p.login("ann", "ann-pw")
	waitFor(t, time.Minute, "the silent meters' alarms", func() bool { return len(alarmsOf(t, base, web.AlarmActive)) >= paintSilent })
	if _, err := chromedp.Call(p.ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		t.Fatalf("turn the cache off: %v", err)
	}

	var paints, served []time.Duration
	var htmlBytes int
	for range paintLoads {
		p.open("/")
		p.until("the first contentful paint", `performance.getEntriesByName("first-contentful-paint").length > 0`, 10*time.Second)
		fcp := js[float64](p, `performance.getEntriesByName("first-contentful-paint")[0].startTime`)
		resp := js[float64](p, `performance.getEntriesByType("navigation")[0].responseEnd`)
		htmlBytes = js[int](p, `performance.getEntriesByType("navigation")[0].decodedBodySize`)
		paints = append(paints, time.Duration(fcp*float64(time.Millisecond)))
		served = append(served, time.Duration(resp*float64(time.Millisecond)))
	}
	if n := js[int](p, `document.querySelectorAll("#alarms tbody tr[id^=alarm-]").length`); n < paintSilent {
		t.Errorf("the dashboard lists %d alarms; want the %d silent meters'", n, paintSilent)
	}
	if n := js[int](p, `document.querySelectorAll("#offline tbody tr:not(.none)").length`); n == 0 {
		t.Error("the dashboard lists no offline meter; want the silent ones")
	}
	med, worst := median(paints), slices.Max(paints)
	version, _ := exec.Command(chromium, "--version").Output()
	host, _ := os.Hostname()
	fmt.Printf("\nfirst paint of the dashboard, %d meters (%d offline, %d alarms), %s on %s (%d CPUs), cache off:\n",
		paintMeters, paintSilent, paintSilent, strings.TrimSpace(string(version)), host, runtime.NumCPU())
	fmt.Printf("  first contentful paint  median %v  worst %v  of %d loads  target ≤ %v  ok %v\n",
		med.Round(time.Millisecond), worst.Round(time.Millisecond), paintLoads, paintTarget, med <= paintTarget)
	fmt.Printf("  page served (responseEnd) median %v; the page is %d KB of HTML\n\n", median(served).Round(time.Millisecond), htmlBytes/1024)
	if med > paintTarget {
		t.Errorf("the dashboard's first paint: median %v over %d loads; want ≤ %v", med, paintLoads, paintTarget)
	}
}

// median is the middle of ds (the upper middle for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
