package sim

import (
	"bytes"
	"encoding/binary"
	"testing"

	"mallgrid/drivers/meter"
)

// sdm120 is a single-phase FC04 model without a relay, with an unreadable
// hole, to exercise what the KPM33B does not.
func sdm120() *meter.Model {
	f := func(q meter.Quantity, addr uint16, unit string) meter.Register {
		return meter.Register{Quantity: q, Address: addr, Function: meter.ReadInput, Type: meter.Float32, Unit: unit}
	}
	return &meter.Model{
		Name: "sdm120-test",
		Registers: []meter.Register{
			f(meter.VoltageA, 0x0000, "V"), f(meter.CurrentA, 0x0006, "A"), f(meter.PowerA, 0x000C, "W"),
			f(meter.Import, 0x0048, "kWh"),
		},
		Unreadable: []meter.Span{{From: 0x0020, To: 0x0021}},
	}
}

func TestMeter_Execute(t *testing.T) {
	clk := newFakeClock(t0)
	kpm := newTestMeter(t, 7, clk, WithSerial("KPM33B0001234X"))
	sdm, err := NewMeter(sdm120(), 9, WithClock(clk.Now))
	if err != nil {
		t.Fatalf("NewMeter: %v", err)
	}
	exc := func(fc, code byte) []byte { return []byte{fc | 0x80, code} }
	tests := []struct {
		name string
		m    *Meter
		req  []byte
		want []byte
	}{
		{"address register", kpm, pdu16(3, 0x0001, 2), []byte{3, 4, 0, 7, 0x00, 0x03}},
		{"serial number, 13 bytes kept", kpm, pdu16(3, 0x0012, 7),
			append([]byte{3, 14}, []byte("KPM33B0001234\x00")...)},
		{"control mode starts local", kpm, pdu16(3, 0x001E, 1), []byte{3, 2, 0xDD, 0x11}},
		{"password area reads zero", kpm, pdu16(3, 0x0000, 1), []byte{3, 2, 0, 0}},
		{"gap the manual leaves out is unreadable", kpm, pdu16(3, 0x0064, 2), exc(3, 2)},
		{"unmapped register inside a map reads zero", kpm, pdu16(3, 0x0086, 2), []byte{3, 4, 0, 0, 0, 0}},
		{"last register", kpm, pdu16(3, 0x0093, 1), nil},
		{"past the last register of the published map", kpm, pdu16(3, 0x0205, 2), exc(3, 2)},
		{"inside the published map, beyond the gateway's", kpm, pdu16(3, 0x0200, 6), append([]byte{3, 12}, make([]byte, 12)...)},
		{"quantity 0", kpm, pdu16(3, 0x0030, 0), exc(3, 3)},
		{"quantity 126", kpm, pdu16(3, 0x0030, 126), exc(3, 3)},
		{"quantity 125 across the unreadable gap", kpm, pdu16(3, 0x0000, 125), exc(3, 2)},
		{"FC04 on a holding-register meter", kpm, pdu16(4, 0x0030, 2), exc(4, 2)},
		{"unreadable span", sdm, pdu16(4, 0x001E, 4), exc(4, 2)},
		{"beside the unreadable span", sdm, pdu16(4, 0x0022, 2), []byte{4, 4, 0, 0, 0, 0}},
		{"input registers", sdm, pdu16(4, 0x0048, 2), nil},
		{"no parameters on FC04", sdm, pdu16(4, 0x004A, 1), exc(4, 2)},
		{"read coils", kpm, pdu16(1, 0x0001, 1), []byte{1, 1, 0x07}},
		{"read coils, 3 asked", kpm, pdu16(1, 0x0001, 3), []byte{1, 1, 0x07}},
		{"read coils elsewhere", kpm, pdu16(1, 0x0000, 1), exc(1, 2)},
		{"read coils, quantity 0", kpm, pdu16(1, 0x0001, 0), exc(1, 3)},
		{"read coils without relay", sdm, pdu16(1, 0x0001, 1), exc(1, 1)},
		{"write coil bad value", kpm, pdu16(5, 0x0001, 0x1234), exc(5, 3)},
		{"write coil elsewhere", kpm, pdu16(5, 0x0002, 0xFF00), exc(5, 2)},
		{"write coil local mode: echoed", kpm, pdu16(5, 0x0001, 0x0000), pdu16(5, 0x0001, 0x0000)},
		{"write measurement register", kpm, pdu16(6, 0x0030, 1), exc(6, 2)},
		{"write serial number", kpm, pdu16(6, 0x0012, 1), exc(6, 2)},
		{"write address 0", kpm, pdu16(6, 0x0001, 0), exc(6, 3)},
		{"write address 248", kpm, pdu16(6, 0x0001, 248), exc(6, 3)},
		{"write baud code 5", kpm, pdu16(6, 0x0002, 0x0005), exc(6, 3)},
		{"write format 3", kpm, pdu16(6, 0x0002, 0x0303), exc(6, 3)},
		{"write baud 19200 8N1", kpm, pdu16(6, 0x0002, 0x0204), pdu16(6, 0x0002, 0x0204)},
		{"write bad control mode", kpm, pduWriteRegs(0x001E, 0x1234), exc(0x10, 3)},
		{"write across a read-only register", kpm, pduWriteRegs(0x0002, 0x0003, 0), exc(0x10, 2)},
		{"write byte count mismatch", kpm, []byte{0x10, 0, 0x1E, 0, 1, 4, 0xDD, 0x22, 0, 0}, exc(0x10, 3)},
		{"write remote mode", kpm, pduWriteRegs(0x001E, 0xDD22), pdu16(0x10, 0x001E, 1)},
		{"control mode now remote", kpm, pdu16(3, 0x001E, 1), []byte{3, 2, 0xDD, 0x22}},
		{"read discrete inputs: not supported", kpm, pdu16(2, 0, 1), exc(2, 1)},
		{"unknown function", kpm, []byte{0x41}, exc(0x41, 1)},
		{"short read request", kpm, []byte{3, 0, 1}, exc(3, 3)},
		{"baud word took", kpm, pdu16(3, 0x0002, 1), []byte{3, 2, 0x02, 0x04}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.m.respond(tt.req)
			if tt.want == nil { // only the shape is checked
				if len(r.pdu) < 2 || r.pdu[0] != tt.req[0] || int(r.pdu[1]) != 2*int(binary.BigEndian.Uint16(tt.req[3:])) {
					t.Errorf("reply % X; want FC%02X with %d bytes", r.pdu, tt.req[0], 2*int(binary.BigEndian.Uint16(tt.req[3:])))
				}
				return
			}
			if !bytes.Equal(r.pdu, tt.want) {
				t.Errorf("reply to % X: got % X; want % X", tt.req, r.pdu, tt.want)
			}
		})
	}
}

// TestMeter_RegistersDecode reads every register of each model through the
// gateway's own decoder and compares with the simulated values.
func TestMeter_RegistersDecode(t *testing.T) {
	clk := newFakeClock(t0)
	for _, model := range []*meter.Model{meter.KPM33B(), sdm120()} {
		t.Run(model.Name, func(t *testing.T) {
			m, err := NewMeter(model, 1, WithClock(clk.Now), WithImportWh(1234567))
			if err != nil {
				t.Fatalf("NewMeter: %v", err)
			}
			m.SetLoad(4321)
			var rd meter.Reading
			for _, b := range meter.NewPlan(model) {
				r := m.respond(pdu16(b.Function, b.Address, b.Count))
				if len(r.pdu) != 2+2*int(b.Count) {
					t.Fatalf("read % X: got % X", pdu16(b.Function, b.Address, b.Count), r.pdu)
				}
				if err := meter.DecodeBlock(&rd, b, r.pdu[2:]); err != nil {
					t.Fatalf("DecodeBlock: %v", err)
				}
			}
			snap := m.Snapshot()
			for _, reg := range model.Registers {
				got, _ := rd.Value(reg.Quantity)
				want, _ := snap.Value(reg.Quantity)
				if !closeTo(got, want, 1e-6) {
					t.Errorf("%s: got %v; want %v", reg.Quantity, got, want)
				}
			}
			if wh, _ := rd.ImportWh(); wh != 1234567 {
				t.Errorf("import: got %d Wh; want 1234567", wh)
			}
		})
	}
}

// closeTo compares within float32's relative precision.
func closeTo(a, b, rel float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	m := max(a, -a, b, -b, 1e-3)
	return d <= rel*m+1e-7*m
}

func TestMeter_ChangeAddress(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 7, clk)
	if r := m.respond(pdu16(6, 0x0001, 42)); !bytes.Equal(r.pdu, pdu16(6, 0x0001, 42)) {
		t.Fatalf("write address: got % X", r.pdu)
	}
	if got := m.Address(); got != 42 {
		t.Errorf("Address: got %d; want 42", got)
	}
}
