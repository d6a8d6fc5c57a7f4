package meter

import (
	"fmt"
	"math"
	"sort"
)

// DataType is how a value is laid out in one or more 16-bit registers.
type DataType string

// Data types a register may hold.
const (
	Int16   DataType = "int16"
	Uint16  DataType = "uint16"
	Int32   DataType = "int32"
	Uint32  DataType = "uint32"
	Float32 DataType = "float32"
	Float64 DataType = "float64"
)

// Words returns how many 16-bit registers t occupies, or 0 for an unknown type.
func (t DataType) Words() uint16 {
	switch t {
	case Int16, Uint16:
		return 1
	case Int32, Uint32, Float32:
		return 2
	case Float64:
		return 4
	}
	return 0
}

// Order is the order of words within a value, or of bytes within a word.
type Order string

// Orders. Big is the Modbus norm: high word (byte) first.
const (
	Big    Order = "big"
	Little Order = "little"
)

// Function codes a model may use to read registers.
const (
	ReadHolding uint8 = 3
	ReadInput   uint8 = 4
)

// Register is one value a meter exposes.
type Register struct {
	Quantity  Quantity
	Address   uint16 // 0-based Modbus address
	Function  uint8  // ReadHolding or ReadInput
	Type      DataType
	WordOrder Order   // "" means Big
	ByteOrder Order   // "" means Big
	Scale     float64 // raw × Scale is the value in Unit; 0 means 1
	Unit      string  // unit after scaling; converted to the quantity's unit
}

// Span is an inclusive range of register addresses.
type Span struct{ From, To uint16 }

// Relay says how a meter's load-control relay is read and switched.
type Relay struct {
	// Coil is read with FC01 and written with FC05 (0xFF00 close, 0x0000 open).
	Coil uint16
	// RemoteMode, if set, is written with FC16 before any switching: some
	// meters (KPM33B) ignore relay commands unless in remote-control mode.
	RemoteMode *RegisterWrite
}

// RegisterWrite is a block of holding registers to write with FC16.
type RegisterWrite struct {
	Address uint16
	Values  []uint16
}

// Model is a meter model as data.
type Model struct {
	Name   string // catalogue name used in YAML and on the command line
	Title  string // human name, e.g. "Compere KPM33B three-phase"
	Manual string // the document the register map was transcribed from
	// MaxGap is how many unneeded registers a planned read may span to save
	// a transaction. 0 means the default (DefaultMaxGap).
	MaxGap uint16
	// MaxRead is the most registers one planned read may cover, for meters
	// that refuse long reads below the Modbus limit. 0 means
	// MaxReadRegisters.
	MaxRead uint16
	// AltFunction is the read function code some units of the model answer
	// on instead of their registers' own (firmware differs, or sources
	// disagree); 0 if none is known. meter scan tries the model both ways,
	// and a meter's function: key in the configuration picks one
	// (WithFunction).
	AltFunction uint8
	Registers   []Register
	Unreadable  []Span // ranges a planned read must never cover
	Relay       *Relay // nil: the meter cannot switch its load
	// Secondary says the meter reports what it measures at its terminals,
	// behind current and voltage transformers: the gateway multiplies by
	// the metering point's CT and PT ratios (Reading.ApplyRatios). False
	// for meters that report primary values, whose ratios are set in the
	// meter itself (KPM33B, the CT versions of SDM and CHINT meters).
	Secondary bool
}

// DefaultMaxGap is the gap bridged when a model does not say; Telegraf's
// modbus input uses 50 by default.
const DefaultMaxGap = 50

// MaxReadRegisters is the Modbus limit for one FC03/FC04 request.
const MaxReadRegisters = 125

// unitFactor converts a register's unit to the quantity's canonical unit.
var unitFactor = map[string]map[string]float64{
	"V":   {"V": 1, "kV": 1000},
	"A":   {"A": 1, "mA": 0.001},
	"W":   {"W": 1, "kW": 1000},
	"Hz":  {"Hz": 1},
	"":    {"": 1},
	"kWh": {"kWh": 1, "Wh": 0.001, "MWh": 1000},
}

// Validate reports the first problem that would make m unusable.
func (m *Model) Validate() error {
	if m.Name == "" {
		return fmt.Errorf("model has no name")
	}
	if m.MaxRead > MaxReadRegisters {
		return fmt.Errorf("model %s: max read %d registers (the Modbus limit is %d)", m.Name, m.MaxRead, MaxReadRegisters)
	}
	if m.AltFunction != 0 && m.AltFunction != ReadHolding && m.AltFunction != ReadInput {
		return fmt.Errorf("model %s: alternative function code %d (want 3 or 4)", m.Name, m.AltFunction)
	}
	seen := make(map[Quantity]bool)
	for i, r := range m.Registers {
		if !r.Quantity.Valid() {
			return fmt.Errorf("model %s: register %d: unknown quantity %q", m.Name, i, r.Quantity)
		}
		if seen[r.Quantity] {
			return fmt.Errorf("model %s: quantity %s mapped twice", m.Name, r.Quantity)
		}
		seen[r.Quantity] = true
		if r.Function != ReadHolding && r.Function != ReadInput {
			return fmt.Errorf("model %s: %s: function code %d (want 3 or 4)", m.Name, r.Quantity, r.Function)
		}
		if r.Type.Words() == 0 {
			return fmt.Errorf("model %s: %s: unknown type %q", m.Name, r.Quantity, r.Type)
		}
		if r.Type.Words() > m.maxRead() {
			return fmt.Errorf("model %s: %s: a %s does not fit in a read of %d registers", m.Name, r.Quantity, r.Type, m.maxRead())
		}
		if int(r.Address)+int(r.Type.Words()) > 0x10000 {
			return fmt.Errorf("model %s: %s: address 0x%04X overruns the register space", m.Name, r.Quantity, r.Address)
		}
		if _, ok := unitFactor[r.Quantity.Unit()][r.Unit]; !ok {
			return fmt.Errorf("model %s: %s: unit %q cannot express %q", m.Name, r.Quantity, r.Unit, r.Quantity.Unit())
		}
		for _, o := range []Order{r.WordOrder, r.ByteOrder} {
			if o != "" && o != Big && o != Little {
				return fmt.Errorf("model %s: %s: order %q (want big or little)", m.Name, r.Quantity, o)
			}
		}
		for _, u := range m.Unreadable {
			if overlaps(r.Address, r.Address+r.Type.Words()-1, u) {
				return fmt.Errorf("model %s: %s at 0x%04X lies in unreadable range 0x%04X-0x%04X", m.Name, r.Quantity, r.Address, u.From, u.To)
			}
		}
	}
	if !seen[Import] {
		return fmt.Errorf("model %s: no register holds %s (the billing counter)", m.Name, Import)
	}
	return nil
}

// Has reports whether m maps quantity q.
func (m *Model) Has(q Quantity) bool {
	for _, r := range m.Registers {
		if r.Quantity == q {
			return true
		}
	}
	return false
}

// maxRead returns the longest read the planner may make for m.
func (m *Model) maxRead() uint16 {
	if m.MaxRead == 0 {
		return MaxReadRegisters
	}
	return m.MaxRead
}

// WithFunction returns a copy of m whose every register is read with
// function code fc (ReadHolding or ReadInput), for units that answer on the
// other code than the catalogue's (the CHINT meters: sources disagree, and
// firmware may too). The copy keeps m's Name, because it is the same meter
// read another way and readings, logs and scan results should say so; its
// Title names the code, and its AltFunction is m's own code, so the copy
// knows the way back. m is left as it is. WithFunction returns
// ErrBadFunction for any other code.
func (m *Model) WithFunction(fc uint8) (*Model, error) {
	if fc != ReadHolding && fc != ReadInput {
		return nil, fmt.Errorf("%w: %d (want %d or %d)", ErrBadFunction, fc, ReadHolding, ReadInput)
	}
	c := m.clone()
	own := m.ownFunction()
	if own == fc {
		return c, nil
	}
	for i := range c.Registers {
		c.Registers[i].Function = fc
	}
	c.AltFunction = own // 0 when m mixed codes: there is no single way back
	c.Title = fmt.Sprintf("%s, read with FC%02d", m.Title, fc)
	return c, nil
}

// ownFunction returns the function code every register of m uses, or 0
// when they differ (or m has none).
func (m *Model) ownFunction() uint8 {
	var fc uint8
	for i, r := range m.Registers {
		if i > 0 && r.Function != fc {
			return 0
		}
		fc = r.Function
	}
	return fc
}

// clone returns a deep copy of m: catalogue models are shared between
// goroutines and must not change under them.
func (m *Model) clone() *Model {
	c := *m
	c.Registers = append([]Register(nil), m.Registers...)
	c.Unreadable = append([]Span(nil), m.Unreadable...)
	if m.Relay != nil {
		r := *m.Relay
		if m.Relay.RemoteMode != nil {
			rm := *m.Relay.RemoteMode
			rm.Values = append([]uint16(nil), rm.Values...)
			r.RemoteMode = &rm
		}
		c.Relay = &r
	}
	return &c
}

// sortedRegisters returns m's registers ordered by function then address.
func (m *Model) sortedRegisters() []Register {
	regs := append([]Register(nil), m.Registers...)
	sort.Slice(regs, func(i, j int) bool {
		if regs[i].Function != regs[j].Function {
			return regs[i].Function < regs[j].Function
		}
		return regs[i].Address < regs[j].Address
	})
	return regs
}

func overlaps(from, to uint16, s Span) bool { return from <= s.To && s.From <= to }

// ResolutionWh is the least step, in Wh, by which m's billing counter can
// be seen to rise when it reads atWh: the register's scale for an integer
// counter, the spacing of float32 (or float64) values near atWh for a float
// one, at least 1 Wh. A rise of no more than this may be the meter
// rounding energy it had counted before, not new energy (the relay's
// bypass check). atWh is the primary value; ratio is the metering point's
// CT × PT ratio for a model that reports secondary values, else 1: the
// step is the register's, at the secondary value, times ratio.
func (m *Model) ResolutionWh(atWh, ratio int64) int64 {
	ratio = max(ratio, 1)
	for _, r := range m.Registers {
		if r.Quantity != Import {
			continue
		}
		kwhPerUnit := unitFactor["kWh"][r.Unit] // validated: the unit is known
		var step float64                        // in the register's unit
		switch r.Type {
		case Float32, Float64:
			mant := 24
			if r.Type == Float64 {
				mant = 53
			}
			// The register holds the secondary value: atWh / ratio.
			v := float64(atWh) / float64(ratio) / 1000 / kwhPerUnit / scale(r)
			_, exp := math.Frexp(max(v, 1))
			step = math.Ldexp(1, exp-mant) * scale(r)
		default:
			step = scale(r)
		}
		wh := int64(math.Ceil(step * kwhPerUnit * 1000 * float64(ratio)))
		return max(wh, 1)
	}
	return 1
}
