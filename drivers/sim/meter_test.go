package sim

import (
	"errors"
	"math"
	"testing"
	"time"

	"mallgrid/drivers/meter"
)

func TestNewMeter_Errors(t *testing.T) {
	broken := meter.KPM33B()
	broken.Registers = broken.Registers[:1] // no import counter
	tests := []struct {
		name  string
		model *meter.Model
		addr  uint8
		want  error
	}{
		{"nil model", nil, 1, ErrModel},
		{"invalid model", broken, 1, ErrModel},
		{"address 0", meter.KPM33B(), 0, ErrAddress},
		{"address 248", meter.KPM33B(), 248, ErrAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMeter(tt.model, tt.addr)
			if !errors.Is(err, tt.want) {
				t.Errorf("NewMeter: got %v; want %v", err, tt.want)
			}
		})
	}
}

func TestMeter_Energy(t *testing.T) {
	tests := []struct {
		name       string
		load       float64
		relay      bool
		start      time.Time
		run        time.Duration
		wantImport int64
		wantExport int64
		wantRates  [4]int64 // sharp, peak, flat, valley
	}{
		{"1 kW for an hour", 1000, true, t0, time.Hour, 1000, 0, [4]int64{0, 0, 1000, 0}},
		{"relay open stops energy", 1000, false, t0, time.Hour, 0, 0, [4]int64{}},
		{"1 W: remainders below 1 Wh add up", 1, true, t0, time.Hour, 1, 0, [4]int64{0, 0, 1, 0}},
		{"export counts apart", -500, true, t0, 2 * time.Hour, 0, 1000, [4]int64{}},
		// 18–19 peak, 19–21 sharp.
		{"rates split by hour", 3600, true, t0.Add(6 * time.Hour), 3 * time.Hour,
			10800, 0, [4]int64{7200, 3600, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock(tt.start)
			m := newTestMeter(t, 1, clk)
			m.SetLoad(tt.load)
			m.SetRelay(tt.relay)
			// Read every 7 s: the counters must not depend on how often.
			for el := time.Duration(0); el < tt.run; el += 7 * time.Second {
				step := min(7*time.Second, tt.run-el)
				clk.Advance(step)
				m.Snapshot()
			}
			s := m.Snapshot()
			if s.ImportWh != tt.wantImport || s.ExportWh != tt.wantExport {
				t.Errorf("import, export: got %d, %d Wh; want %d, %d", s.ImportWh, s.ExportWh, tt.wantImport, tt.wantExport)
			}
			got := [4]int64{s.SharpWh, s.PeakWh, s.FlatWh, s.ValleyWh}
			if got != tt.wantRates {
				t.Errorf("rates: got %v; want %v", got, tt.wantRates)
			}
		})
	}
}

func TestMeter_ProfileEnergyIndependentOfReads(t *testing.T) {
	clkA, clkB := newFakeClock(t0), newFakeClock(t0)
	a := newTestMeter(t, 1, clkA, WithSeed(42), WithBasePower(5000))
	b := newTestMeter(t, 1, clkB, WithSeed(42), WithBasePower(5000))
	for range 24 * 60 * 2 { // a day in 30 s steps
		clkA.Advance(30 * time.Second)
		a.Snapshot()
	}
	clkB.Advance(24 * time.Hour)
	sa, sb := a.Snapshot(), b.Snapshot()
	if sa.ImportWh != sb.ImportWh {
		t.Errorf("import after a day: read often %d Wh, read once %d Wh; want equal", sa.ImportWh, sb.ImportWh)
	}
	if sum := sa.SharpWh + sa.PeakWh + sa.FlatWh + sa.ValleyWh; sum != sa.ImportWh {
		t.Errorf("rates add up to %d Wh; want the import counter %d", sum, sa.ImportWh)
	}
	// 5 kW base, shaped between 0.15 and 1.3 ±10 %: a day is 30–170 kWh.
	if sa.ImportWh < 30000 || sa.ImportWh > 170000 {
		t.Errorf("a day at 5 kW base: got %d Wh; want 30000..170000", sa.ImportWh)
	}
	c := newTestMeter(t, 1, newFakeClock(t0), WithSeed(43), WithBasePower(5000))
	if a.Snapshot().Power == c.Snapshot().Power {
		t.Errorf("seeds 42 and 43 give the same power %v; want different noise", c.Snapshot().Power)
	}
}

func TestMeter_RelayOpenDropsLoad(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk)
	m.SetLoad(6900)
	on := m.Snapshot()
	if on.Power != 6900 || on.Current[0] == 0 || on.PhasePower[0] != 2300 {
		t.Errorf("closed: power %v, current A %v, power A %v; want 6900, > 0, 2300", on.Power, on.Current[0], on.PhasePower[0])
	}
	m.SetRelay(false)
	clk.Advance(time.Hour)
	off := m.Snapshot()
	if off.Power != 0 || off.Current != [3]float64{} || off.PhasePower != [3]float64{} {
		t.Errorf("open: power %v, current %v, phase power %v; want all 0", off.Power, off.Current, off.PhasePower)
	}
	if off.Voltage[0] < 220 || off.Voltage[2] < 220 {
		t.Errorf("open: voltage %v; want it to stay (> 220 V)", off.Voltage)
	}
	if off.ImportWh != on.ImportWh {
		t.Errorf("open an hour: import %d Wh; want unchanged %d", off.ImportWh, on.ImportWh)
	}
}

func TestMeter_SetImportWh(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk, WithImportWh(5_000_000))
	m.SetLoad(1800)
	clk.Advance(30 * time.Minute)
	m.SetImportWh(10) // a counter reset
	clk.Advance(30 * time.Minute)
	s := m.Snapshot()
	if s.ImportWh != 10+900 {
		t.Errorf("import after reset to 10 and 900 Wh: got %d; want 910", s.ImportWh)
	}
	if s.FlatWh != 1800 {
		t.Errorf("flat rate: got %d Wh; want 1800 (rates are not reset)", s.FlatWh)
	}
}

func TestMeter_ClockBackwards(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk)
	m.SetLoad(1000)
	clk.Advance(time.Hour)
	m.Snapshot()
	clk.Advance(-30 * time.Minute)
	m.Snapshot()
	clk.Advance(time.Hour) // 30 min past the earlier high mark
	if got := m.Snapshot().ImportWh; got != 1500 {
		t.Errorf("import after a clock step back: got %d Wh; want 1500 (no energy twice)", got)
	}
}

func TestMeter_FaultyProfile(t *testing.T) {
	clk := newFakeClock(t0)
	for _, w := range []float64{math.NaN(), math.Inf(1), 1e300} {
		m := newTestMeter(t, 1, clk, WithProfile(Constant(w)))
		clk.Advance(time.Hour)
		s := m.Snapshot()
		if s.ImportWh < 0 || s.ImportWh > int64(maxPowerW) {
			t.Errorf("profile %v W for an hour: import %d Wh; want 0..%v", w, s.ImportWh, maxPowerW)
		}
	}
}

func TestSnapshot_Value(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk, WithImportWh(123456))
	s := m.Snapshot()
	for _, q := range meter.Quantities() {
		if _, ok := s.Value(q); !ok {
			t.Errorf("Value(%s): not known; want every gateway quantity", q)
		}
	}
	if v, _ := s.Value(meter.Import); v != 123.456 {
		t.Errorf("Value(import): got %v kWh; want 123.456", v)
	}
	if _, ok := s.Value("bogus"); ok {
		t.Errorf("Value(bogus): known; want unknown")
	}
}
