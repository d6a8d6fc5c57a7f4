package tech

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

// The transport waits scanTimeout for a reply, then keeps the line quiet
// for scanQuiet after a failed request before it sends the next one.
const (
	scanTimeout = 100 * time.Millisecond
	scanQuiet   = 20 * time.Millisecond
)

// simBus serves meters on a pseudo-terminal and returns a transport to it.
func simBus(t *testing.T, meters ...*sim.Meter) *modbus.Transport {
	t.Helper()
	bus, err := sim.NewBus(meters...)
	if err != nil {
		t.Fatal(err)
	}
	pty, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
	tr, err := modbus.Open(modbus.Config{Kind: modbus.RTU, Address: pty.Path, Timeout: scanTimeout, Quiet: scanQuiet, LockDir: t.TempDir()})
	if err != nil {
		cancel()
		<-done
		pty.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRTU: %v", err)
		}
		pty.Close()
	})
	return tr
}

// simMeter is a meter of model at addr that draws watts and whose counters
// stand still (a fixed clock), so its import is known to the Wh.
func simMeter(t *testing.T, model *meter.Model, addr uint8, watts float64, importWh int64) *sim.Meter {
	t.Helper()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	m, err := sim.NewMeter(model, addr,
		sim.WithProfile(sim.Constant(watts)),
		sim.WithImportWh(importWh),
		sim.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustFunction(t *testing.T, m *meter.Model, fc uint8) *meter.Model {
	t.Helper()
	alt, err := m.WithFunction(fc)
	if err != nil {
		t.Fatal(err)
	}
	return alt
}

// TestScan_NamesEachModel puts a meter of every built-in model on one bus,
// some loaded and some idle, plus a DDSU666 that answers holding registers,
// a DTSU666 that answers input registers and a meter of a model the
// catalogue does not know, and checks what Scan makes of each address.
func TestScan_NamesEachModel(t *testing.T) {
	unknown := &meter.Model{Name: "other", Registers: []meter.Register{
		{Quantity: meter.Import, Address: 0x0100, Function: meter.ReadHolding, Type: meter.Uint32, Unit: "Wh"},
	}}
	tr := simBus(t,
		simMeter(t, meter.KPM33B(), 1, 3000, 1_234_567),
		simMeter(t, meter.SDM120(), 2, 1500, 2_000_001),
		simMeter(t, meter.SDM630(), 4, 9000, 3_000_002),
		simMeter(t, meter.DDSU666(), 5, 800, 4_000_003),
		simMeter(t, mustFunction(t, meter.DDSU666(), meter.ReadHolding), 6, 800, 5_000_004),
		simMeter(t, meter.DTSU666(), 7, 12000, 6_000_005),
		simMeter(t, unknown, 8, 100, 7_000_006),
		simMeter(t, meter.SDM120(), 11, 0, 8_000_007), // idle: current and power read 0
		simMeter(t, meter.SDM630(), 12, 0, 9_000_008),
		simMeter(t, mustFunction(t, meter.DTSU666(), meter.ReadInput), 13, 5000, 10_000_009),
	)
	// Where two models fit, the answer must not depend on the order the
	// catalogue lists them in.
	reversed := meter.Builtin()
	slices.Reverse(reversed)
	for _, order := range []struct {
		name   string
		models []*meter.Model
	}{{"builtin order", meter.Builtin()}, {"reversed", reversed}} {
		t.Run(order.name, func(t *testing.T) {
			var probed []int
			res, err := Scan(context.Background(), tr, 1, 13, order.models, func(p Progress) {
				if p.Address != 0 {
					probed = append(probed, p.Address)
				}
			})
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if res.Done != 13 {
				t.Errorf("Done = %d; want 13", res.Done)
			}
			checkScan(t, res.Found, probed)
		})
	}
}

// checkScan compares a scan of addresses 1..13 of TestScan_NamesEachModel's
// bus with what is on it.
func checkScan(t *testing.T, found []Found, probed []int) {
	t.Helper()
	want := []Found{
		{Address: 1, Model: "kpm33b", Import: "1234.567"},
		{Address: 2, Model: "sdm120", Import: "2000.001"},
		{Address: 4, Model: "sdm630", Import: "3000.002"},
		{Address: 5, Model: "ddsu666", Import: "4000.003"},
		{Address: 6, Model: "ddsu666", Function: 3, Import: "5000.004"},
		{Address: 7, Model: "dtsu666", Import: "6000.005"},
		{Address: 8}, // answers, matches nothing: checked below
		{Address: 11, Model: "sdm120", Import: "8000.007"},
		{Address: 12, Model: "sdm630", Import: "9000.008"},
		{Address: 13, Model: "dtsu666", Function: 4, Import: "10000.009"},
	}
	if len(found) != len(want) {
		t.Fatalf("Scan found %d addresses %+v; want %d (3, 9 and 10 are empty)", len(found), found, len(want))
	}
	for i, w := range want {
		g := found[i]
		if w.Address == 8 {
			if g.Address != 8 || g.Model != "" || !strings.HasPrefix(g.Note, "answers, but matches no catalogued model") {
				t.Errorf("address 8: got %+v; want no model and a note why", g)
			}
			if testing.Verbose() {
				t.Logf("address 8: %s", g.Note)
			}
			continue
		}
		if g != w {
			t.Errorf("address %d: got %+v; want %+v", w.Address, g, w)
		}
	}
	if got := len(probed); got != 13 {
		t.Errorf("progress called for %d addresses %v; want 13", got, probed)
	}
}

// An empty address must cost one failed request (two tries of the
// transport), not one per candidate
// model: a full scan of 247 addresses would otherwise take minutes per
// model. What one failed request costs is the transport's business (its
// serial reads wait in 100 ms steps, and it keeps the line quiet after a
// failure), so it is measured here first.
func TestScan_AbsentAddressCostsOneTimeout(t *testing.T) {
	tr := simBus(t, simMeter(t, meter.KPM33B(), 1, 0, 0))
	start := time.Now()
	if _, err := tr.Client(30).ReadHoldingRegisters(context.Background(), 0x0030, 52); !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("read of an empty address: %v; want a timeout", err)
	}
	oneRequest := time.Since(start)

	const n = 5
	start = time.Now()
	res, err := Scan(context.Background(), tr, 20, 20+n-1, meter.Builtin(), nil)
	elapsed := time.Since(start)
	if err != nil || len(res.Found) != 0 {
		t.Fatalf("Scan of empty addresses = %+v, %v; want nothing", res, err)
	}
	// Slack well short of a second request per address.
	if limit := n * oneRequest * 3 / 2; elapsed > limit {
		t.Errorf("scan of %d empty addresses took %v; want at most %v (one failed request, %v, each)", n, elapsed, limit, oneRequest)
	}
}

// A meter that answers the first request and then falls silent is there:
// only a timeout on the very first request makes an address empty.
func TestScan_TimeoutAfterAnAnswerIsNotAbsence(t *testing.T) {
	m := simMeter(t, meter.KPM33B(), 1, 0, 1_000)
	m.SetLateDelay(time.Millisecond) // answered well within the timeout
	if err := m.InjectNext(sim.Late, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.InjectNext(sim.NoReply, 100); err != nil {
		t.Fatal(err)
	}
	tr := simBus(t, m)
	res, err := Scan(context.Background(), tr, 1, 1, []*meter.Model{meter.KPM33B()}, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	found := res.Found
	if len(found) != 1 || found[0].Model != "" || !strings.Contains(found[0].Note, "kpm33b: timeout") {
		t.Errorf("Scan = %+v; want address 1 listed, no model, a note saying kpm33b timed out", found)
	}
}

func TestScan_StopsOnCancel(t *testing.T) {
	tr := simBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	var probed int
	res, err := Scan(ctx, tr, 1, 247, meter.Builtin(), func(p Progress) {
		if p.Address == 0 {
			return
		}
		probed++
		if probed == 2 {
			cancel()
		}
	})
	// Address 1 was finished; the probe of 2 was cut short.
	if err != context.Canceled || len(res.Found) != 0 || probed != 2 || res.Done != 1 {
		t.Errorf("Scan after cancel = %+v, %v after %d addresses; want nothing, context.Canceled, 2 probed, 1 done", res, err, probed)
	}
}

// Interrupted after a meter was found, the scan keeps it and counts the
// addresses it finished, not those it began.
func TestScan_InterruptedKeepsWhatItFound(t *testing.T) {
	tr := simBus(t, simMeter(t, meter.KPM33B(), 2, 3000, 1_000))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last Progress
	res, err := Scan(ctx, tr, 1, 247, []*meter.Model{meter.KPM33B()}, func(p Progress) {
		last = p
		if p.Address == 4 {
			cancel()
		}
	})
	if err != context.Canceled || res.Done != 3 || len(res.Found) != 1 || res.Found[0].Address != 2 {
		t.Errorf("Scan = %+v, %v; want address 2 found, 3 addresses done, context.Canceled", res, err)
	}
	if last.Address != 0 || last.Done != 3 || last.Found != 1 || last.Total != 247 {
		t.Errorf("last progress = %+v; want the end: 3 of 247 done, 1 found", last)
	}
}

// A libmodbus-based meter right after an empty address ignores the first
// request sent to it; the transport's second try finds it.
func TestScan_FindsLibmodbusMeterAfterAnEmptyAddress(t *testing.T) {
	m, err := sim.NewMeter(meter.KPM33B(), 3, sim.WithProfile(sim.Constant(2000)), sim.WithImportWh(3_000), sim.WithLibmodbusSlave())
	if err != nil {
		t.Fatal(err)
	}
	tr := simBus(t, m)
	res, err := Scan(context.Background(), tr, 1, 5, []*meter.Model{meter.KPM33B()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Found) != 1 || res.Found[0].Address != 3 || res.Found[0].Model != "kpm33b" {
		t.Errorf("Scan = %+v; want the libmodbus KPM33B at address 3", res.Found)
	}
}

// The first request to an address decides whether anything is there, so it
// must be one nearly every meter answers: FC03.
func TestCandidates_HoldingRegistersFirst(t *testing.T) {
	cs := candidates([]*meter.Model{meter.SDM120(), meter.DDSU666(), meter.KPM33B(), meter.DTSU666()})
	var got []string
	for _, c := range cs {
		got = append(got, c.name())
	}
	want := "ddsu666 function 3,kpm33b,dtsu666,sdm120,ddsu666,dtsu666 function 4"
	if strings.Join(got, ",") != want {
		t.Errorf("candidates = %s; want %s", strings.Join(got, ","), want)
	}
}

func TestJudge(t *testing.T) {
	reading := func(vals map[meter.Quantity]float64) meter.Reading {
		var rd meter.Reading
		for q, v := range vals {
			rd.Set(q, v)
		}
		return rd
	}
	m := meter.DTSU666()
	good := func() map[meter.Quantity]float64 {
		v := make(map[meter.Quantity]float64)
		for _, r := range m.Registers {
			v[r.Quantity] = 0
		}
		v[meter.VoltageA], v[meter.Frequency], v[meter.PF], v[meter.Import] = 230, 50, 1, 12.5
		return v
	}
	tests := []struct {
		name     string
		change   func(v map[meter.Quantity]float64)
		wantLive int
		want     string // "" for plausible
	}{
		{"plausible", func(map[meter.Quantity]float64) {}, 4, ""},
		{"negative import", func(v map[meter.Quantity]float64) { v[meter.Import] = -1 }, 0, "import_kwh -1 kWh is out of range"},
		{"huge import", func(v map[meter.Quantity]float64) { v[meter.Import] = 3e9 }, 0, "import_kwh"},
		{"negative export", func(v map[meter.Quantity]float64) { v[meter.Export] = -0.5 }, 0, "export_kwh"},
		{"voltage too low", func(v map[meter.Quantity]float64) { v[meter.VoltageB] = 0.095 }, 0, "voltage_b 0.095 V is out of range"},
		{"voltage too high", func(v map[meter.Quantity]float64) { v[meter.VoltageA] = 2300 }, 0, "voltage_a"},
		{"voltage 0 is a dead phase", func(v map[meter.Quantity]float64) { v[meter.VoltageA] = 0 }, 3, ""},
		{"frequency", func(v map[meter.Quantity]float64) { v[meter.Frequency] = 5000 }, 0, "frequency 5000 Hz is out of range"},
		{"power factor", func(v map[meter.Quantity]float64) { v[meter.PF] = 982 }, 0, "pf 982 is out of range"},
		{"negative power factor", func(v map[meter.Quantity]float64) { v[meter.PFA] = -0.8 }, 5, ""},
		{"export power", func(v map[meter.Quantity]float64) { v[meter.Power] = -4000 }, 5, ""},
		{"garbage power", func(v map[meter.Quantity]float64) { v[meter.PowerA] = 3.4e38 }, 0, "power_a"},
		{"all zero", func(v map[meter.Quantity]float64) {
			for q := range v {
				v[q] = 0
			}
		}, 0, "every value reads 0"},
		{"value missing", func(v map[meter.Quantity]float64) { delete(v, meter.CurrentC) }, 0, "current_c not read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := good()
			tt.change(v)
			live, _, problem := judge(m, reading(v))
			if tt.want == "" && problem != "" || tt.want != "" && !strings.Contains(problem, tt.want) {
				t.Errorf("judge = %q; want %q", problem, tt.want)
			}
			if live != tt.wantLive {
				t.Errorf("live = %d; want %d", live, tt.wantLive)
			}
		})
	}
}

// A link that fails (here a Modbus TCP converter that refuses connections)
// ends the scan with that error, which says what to check, instead of
// listing every address as a meter that matches no model.
func TestScan_LinkDownEndsTheScan(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens
	tr, err := modbus.Open(modbus.Config{Kind: modbus.TCP, Address: addr, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	res, err := Scan(context.Background(), tr, 1, 10, meter.Builtin(), nil)
	if !errors.Is(err, modbus.ErrNoLink) {
		t.Fatalf("Scan over a dead link: %v; want ErrNoLink", err)
	}
	if len(res.Found) != 0 || res.Done != 0 {
		t.Errorf("Scan over a dead link found %+v after %d addresses; want nothing", res.Found, res.Done)
	}
}
