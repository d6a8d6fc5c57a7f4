package compere

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"mallgrid/drivers/meter"
)

// MinClockYear is the earliest year a meter clock can be right in: these
// meters were made after it, and one whose clock lost power reports 2005.
const MinClockYear = 2010

// Message is what Decode returns: *RTData, *Energy, *Signal, *ControlReply
// or *Reply.
type Message interface {
	// Head returns what every message has.
	Head() *Header
}

// Header is what every message has.
type Header struct {
	Topic Topic
	ID    string
	// Clock is the meter's clock as sent, read in the location passed to
	// Decode — even when it cannot be right; zero if absent or unreadable.
	Clock time.Time
	// ClockErr wraps ErrClock when Clock is absent, unreadable, or before
	// MinClockYear; nil when it is plausible.
	ClockErr error
	Packets  int // packets joined into the message
}

// Head returns h.
func (h *Header) Head() *Header { return h }

// Value is an instantaneous value, and whether the message held it.
type Value struct {
	X  float64
	OK bool
}

// Counter is an energy counter in Wh, and whether the message held it.
type Counter struct {
	Wh int64
	OK bool
}

// RTData is MQTT_RT_DATA: instantaneous values, in drivers/meter's units.
// Arrays run phase A, B, C (and the total, or the neutral for Temp).
type RTData struct {
	Header
	Voltage   [3]Value // V, ua ub uc
	Current   [3]Value // A, ia ib ic
	Power     [4]Value // W, pa pb pc zyggl (sent in kW)
	Reactive  [4]Value // var, qa qb qc zwggl (sent in kvar)
	Apparent  [4]Value // VA, sa sb sc zszgl (sent in kVA)
	PF        [4]Value // pfa pfb pfc zglys
	Frequency Value    // Hz, f
	Residual  Value    // mA, ig (sent in A)
	Temp      [4]Value // °C, ta tb tc tn
	ZeroFrame bool     // every value zero: a glitch, not a measurement
}

// Energy is MQTT_ENY_NOW (the counters now) or MQTT_DAY_DATA (the
// counters frozen at 0:00), in exact Wh (varh for the reactive ones).
type Energy struct {
	Header
	Import, Export                 Counter
	ReactiveImport, ReactiveExport Counter
	// Rates are the import rate counters: sharp, peak, flat, valley
	// (billing/counter's order).
	Rates [4]Counter
	// ZeroFrame: every value zero (counter 31.057 → 0 → 31.057): never to
	// be taken as a reading of 0.
	ZeroFrame bool
	// Bad lists the tags of counters that were sent but are not a
	// non-negative decimal within a TWh; they are left out.
	Bad []string
}

// Signal is MQTT_TELEIND: the DI and DO states, bit n-1 for DIn / DOn.
type Signal struct {
	Header
	DI, DO uint32
}

// Output returns the state of relay output n (1 for do1): a set DO bit is
// a closed contact, power on.
func (s *Signal) Output(n int) meter.RelayState {
	if n < 1 || n > 32 {
		return meter.RelayUnknown
	}
	if s.DO&(1<<(n-1)) != 0 {
		return meter.RelayClosed
	}
	return meter.RelayOpen
}

// Reply is a meter's answer to a command: MQTT_METER_TIME_REP,
// MQTT_COMMOD_SET_REP, and within ControlReply MQTT_TELECTRL_REP.
type Reply struct {
	Header
	OprID string // the command's operation id
	Code  string // "01" done, "02" failed
	Msg   string // why it failed, if the meter says
}

// Done reports whether the meter carried the command out (code 01).
func (r *Reply) Done() bool { return r.Code == "01" }

// ControlReply is MQTT_TELECTRL_REP: the answer to a relay command.
type ControlReply struct {
	Reply
	Output int  // n of "don"
	Closed bool // the commanded state: "1" closed (power on)
}

// Decode turns a complete packet (Joiner) into its typed message, reading
// the meter's clock in loc. It fails with ErrTopic for a topic it does not
// know and with ErrValue for a message missing what defines it (a
// TELEIND's value, a reply's oprid); a missing or malformed measurement
// is only absent.
func Decode(p Packet, loc *time.Location) (Message, error) {
	h := Header{Topic: p.Topic, ID: p.ID, Packets: p.Packets}
	h.Clock, h.ClockErr = parseClock(p.Clock, loc)
	switch p.Topic {
	case TopicRTData:
		return decodeRT(h, &p), nil
	case TopicEnyNow:
		return decodeEnergy(h, &p, enyNowTags), nil
	case TopicDayData:
		return decodeEnergy(h, &p, dayDataTags), nil
	case TopicTeleInd:
		return decodeSignal(h, &p)
	case TopicTeleCtrlRep:
		return decodeControlReply(h, &p)
	case TopicTimeRep, TopicCommodRep:
		r, err := decodeReply(h, &p)
		if err != nil {
			return nil, err
		}
		return &r, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrTopic, p.Topic)
}

// parseClock reads yyyyMMddHHmmss in loc.
func parseClock(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: no time tag", ErrClock)
	}
	if len(s) != 14 || !allDigits(s) {
		return time.Time{}, fmt.Errorf("%w: %q is not yyyyMMddHHmmss", ErrClock, s)
	}
	t, err := time.ParseInLocation("20060102150405", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is no time: %v", ErrClock, s, err)
	}
	if t.Year() < MinClockYear {
		return t, fmt.Errorf("%w: %s is before %d: the meter's clock is wrong", ErrClock, t.Format(time.DateTime), MinClockYear)
	}
	return t, nil
}

func decodeRT(h Header, p *Packet) *RTData {
	m := &RTData{Header: h, ZeroFrame: p.ZeroFrame()}
	val := func(tag string, scale float64) Value {
		s, ok := p.values[tag]
		if !ok {
			return Value{}
		}
		v, ok := instant(s)
		if !ok {
			return Value{}
		}
		return Value{v * scale, true}
	}
	for i, ph := range []string{"a", "b", "c"} {
		m.Voltage[i] = val("u"+ph, 1)
		m.Current[i] = val("i"+ph, 1)
		m.Power[i] = val("p"+ph, 1000)
		m.Reactive[i] = val("q"+ph, 1000)
		m.Apparent[i] = val("s"+ph, 1000)
		m.PF[i] = val("pf"+ph, 1)
		m.Temp[i] = val("t"+ph, 1)
	}
	m.Power[3] = val("zyggl", 1000)
	m.Reactive[3] = val("zwggl", 1000)
	m.Apparent[3] = val("zszgl", 1000)
	m.PF[3] = val("zglys", 1)
	m.Temp[3] = val("tn", 1)
	m.Frequency = val("f", 1)
	m.Residual = val("ig", 1000) // the manual gives ig in A; meter.ResidualCurrent is mA
	return m
}

// energyTagSet names a topic's counters: import, export, reactive import
// and export, then the rates sharp, peak, flat, valley.
type energyTagSet [8]string

var (
	enyNowTags  = energyTagSet{"zygsz", "fygsz", "zwgsz", "fwgsz", "zyjsz", "zyfsz", "zypsz", "zyvsz"}
	dayDataTags = energyTagSet{"zygdd", "fygdd", "zwgdd", "fwgdd", "zyjsz", "zyfsz", "zypsz", "zyvsz"}
)

func decodeEnergy(h Header, p *Packet, tags energyTagSet) *Energy {
	m := &Energy{Header: h, ZeroFrame: p.ZeroFrame()}
	dst := [8]*Counter{&m.Import, &m.Export, &m.ReactiveImport, &m.ReactiveExport, &m.Rates[0], &m.Rates[1], &m.Rates[2], &m.Rates[3]}
	for i, tag := range tags {
		s, ok := p.values[tag]
		if !ok {
			continue
		}
		wh, err := counterWh(s)
		if err != nil {
			m.Bad = append(m.Bad, tag)
			continue
		}
		*dst[i] = Counter{wh, true}
	}
	return m
}

// decodeSignal reads "DDDDDDDD@OOOOOOOO": each side a hexadecimal number
// whose bit n-1 is input or output n — the manual's "00000003@00000003"
// is DI1, DI2, DO1 and DO2 closed.
func decodeSignal(h Header, p *Packet) (*Signal, error) {
	v, ok := p.values["value"]
	if !ok {
		return nil, fmt.Errorf("%w: %s from %s has no value", ErrValue, p.Topic, p.ID)
	}
	di, do, found := strings.Cut(v, "@")
	a, errA := strconv.ParseUint(di, 16, 32)
	b, errB := strconv.ParseUint(do, 16, 32)
	if !found || errA != nil || errB != nil || strings.ContainsAny(v, "+-_xX") {
		return nil, fmt.Errorf("%w: %s value %q is not DDDDDDDD@OOOOOOOO", ErrValue, p.Topic, v)
	}
	return &Signal{Header: h, DI: uint32(a), DO: uint32(b)}, nil
}

func decodeReply(h Header, p *Packet) (Reply, error) {
	r := Reply{Header: h, OprID: p.values["oprid"], Code: p.values["code"], Msg: p.values["msg"]}
	if r.OprID == "" {
		return Reply{}, fmt.Errorf("%w: %s from %s has no oprid", ErrValue, p.Topic, p.ID)
	}
	return r, nil
}

func decodeControlReply(h Header, p *Packet) (*ControlReply, error) {
	r, err := decodeReply(h, p)
	if err != nil {
		return nil, err
	}
	c := &ControlReply{Reply: r}
	for tag, v := range p.values {
		n, err := strconv.Atoi(strings.TrimPrefix(tag, "do"))
		if !strings.HasPrefix(tag, "do") || err != nil || n < 1 || n > 32 || tag != "do"+strconv.Itoa(n) {
			continue
		}
		if c.Output != 0 {
			return nil, fmt.Errorf("%w: %s from %s names two outputs", ErrValue, p.Topic, p.ID)
		}
		c.Output, c.Closed = n, v == "1"
	}
	if c.Output == 0 {
		return nil, fmt.Errorf("%w: %s from %s names no output (do1..do32)", ErrValue, p.Topic, p.ID)
	}
	return c, nil
}
