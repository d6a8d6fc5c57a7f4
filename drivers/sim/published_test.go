package sim

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"mallgrid/drivers/meter"
)

// A third-party master reads an SDM630's whole input-register map in
// chunks, as it would a real one: every chunk answers, the derived
// registers agree with the meter's state, and the first register past the
// map is refused with exception 02.
func TestMeter_SDM630AnswersItsPublishedMap(t *testing.T) {
	clk := newFakeClock(t0)
	m, err := NewMeter(meter.SDM630(), 1, WithClock(clk.Now), WithImportWh(12_345_678))
	if err != nil {
		t.Fatal(err)
	}
	m.SetLoad(9000)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatal(err)
	}
	master := startPTY(t, bus)
	regs := make([]byte, 0, 2*0x180)
	for start := uint16(0); start < 0x180; start += 0x40 {
		pdu, err := master.do(1, pdu16(4, start, 0x40))
		if err != nil {
			t.Fatalf("read of 0x%04X..0x%04X: %v; want an answer inside the published map", start, start+0x3F, err)
		}
		regs = append(regs, pdu[2:]...)
	}
	f32 := func(addr int) float64 {
		return float64(math.Float32frombits(binary.BigEndian.Uint32(regs[2*addr:])))
	}
	snap := m.Snapshot()
	checks := []struct {
		name string
		addr int
		want float64
	}{
		{"voltage L1 (gateway's map)", 0x0000, snap.Voltage[0]},
		{"import kWh (gateway's map)", 0x0048, 12345.678},
		{"apparent power L1", 0x0012, snap.Voltage[0] * snap.Current[0]},
		{"line voltage L1-L2", 0x00C8, math.Sqrt(3) * (snap.Voltage[0] + snap.Voltage[1]) / 2},
		{"total kWh", 0x0156, 12345.678},
		{"L3 total kvarh: nothing behind it", 0x017C, 0},
	}
	for _, c := range checks {
		if got := f32(c.addr); math.Abs(got-c.want) > 0.01*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s at 0x%04X = %v; want %v", c.name, c.addr, got, c.want)
		}
	}
	var exc exceptionError
	if _, err := master.do(1, pdu16(4, 0x017E, 4)); !errors.As(err, &exc) || exc != 2 {
		t.Errorf("read past the published map: %v; want exception 02", err)
	}
}
