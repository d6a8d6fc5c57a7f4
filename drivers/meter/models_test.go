package meter

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestBuiltin_Plans pins the read plan of every built-in model: a change to
// a register map or to the planner that adds a transaction, or makes one
// cover a range the sources do not document, fails here.
func TestBuiltin_Plans(t *testing.T) {
	type blk struct {
		fc          uint8
		addr, count uint16
	}
	tests := []struct {
		model *Model
		want  []blk
	}{
		{KPM33B(), []blk{{3, 0x0030, 52}, {3, 0x0082, 18}}},
		{SDM120(), []blk{{4, 0x0000, 32}, {4, 0x0046, 6}}},
		{SDM630(), []blk{{4, 0x0000, 36}, {4, 0x0034, 24}}},
		{DDSU666(), []blk{{4, 0x2000, 16}, {4, 0x4000, 2}}},
		{DTSU666(), []blk{{3, 0x101E, 12}, {3, 0x2006, 20}, {3, 0x202A, 8}, {3, 0x2044, 2}}},
	}
	if got, want := len(tests), len(Builtin()); got != want {
		t.Fatalf("plans pinned for %d models; Builtin() has %d", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.model.Name, func(t *testing.T) {
			plan := NewPlan(tt.model)
			var got []blk
			covered := 0
			for _, b := range plan {
				got = append(got, blk{b.Function, b.Address, b.Count})
				covered += len(b.Registers)
				if limit := tt.model.maxRead(); b.Count > limit {
					t.Errorf("FC%02d 0x%04X+%d reads more than the model's %d registers", b.Function, b.Address, b.Count, limit)
				}
				for _, u := range tt.model.Unreadable {
					if overlaps(b.Address, b.Address+b.Count-1, u) {
						t.Errorf("FC%02d 0x%04X+%d covers unreadable 0x%04X-0x%04X", b.Function, b.Address, b.Count, u.From, u.To)
					}
				}
			}
			if fmt.Sprintf("%x", got) != fmt.Sprintf("%x", tt.want) {
				t.Errorf("plan = %x; want %x (FC, address, count)", got, tt.want)
			}
			if covered != len(tt.model.Registers) {
				t.Errorf("plan covers %d registers; want %d", covered, len(tt.model.Registers))
			}
		})
	}
}

// golden is a reply frame from testdata, checked as a master checks it:
// slave address, function code, byte count and CRC.
func golden(t *testing.T, path string, slave byte, b Block) []byte {
	t.Helper()
	frame := readGolden(t, path)
	n := 2 * int(b.Count)
	if len(frame) != 3+n+2 {
		t.Fatalf("%s is %d bytes; want %d for a reply to FC%02d 0x%04X+%d", path, len(frame), 3+n+2, b.Function, b.Address, b.Count)
	}
	if frame[0] != slave || frame[1] != b.Function || int(frame[2]) != n {
		t.Fatalf("%s starts % x; want %02x %02x %02x", path, frame[:3], slave, b.Function, n)
	}
	if got, want := crc16(frame[:len(frame)-2]), uint16(frame[len(frame)-2])|uint16(frame[len(frame)-1])<<8; got != want {
		t.Fatalf("%s: CRC %04x; frame says %04x", path, got, want)
	}
	return frame[3 : 3+n]
}

// crc16 is the Modbus RTU CRC, written here so that golden files are
// checked by code that shares nothing with the transports or the simulator.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// TestBuiltin_GoldenFrames decodes reply frames that testdata/mkgolden.py
// built from IEEE-754 bytes and the CRC (not from Encode) through each
// model's plan, and checks every value the model maps. The frames fill the
// registers a model skips with other values the meter reports, so a wrong
// offset cannot pass as a zero.
func TestBuiltin_GoldenFrames(t *testing.T) {
	ddsu666FC03, err := DDSU666().WithFunction(ReadHolding)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		model  *Model
		slave  byte
		files  []string // one reply per block of the plan, in order
		want   map[Quantity]float64
		wantWh map[Quantity]int64
	}{
		{
			name: "sdm120", model: SDM120(), slave: 1,
			files: []string{"sdm120_fc04_0000_32.hex", "sdm120_fc04_0046_6.hex"},
			want: map[Quantity]float64{
				VoltageA: 229.8, CurrentA: 7.912, Power: 1745.3, PF: 0.96, Frequency: 49.98,
				Import: 8421.337, Export: 0.125,
			},
			wantWh: map[Quantity]int64{Import: 8421337, Export: 125},
		},
		{
			name: "sdm630", model: SDM630(), slave: 2,
			files: []string{"sdm630_fc04_0000_36.hex", "sdm630_fc04_0034_24.hex"},
			want: map[Quantity]float64{
				VoltageA: 231.4, VoltageB: 230.2, VoltageC: 232.9,
				CurrentA: 10.25, CurrentB: 8.5, CurrentC: 12.75,
				PowerA: 2301.5, PowerB: 1890.2, PowerC: 2890, Power: 7081.7,
				PFA: 0.97, PFB: 0.966, PFC: 0.973, PF: 0.97, Frequency: 50.02,
				Import: 123456.7, Export: 12.5,
			},
			wantWh: map[Quantity]int64{Import: 123456700, Export: 12500},
		},
		{
			name: "ddsu666", model: DDSU666(), slave: 3,
			files: []string{"ddsu666_fc04_2000_16.hex", "ddsu666_fc04_4000_2.hex"},
			want: map[Quantity]float64{
				VoltageA: 220.6, CurrentA: 4.35, Power: 917, PF: 0.965, Frequency: 50, Import: 3071.25,
			},
			wantWh: map[Quantity]int64{Import: 3071250},
		},
		{
			name: "ddsu666 function 3", model: ddsu666FC03, slave: 3,
			files: []string{"ddsu666_fc03_2000_16.hex", "ddsu666_fc03_4000_2.hex"},
			want: map[Quantity]float64{
				VoltageA: 220.6, CurrentA: 4.35, Power: 917, PF: 0.965, Frequency: 50, Import: 3071.25,
			},
			wantWh: map[Quantity]int64{Import: 3071250},
		},
		{
			name: "dtsu666", model: DTSU666(), slave: 4,
			files: []string{"dtsu666_fc03_101e_12.hex", "dtsu666_fc03_2006_20.hex", "dtsu666_fc03_202a_8.hex", "dtsu666_fc03_2044_2.hex"},
			want: map[Quantity]float64{
				VoltageA: 230.1, VoltageB: 229.8, VoltageC: 231.5,
				CurrentA: 15.234, CurrentB: 14.876, CurrentC: 16.001,
				Power: 10035.4, PowerA: 3390, PowerB: 3260, PowerC: 3385.4,
				PF: 0.982, PFA: 0.985, PFB: 0.979, PFC: 0.981, Frequency: 49.98,
				Import: 20456.5, Export: 56.5,
			},
			wantWh: map[Quantity]int64{Import: 20456500, Export: 56500},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := NewPlan(tt.model)
			if len(plan) != len(tt.files) {
				t.Fatalf("plan has %d blocks; want one golden reply for each of %d", len(plan), len(tt.files))
			}
			var rd Reading
			for i, file := range tt.files {
				data := golden(t, "testdata/"+file, tt.slave, plan[i])
				if err := DecodeBlock(&rd, plan[i], data); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
			}
			if got, want := len(rd.Quantities()), len(tt.model.Registers); got != want {
				t.Errorf("reading holds %d quantities %v; want all %d the model maps", got, rd.Quantities(), want)
			}
			if len(tt.want) != len(tt.model.Registers) {
				t.Errorf("test checks %d quantities; the model maps %d", len(tt.want), len(tt.model.Registers))
			}
			for q, w := range tt.want {
				got, ok := rd.Value(q)
				if !ok || math.Abs(got-w) > 1e-6*math.Max(1, math.Abs(w)) {
					t.Errorf("%s = %v (present %v); want %v", q, got, ok, w)
				}
			}
			for q, w := range tt.wantWh {
				if got, ok := rd.EnergyWh(q); !ok || got != w {
					t.Errorf("%s = %d Wh (present %v); want %d", q, got, ok, w)
				}
			}
		})
	}
}

func TestModel_WithFunction(t *testing.T) {
	tests := []struct {
		model        *Model
		fc           uint8
		wantTitle    string
		wantAlt      uint8
		wantFirstBlk uint8
	}{
		{DDSU666(), ReadHolding, "CHINT DDSU666 single-phase, read with FC03", ReadInput, ReadHolding},
		{DDSU666(), ReadInput, "CHINT DDSU666 single-phase", ReadHolding, ReadInput},
		{DTSU666(), ReadInput, "CHINT DTSU666 three-phase, read with FC04", ReadHolding, ReadInput},
		{KPM33B(), ReadInput, "Compere KPM33B three-phase, read with FC04", ReadHolding, ReadInput},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s FC%02d", tt.model.Name, tt.fc), func(t *testing.T) {
			orig := tt.model.clone()
			got, err := tt.model.WithFunction(tt.fc)
			if err != nil {
				t.Fatalf("WithFunction(%d): %v", tt.fc, err)
			}
			if got == tt.model {
				t.Fatal("WithFunction returned the model itself; want a copy")
			}
			if got.Name != tt.model.Name || got.Title != tt.wantTitle || got.AltFunction != tt.wantAlt {
				t.Errorf("got name %q title %q alt %d; want %q %q %d", got.Name, got.Title, got.AltFunction, tt.model.Name, tt.wantTitle, tt.wantAlt)
			}
			for _, r := range got.Registers {
				if r.Function != tt.fc {
					t.Errorf("%s: function %d; want %d", r.Quantity, r.Function, tt.fc)
				}
			}
			if err := got.Validate(); err != nil {
				t.Errorf("copy fails Validate: %v", err)
			}
			// The plan keeps its shape: only the function code changes.
			p0, p1 := NewPlan(tt.model), NewPlan(got)
			if len(p0) != len(p1) || p1[0].Function != tt.wantFirstBlk || p1[0].Address != p0[0].Address || p1[0].Count != p0[0].Count {
				t.Errorf("plan %+v; want %+v with FC%02d", p1, p0, tt.fc)
			}
			if !reflect.DeepEqual(tt.model, orig) {
				t.Errorf("WithFunction changed its receiver")
			}
		})
	}
}

func TestModel_WithFunction_BadCode(t *testing.T) {
	for _, fc := range []uint8{0, 1, 2, 5, 16} {
		got, err := DDSU666().WithFunction(fc)
		if !errors.Is(err, ErrBadFunction) || got != nil {
			t.Errorf("WithFunction(%d) = %v, %v; want nil, ErrBadFunction", fc, got, err)
		}
	}
}

// A copy must not share register or relay storage with the catalogue's
// model: gateways read catalogue models from several goroutines.
func TestModel_WithFunction_DoesNotAlias(t *testing.T) {
	m := KPM33B()
	c, err := m.WithFunction(ReadInput)
	if err != nil {
		t.Fatal(err)
	}
	c.Registers[0].Address = 0x9999
	c.Unreadable[0].From = 0
	c.Relay.RemoteMode.Values[0] = 0
	if m.Registers[0].Address == 0x9999 || m.Unreadable[0].From == 0 || m.Relay.RemoteMode.Values[0] == 0 {
		t.Error("changing the copy changed the original")
	}
}

func TestValidate_PlanLimits(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *Model)
		want   string // "" for no error
	}{
		{"max read at the Modbus limit", func(m *Model) { m.MaxRead = MaxReadRegisters }, ""},
		{"max read beyond the Modbus limit", func(m *Model) { m.MaxRead = MaxReadRegisters + 1 }, "Modbus limit"},
		{"max read below a value", func(m *Model) { m.MaxRead = 1 }, "does not fit"},
		{"alternative function 4", func(m *Model) { m.AltFunction = ReadInput }, ""},
		{"alternative function 6", func(m *Model) { m.AltFunction = 6 }, "alternative function code"},
	}
	for _, tt := range tests {
		m := SDM120()
		tt.mutate(m)
		err := m.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v; want %q", tt.name, err, tt.want)
		}
	}
}
