package meter

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

func TestQuantities_CountMatchesReadingArrays(t *testing.T) {
	if got := len(Quantities()); got != numQuantities {
		t.Fatalf("len(Quantities()) = %d; want numQuantities = %d", got, numQuantities)
	}
	for want, q := range Quantities() {
		if !q.Valid() {
			t.Errorf("%s listed but not valid", q)
		}
		if got, ok := quantityIndex(q); !ok || got != want {
			t.Errorf("quantityIndex(%s) = %d, %v; want %d", q, got, ok, want)
		}
	}
}

func TestBuiltin_Validate(t *testing.T) {
	for _, m := range Builtin() {
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
}

func TestKPM33B_PlanFollowsTheManual(t *testing.T) {
	plan := NewPlan(KPM33B())
	want := []Block{{Function: ReadHolding, Address: 0x0030, Count: 52}, {Function: ReadHolding, Address: 0x0082, Count: 18}}
	if len(plan) != len(want) {
		t.Fatalf("plan = %+v; want 0x0030+52 and 0x0082+18", plan)
	}
	covered := 0
	for i, w := range want {
		if b := plan[i]; b.Function != w.Function || b.Address != w.Address || b.Count != w.Count {
			t.Errorf("block %d = FC%d 0x%04X+%d; want FC%d 0x%04X+%d", i, b.Function, b.Address, b.Count, w.Function, w.Address, w.Count)
		}
		covered += len(plan[i].Registers)
	}
	if covered != len(KPM33B().Registers) {
		t.Errorf("plan covers %d registers; want %d", covered, len(KPM33B().Registers))
	}
}

func TestNewPlan_Merging(t *testing.T) {
	reg := func(q Quantity, addr uint16, fc uint8) Register {
		return Register{Quantity: q, Address: addr, Function: fc, Type: Float32, Unit: q.Unit()}
	}
	tests := []struct {
		name  string
		model Model
		want  []Block // Registers not compared
	}{
		{
			name:  "gap within bound merges",
			model: Model{MaxGap: 10, Registers: []Register{reg(VoltageA, 0, 4), reg(Import, 12, 4)}},
			want:  []Block{{Function: 4, Address: 0, Count: 14}},
		},
		{
			name:  "gap beyond bound splits",
			model: Model{MaxGap: 9, Registers: []Register{reg(VoltageA, 0, 4), reg(Import, 12, 4)}},
			want:  []Block{{Function: 4, Address: 0, Count: 2}, {Function: 4, Address: 12, Count: 2}},
		},
		{
			name:  "function codes never merge",
			model: Model{Registers: []Register{reg(VoltageA, 0, 3), reg(Import, 2, 4)}},
			want:  []Block{{Function: 3, Address: 0, Count: 2}, {Function: 4, Address: 2, Count: 2}},
		},
		{
			name:  "125-register limit",
			model: Model{MaxGap: 200, Registers: []Register{reg(VoltageA, 0, 3), reg(Import, 123, 3), reg(Power, 124, 3)}},
			want:  []Block{{Function: 3, Address: 0, Count: 125}, {Function: 3, Address: 124, Count: 2}},
		},
		{
			name: "unreadable span is never covered",
			model: Model{MaxGap: 50, Unreadable: []Span{{From: 4, To: 5}},
				Registers: []Register{reg(VoltageA, 0, 3), reg(Import, 8, 3)}},
			want: []Block{{Function: 3, Address: 0, Count: 2}, {Function: 3, Address: 8, Count: 2}},
		},
		{
			name:  "model's max read splits below 125",
			model: Model{MaxRead: 9, Registers: []Register{reg(VoltageA, 0, 4), reg(Power, 6, 4), reg(Import, 8, 4)}},
			want:  []Block{{Function: 4, Address: 0, Count: 8}, {Function: 4, Address: 8, Count: 2}},
		},
		{
			name:  "unsorted input",
			model: Model{MaxGap: 80, Registers: []Register{reg(Import, 0x82, 3), reg(VoltageA, 0x30, 3)}},
			want:  []Block{{Function: 3, Address: 0x30, Count: 0x82 + 2 - 0x30}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := NewPlan(&tt.model)
			if len(plan) != len(tt.want) {
				t.Fatalf("plan has %d blocks %+v; want %d", len(plan), plan, len(tt.want))
			}
			covered := 0
			for i, w := range tt.want {
				g := plan[i]
				if g.Function != w.Function || g.Address != w.Address || g.Count != w.Count {
					t.Errorf("block %d = FC%d 0x%X+%d; want FC%d 0x%X+%d", i, g.Function, g.Address, g.Count, w.Function, w.Address, w.Count)
				}
				if g.Count > MaxReadRegisters {
					t.Errorf("block %d reads %d registers; max %d", i, g.Count, MaxReadRegisters)
				}
				covered += len(g.Registers)
			}
			if covered != len(tt.model.Registers) {
				t.Errorf("plan covers %d registers; want %d", covered, len(tt.model.Registers))
			}
		})
	}
}

func TestCodec_RoundTrip(t *testing.T) {
	tests := []struct {
		reg Register
		v   float64
	}{
		{Register{Quantity: VoltageA, Type: Float32, Unit: "V"}, 229.5},
		{Register{Quantity: VoltageA, Type: Float32, WordOrder: Little, Unit: "V"}, 229.5},
		{Register{Quantity: VoltageA, Type: Float32, WordOrder: Little, ByteOrder: Little, Unit: "V"}, 231.25},
		{Register{Quantity: VoltageA, Type: Uint16, Scale: 0.1, Unit: "V"}, 229.7},
		{Register{Quantity: Power, Type: Int32, Unit: "W"}, -1500},
		{Register{Quantity: Power, Type: Float32, Unit: "kW"}, 2500},
		{Register{Quantity: Import, Type: Uint32, Scale: 0.01, Unit: "kWh"}, 12345.67},
		{Register{Quantity: Import, Type: Float64, Unit: "Wh"}, 98765.432},
		{Register{Quantity: PF, Type: Int16, Scale: 0.001, Unit: ""}, -0.87},
	}
	for _, tt := range tests {
		data := Encode(tt.reg, tt.v)
		got, err := Decode(tt.reg, data)
		if err != nil {
			t.Errorf("%+v: Decode: %v", tt.reg, err)
			continue
		}
		if math.Abs(got-tt.v) > 1e-3*math.Max(1, math.Abs(tt.v)) {
			t.Errorf("%+v: round trip of %v = %v", tt.reg, tt.v, got)
		}
	}
}

func TestDecode_WordOrderOnTheWire(t *testing.T) {
	// 229.5 as float32 is 0x43658000: high word 0x4365 first on a big-endian meter.
	big := Register{Quantity: VoltageA, Type: Float32, Unit: "V"}
	little := Register{Quantity: VoltageA, Type: Float32, WordOrder: Little, Unit: "V"}
	for _, tt := range []struct {
		reg  Register
		wire []byte
	}{
		{big, []byte{0x43, 0x65, 0x80, 0x00}},
		{little, []byte{0x80, 0x00, 0x43, 0x65}},
	} {
		got, err := Decode(tt.reg, tt.wire)
		if err != nil || got != 229.5 {
			t.Errorf("Decode(%s word order, % x) = %v, %v; want 229.5", tt.reg.WordOrder, tt.wire, got, err)
		}
	}
}

// Values that no meter can hold never reach a Reading: an infinity after
// scaling, a negative or absurd counter (which would overflow int64 Wh).
func TestDecode_RejectsImpossibleValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		reg  Register
		wire []byte
	}{
		{"float32 max as a counter", Register{Quantity: Import, Type: Float32, Unit: "kWh"}, []byte{0x7f, 0x7f, 0xff, 0xff}},
		{"negative counter", Register{Quantity: Import, Type: Float32, Unit: "kWh"}, Encode(Register{Quantity: Import, Type: Float32, Unit: "kWh"}, -100)},
		{"infinite after the unit", Register{Quantity: VoltageA, Type: Float64, Unit: "kV"}, []byte{0x7f, 0xaa, 0x77, 0x8a, 0x5e, 0x8f, 0x1c, 0x3f}},
	} {
		if v, err := Decode(tt.reg, tt.wire); err == nil {
			t.Errorf("%s: Decode = %v; want an error", tt.name, v)
		}
	}
	var rd Reading
	b := Block{Function: ReadHolding, Address: 0, Count: 2, Registers: []Register{{Quantity: Import, Type: Float32, Unit: "kWh"}}}
	if err := DecodeBlock(&rd, b, []byte{0x7f, 0x7f, 0xff, 0xff}); !errors.Is(err, ErrBadValue) {
		t.Errorf("DecodeBlock of an absurd counter: err = %v; want ErrBadValue", err)
	}
}

func TestDecode_RejectsNaNAndShortData(t *testing.T) {
	r := Register{Quantity: Import, Type: Float32, Unit: "kWh"}
	if _, err := Decode(r, []byte{0x7f, 0xc0, 0x00, 0x00}); err == nil {
		t.Error("Decode(NaN) succeeded; want an error")
	}
	if _, err := Decode(r, []byte{0x43, 0x65}); err == nil {
		t.Error("Decode(2 bytes for float32) succeeded; want an error")
	}
}

// readGolden returns the reply frame of a golden file (hex, # comments).
func readGolden(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b...)
	}
	return out
}

// TestKPM33B_GoldenFrame decodes reply frames built byte by byte from the
// register map (not from Encode) with values a real KPM33B reported.
func TestKPM33B_GoldenFrame(t *testing.T) {
	plan := NewPlan(KPM33B())
	var rd Reading
	for i, file := range []string{"testdata/kpm33b_fc03_0030_52.hex", "testdata/kpm33b_fc03_0082_18.hex"} {
		frame := readGolden(t, file)
		n := 2 * int(plan[i].Count)
		if len(frame) != 3+n+2 || int(frame[2]) != n {
			t.Fatalf("%s is %d bytes, byte count %d; want the reply to block %d", file, len(frame), frame[2], i)
		}
		if err := DecodeBlock(&rd, plan[i], frame[3:3+n]); err != nil {
			t.Fatal(err)
		}
	}
	want := map[Quantity]float64{
		VoltageA: 229.097, VoltageB: 231.567, VoltageC: 232.529,
		CurrentA: 9.735, CurrentB: 9.658, CurrentC: 9.655,
		PowerA: 2222.9, PowerB: 2229.3, PowerC: 2238.2, Power: 6690.5,
		PFA: 0.996, PF: 0.996, Frequency: 49.959,
		Import: 31.057, Sharp: 1.25, Peak: 10.5, Flat: 12.307, Valley: 7,
	}
	for q, w := range want {
		got, ok := rd.Value(q)
		if !ok || math.Abs(got-w) > 1e-4*math.Max(1, w) {
			t.Errorf("%s = %v (present %v); want %v", q, got, ok, w)
		}
	}
	wantWh := map[Quantity]int64{Import: 31057, Export: 0, Sharp: 1250, Peak: 10500, Flat: 12307, Valley: 7000}
	for q, w := range wantWh {
		if got, ok := rd.EnergyWh(q); !ok || got != w {
			t.Errorf("%s = %d Wh (present %v); want %d", q, got, ok, w)
		}
	}
}

func TestKWhToWh_Rounds(t *testing.T) {
	for _, tt := range []struct {
		kwh  float64
		want int64
	}{
		{float64(float32(31.057)), 31057}, // 31.05699920654297 as float32
		{0.0004, 0}, {0.0005, 1}, {123456.789, 123456789}, {-1.2345, -1235},
	} {
		if got := kWhToWh(tt.kwh); got != tt.want {
			t.Errorf("kWhToWh(%v) = %d; want %d", tt.kwh, got, tt.want)
		}
	}
}

func TestValidate_Problems(t *testing.T) {
	ok := func() *Model { return KPM33B() }
	tests := []struct {
		name   string
		mutate func(m *Model)
		want   string
	}{
		{"no import counter", func(m *Model) { m.Registers = m.Registers[:3] }, "billing counter"},
		{"unknown quantity", func(m *Model) { m.Registers[0].Quantity = "volts" }, "unknown quantity"},
		{"twice", func(m *Model) { m.Registers[1].Quantity = VoltageA }, "mapped twice"},
		{"function code", func(m *Model) { m.Registers[0].Function = 6 }, "function code"},
		{"type", func(m *Model) { m.Registers[0].Type = "int8" }, "unknown type"},
		{"unit", func(m *Model) { m.Registers[0].Unit = "kWh" }, "cannot express"},
		{"unreadable", func(m *Model) { m.Unreadable = []Span{{From: 0x31, To: 0x31}} }, "unreadable"},
		{"order", func(m *Model) { m.Registers[0].WordOrder = "middle" }, "order"},
	}
	for _, tt := range tests {
		m := ok()
		tt.mutate(m)
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// fakeCoils is an in-memory relay for SwitchRelay's logic.
type fakeCoils struct {
	remote, closed bool
	needsRemote    bool
	coilBits       byte // what ReadCoils returns when closed (0x01 or 0x07)
	writes         []string
}

func (f *fakeCoils) ReadCoils(_ context.Context, _, _ uint16) ([]byte, error) {
	if f.closed {
		return []byte{f.coilBits}, nil
	}
	return []byte{0}, nil
}

func (f *fakeCoils) WriteSingleCoil(_ context.Context, _ uint16, on bool) error {
	f.writes = append(f.writes, "coil")
	if f.remote || !f.needsRemote {
		f.closed = on
	}
	return nil
}

func (f *fakeCoils) WriteMultipleRegisters(_ context.Context, addr uint16, v []uint16) error {
	f.writes = append(f.writes, "mode")
	if addr == KPM33BControlMode && len(v) == 1 && v[0] == KPM33BRemote {
		f.remote = true
	}
	return nil
}

func TestSwitchRelay_SetsRemoteModeFirstAndReadsBack(t *testing.T) {
	for _, bits := range []byte{0x01, 0x07} {
		f := &fakeCoils{needsRemote: true, closed: true, coilBits: bits}
		got, err := SwitchRelay(context.Background(), f, KPM33B(), false)
		if err != nil || got != RelayOpen {
			t.Fatalf("open: got %v, %v; want open", got, err)
		}
		if strings.Join(f.writes, ",") != "mode,coil" {
			t.Errorf("writes = %v; want mode then coil", f.writes)
		}
		got, err = SwitchRelay(context.Background(), f, KPM33B(), true)
		if err != nil || got != RelayClosed {
			t.Errorf("close with status bits %#x: got %v, %v; want closed", bits, got, err)
		}
	}
}

func TestSwitchRelay_DidNotFollow(t *testing.T) {
	m := KPM33B()
	m.Relay.RemoteMode = nil // the meter stays in local mode
	f := &fakeCoils{needsRemote: true, closed: true, coilBits: 1}
	got, err := SwitchRelay(context.Background(), f, m, false)
	if !errors.Is(err, ErrRelayDidNotFollow) || got != RelayClosed {
		t.Errorf("SwitchRelay in local mode = %v, %v; want closed, ErrRelayDidNotFollow", got, err)
	}
}

func TestReading_ApplyRatios(t *testing.T) {
	var rd Reading
	rd.Set(Import, 12.345) // kWh at the secondary side
	rd.Set(CurrentA, 2.5)
	rd.Set(VoltageA, 57.7)
	rd.Set(Power, 300)
	rd.Set(PF, 0.9)
	if err := rd.ApplyRatios(200, 100); err != nil {
		t.Fatal(err)
	}
	if wh, _ := rd.ImportWh(); wh != 12_345*200*100 {
		t.Errorf("import = %d Wh; want %d (exact: energy stays integer)", wh, 12_345*200*100)
	}
	for _, tt := range []struct {
		q    Quantity
		want float64
	}{{CurrentA, 500}, {VoltageA, 5770}, {Power, 6_000_000}, {PF, 0.9}} {
		if v, _ := rd.Value(tt.q); math.Abs(v-tt.want) > 1e-6*tt.want {
			t.Errorf("%s = %v; want %v", tt.q, v, tt.want)
		}
	}
	var big Reading
	big.Set(Import, MaxCounterKWh/2)
	if err := big.ApplyRatios(10, 1); !errors.Is(err, ErrBadValue) {
		t.Errorf("ApplyRatios past the plausible range: err = %v; want ErrBadValue", err)
	}
	if wh, _ := big.ImportWh(); wh != int64(MaxCounterKWh/2*1000) {
		t.Errorf("a refused ApplyRatios changed the reading to %d Wh", wh)
	}
}

func TestFormatKWh(t *testing.T) {
	for _, tt := range []struct {
		wh   int64
		want string
	}{{0, "0.000"}, {7, "0.007"}, {31057, "31.057"}, {-1500, "-1.500"}, {math.MinInt64, "-9223372036854775.808"}} {
		if got := FormatKWh(tt.wh); got != tt.want {
			t.Errorf("FormatKWh(%d) = %q; want %q", tt.wh, got, tt.want)
		}
	}
}

// A counter sent as decimal text keeps every Wh: through Set, 1.005 kWh
// would be 1004.9999999999999 Wh before rounding, and counters beyond
// float64's 2^53 would lose their last Wh.
func TestReading_SetWh(t *testing.T) {
	var r Reading
	r.SetWh(Import, 9_007_199_254_740_993) // 2^53 + 1: no float64 holds it
	r.SetWh(Sharp, 1_005)
	r.SetWh(VoltageA, 230) // not a counter: ignored
	if wh, ok := r.ImportWh(); !ok || wh != 9_007_199_254_740_993 {
		t.Errorf("ImportWh = %d, %v; want 9007199254740993, true", wh, ok)
	}
	if wh, ok := r.EnergyWh(Sharp); !ok || wh != 1_005 {
		t.Errorf("sharp = %d, %v; want 1005, true", wh, ok)
	}
	if v, ok := r.Value(Sharp); !ok || v != 1.005 {
		t.Errorf("sharp value = %v, %v; want 1.005 kWh", v, ok)
	}
	if _, ok := r.Value(VoltageA); ok {
		t.Error("SetWh stored a voltage; want it ignored")
	}
	if got := r.Quantities(); len(got) != 2 || got[0] != Import || got[1] != Sharp {
		t.Errorf("Quantities = %v; want [import_kwh sharp_kwh]", got)
	}
}
