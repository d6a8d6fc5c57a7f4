package sim

import (
	"fmt"
	"math"
	"sync"
	"time"

	"mallgrid/drivers/meter"
)

// Meter is one simulated meter of a meter.Model at a Modbus address. Its
// methods are safe for concurrent use: a test may turn knobs while a bus
// serves the meter to a master.
type Meter struct {
	model   *meter.Model
	now     func() time.Time
	profile Profile
	seed    int64
	phases  int    // 1 or 3, from the quantities the model maps
	top     [5]int // per read function code: one past the highest readable register; 0 = none
	// published is the model's published register map, beyond what the
	// gateway reads (see publishedMap).
	published publishedMap
	mode      modeSpan // where the model keeps its control-mode register, if it has one

	mu          sync.Mutex
	addr        uint8
	baud        uint16 // parameter word 0x0002
	serial      [14]byte
	last        time.Time // energy is integrated up to here
	energy      counters
	relayClosed bool
	remote      bool
	fixedLoad   bool    // SetLoad overrides the profile
	load        float64 // W, when fixedLoad
	// libmodbus: the meter listens as a libmodbus RTU slave does (see
	// WithLibmodbusSlave); awaiting is set while it takes the next frame
	// on the line for another slave's reply.
	libmodbus bool
	awaiting  bool

	faults faults
}

// Option configures a Meter built by NewMeter.
type Option func(*options)

type options struct {
	now       func() time.Time
	base      float64
	seed      int64
	seedSet   bool
	profile   Profile
	serial    string
	importWh  int64
	libmodbus bool
}

// WithClock sets the clock the meter integrates energy against; tests pass a
// fake one. The default is time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithBasePower sets the base load in W of the default MallProfile (3000 W).
func WithBasePower(w float64) Option { return func(o *options) { o.base = w } }

// WithSeed seeds the profile's noise, the serial number and the fault
// generator. The default is the meter's address, so every meter of a bus
// differs and every run is the same.
func WithSeed(seed int64) Option {
	return func(o *options) { o.seed, o.seedSet = seed, true }
}

// WithProfile replaces the default MallProfile; base power and seed then do
// not shape the load.
func WithProfile(p Profile) Option { return func(o *options) { o.profile = p } }

// WithSerial sets the serial number the parameter area shows (at most 13
// ASCII bytes are kept, as on the KPM33B).
func WithSerial(s string) Option { return func(o *options) { o.serial = s } }

// WithLibmodbusSlave makes the meter listen on an RTU line as a slave
// built on libmodbus's RTU backend does: when it hears a request addressed
// to another slave, it takes the next frame on the line for that slave's
// reply and ignores it, whatever that frame's address (libmodbus's
// "confirmation to ignore"). On a line where the other slave answers, the
// ignored frame is that answer and nothing is lost; when the other address
// is empty, the ignored frame is the master's next request, and if that
// request is for this meter it goes unanswered. The real library then
// misframes a few bytes more; the simulator drops exactly one frame. It
// applies to RTU lines only (ServeRTU, ServeRTUOverTCP): Modbus TCP has no
// such state.
func WithLibmodbusSlave() Option { return func(o *options) { o.libmodbus = true } }

// WithImportWh sets the import counter the meter starts from.
func WithImportWh(wh int64) Option { return func(o *options) { o.importWh = wh } }

// NewMeter returns a meter of model at addr with its relay closed, in local
// control mode (as a meter leaves the factory: a gateway must switch it to
// remote mode before it can cut off), at 9600 baud 8E1, drawing a
// MallProfile of 3000 W base unless options say otherwise. It fails with
// ErrModel for a nil or invalid model and ErrAddress for an address outside
// 1..247. The model must not be changed afterwards.
func NewMeter(model *meter.Model, addr uint8, opts ...Option) (*Meter, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: nil model", ErrModel)
	}
	if err := model.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	if addr < 1 || addr > 247 {
		return nil, fmt.Errorf("%w: %d", ErrAddress, addr)
	}
	o := options{now: time.Now, base: 3000}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.seedSet {
		o.seed = int64(addr)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.profile == nil {
		o.profile = MallProfile(o.base, o.seed)
	}
	if o.serial == "" {
		o.serial = fmt.Sprintf("SIM%010d", splitmix64(uint64(o.seed)^uint64(addr))%1e10)
	}
	m := &Meter{
		model:       model,
		now:         o.now,
		profile:     o.profile,
		seed:        o.seed,
		phases:      phasesOf(model),
		mode:        modeSpanOf(model),
		addr:        addr,
		baud:        defaultBaudWord,
		relayClosed: true,
		libmodbus:   o.libmodbus,
	}
	m.faults.init(o.seed)
	copy(m.serial[:13], o.serial)
	m.energy.importWh = o.importWh
	m.published = publishedOf(model)
	m.top = readableTops(model, m.mode)
	m.last = m.now()
	return m, nil
}

// phasesOf is 3 when the model maps any phase B or C quantity, else 1.
func phasesOf(model *meter.Model) int {
	for _, q := range []meter.Quantity{
		meter.VoltageB, meter.VoltageC, meter.CurrentB, meter.CurrentC,
		meter.PowerB, meter.PowerC, meter.PFB, meter.PFC,
	} {
		if model.Has(q) {
			return 3
		}
	}
	return 1
}

// Model returns the meter's model.
func (m *Meter) Model() *meter.Model { return m.model }

// Address returns the meter's current Modbus address (a master may change it
// by writing register 0x0001).
func (m *Meter) Address() uint8 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// SetLoad fixes the load at watts from now on, replacing the profile until
// FollowProfile; energy up to now is integrated with the previous load.
// Negative watts export.
func (m *Meter) SetLoad(watts float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advanceLocked(m.now())
	m.fixedLoad, m.load = true, watts
}

// FollowProfile returns the load to the meter's profile after SetLoad.
func (m *Meter) FollowProfile() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advanceLocked(m.now())
	m.fixedLoad = false
}

// SetRelay closes (power on) or opens (cut off) the relay directly, as a
// technician at the meter would; it ignores the control mode.
func (m *Meter) SetRelay(closed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setRelayLocked(closed)
}

func (m *Meter) setRelayLocked(closed bool) {
	m.advanceLocked(m.now())
	m.relayClosed = closed
}

// SetRemote puts the meter in remote (true) or local control mode, as the
// front-panel setting would. It matters only for models whose relay needs
// remote mode (meter.Relay.RemoteMode).
func (m *Meter) SetRemote(remote bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.remote = remote
}

// SetImportWh sets the import counter to wh, as a counter reset, a replaced
// meter or a jump would. The sub-Wh remainder is cleared; the rate counters
// are left alone, so a test can make them disagree with the import counter.
func (m *Meter) SetImportWh(wh int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advanceLocked(m.now())
	m.energy.importWh, m.energy.importRem = wh, 0
}

// Snapshot is what a meter holds at one instant.
type Snapshot struct {
	Time    time.Time // the meter's clock when taken
	Address uint8
	// Energy counters, exact Wh. The four rates add up to what the import
	// counter gained since the meter was built (unless SetImportWh moved it).
	ImportWh, ExportWh                int64
	SharpWh, PeakWh, FlatWh, ValleyWh int64
	RelayClosed                       bool
	Remote                            bool // control mode
	Phases                            int  // 1 or 3
	// Per phase A, B, C; phases a single-phase model lacks are zero.
	Voltage, Current, PhasePower, PhasePF [3]float64
	Power                                 float64 // W, total active
	PF                                    float64 // total power factor
	Frequency                             float64 // Hz
	// ResidualMA is the leakage current, and Temps the terminals' (A, B,
	// C, N) temperatures, of a meter that reports them: a sound
	// installation's (a few mA, the room's temperature).
	ResidualMA float64
	Temps      [4]float64 // °C
}

// Snapshot returns the meter's values now, with energy integrated up to now.
func (m *Meter) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshotLocked()
}

func (m *Meter) snapshotLocked() Snapshot {
	now := m.now()
	m.advanceLocked(now)
	s := Snapshot{
		Time:        now,
		Address:     m.addr,
		ImportWh:    m.energy.importWh,
		ExportWh:    m.energy.exportWh,
		SharpWh:     m.energy.rateWh[rateSharp],
		PeakWh:      m.energy.rateWh[ratePeak],
		FlatWh:      m.energy.rateWh[rateFlat],
		ValleyWh:    m.energy.rateWh[rateValley],
		RelayClosed: m.relayClosed,
		Remote:      m.remote,
		Phases:      m.phases,
		Frequency:   50 + 0.03*noise(m.seed, minuteIndex(now), 10),
		PF:          1,
		ResidualMA:  3,
		Temps:       [4]float64{28, 28, 28, 26},
	}
	p := 0.0
	if m.relayClosed {
		p = float64(milliwatts(m.powerLocked(now))) / 1000 // what the integrator uses
	}
	s.Power = p
	if p != 0 {
		s.PF = 0.95
	}
	for i := range m.phases {
		// The voltage stays when the relay opens: the meter sits upstream of it.
		s.Voltage[i] = 230 + 3*noise(m.seed, minuteIndex(now), uint64(1+i))
		s.PhasePower[i] = p / float64(m.phases)
		s.PhasePF[i] = s.PF
		s.Current[i] = math.Abs(s.PhasePower[i]) / (s.Voltage[i] * s.PhasePF[i])
	}
	return s
}

// Value returns quantity q from the snapshot in q's unit (energy in kWh, as
// meter.Decode returns it) and whether q is a quantity the simulator knows.
func (s Snapshot) Value(q meter.Quantity) (float64, bool) {
	switch q {
	case meter.VoltageA, meter.VoltageB, meter.VoltageC:
		return s.Voltage[phaseIndex(q)], true
	case meter.CurrentA, meter.CurrentB, meter.CurrentC:
		return s.Current[phaseIndex(q)], true
	case meter.PowerA, meter.PowerB, meter.PowerC:
		return s.PhasePower[phaseIndex(q)], true
	case meter.PFA, meter.PFB, meter.PFC:
		return s.PhasePF[phaseIndex(q)], true
	case meter.Power:
		return s.Power, true
	case meter.PF:
		return s.PF, true
	case meter.Frequency:
		return s.Frequency, true
	case meter.Import:
		return float64(s.ImportWh) / 1000, true
	case meter.Export:
		return float64(s.ExportWh) / 1000, true
	case meter.Sharp:
		return float64(s.SharpWh) / 1000, true
	case meter.Peak:
		return float64(s.PeakWh) / 1000, true
	case meter.Flat:
		return float64(s.FlatWh) / 1000, true
	case meter.Valley:
		return float64(s.ValleyWh) / 1000, true
	case meter.ResidualCurrent:
		return s.ResidualMA, true
	case meter.TempA:
		return s.Temps[0], true
	case meter.TempB:
		return s.Temps[1], true
	case meter.TempC:
		return s.Temps[2], true
	case meter.TempN:
		return s.Temps[3], true
	}
	return 0, false
}

func phaseIndex(q meter.Quantity) int {
	switch q {
	case meter.VoltageB, meter.CurrentB, meter.PowerB, meter.PFB:
		return 1
	case meter.VoltageC, meter.CurrentC, meter.PowerC, meter.PFC:
		return 2
	}
	return 0
}
