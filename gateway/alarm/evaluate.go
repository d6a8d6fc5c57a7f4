package alarm

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The alarms the rules raise, by their event kind; each clears with the
// kind followed by "_cleared".
const (
	Overload        = "overload"
	Appliance       = "appliance"
	Fluctuation     = "fluctuation"
	Voltage         = "voltage"
	PhaseLoss       = "phase_loss"
	LowPowerFactor  = "low_power_factor"
	ResidualCurrent = "residual_current"
	Overtemperature = "overtemperature"
)

// Kinds are the alarm kinds the rules raise.
func Kinds() []string {
	return []string{Overload, Appliance, Fluctuation, Voltage, PhaseLoss, LowPowerFactor, ResidualCurrent, Overtemperature}
}

// ClearedKind is the event kind that clears an alarm of kind.
func ClearedKind(kind string) string { return kind + "_cleared" }

// Change is an alarm raised or cleared by a reading.
type Change struct {
	Kind     string // the event's kind: an alarm kind, or one with "_cleared"
	Alarm    string // the alarm kind
	Raised   bool
	Severity string // of a raised alarm
	Text     string // a sentence in English, for the log and old clients
	// Args are the facts of the change, exact decimal strings by name
	// (meter, phase, value, limit, …), for the sentences in each language.
	Args map[string]string
}

// Values are a reading's instantaneous values by quantity name, in the
// units a Reading holds them (V, A, W, power factor; residual_current in
// mA, temp_a … temp_n in °C).
type Values map[string]float64

// Evaluator keeps each meter's episodes; it is not safe for concurrent use
// (the pipeline calls it under its lock).
//
// What Observe changes is pending until Commit: the pipeline stores a
// bus cycle's alarms in one transaction with its readings, and when that
// transaction fails, Discard leaves the episodes as the database has
// them, so that the next cycle raises (or clears) the alarm again.
type Evaluator struct {
	rules   Rules
	meters  map[string]*meterState
	pending map[string]*meterState
}

// NewEvaluator watches meters by rules.
func NewEvaluator(rules Rules) *Evaluator {
	return &Evaluator{rules: rules, meters: make(map[string]*meterState), pending: make(map[string]*meterState)}
}

// Commit keeps what the observations since the last Commit or Discard
// changed.
func (e *Evaluator) Commit() {
	for id, st := range e.pending {
		e.meters[id] = st
	}
	clear(e.pending)
}

// Discard forgets what the observations since the last Commit changed.
func (e *Evaluator) Discard() { clear(e.pending) }

// meterState is one meter's episodes and what the rules that look back
// remember.
type meterState struct {
	episodes [numKinds]episode // by alarm kind (kindIndex)
	lastObs  time.Time         // the last reading judged
	// The last reading's power and time, for an appliance's step.
	lastW  float64
	lastAt time.Time
	hasW   bool
	// stepBase is the power before the step that raised an appliance
	// alarm: it clears when the power falls back near it.
	stepBase, stepKW float64
	// power over the fluctuation window, oldest first.
	window []sample
}

type sample struct {
	at time.Time
	w  float64
}

// state returns meter id's pending state, a copy of its committed one.
func (e *Evaluator) state(id string) *meterState {
	if st, ok := e.pending[id]; ok {
		return st
	}
	st := &meterState{}
	if old, ok := e.meters[id]; ok {
		// The episodes are an array: copied. The window is shared: the
		// pending state only appends to it and reslices its front, which
		// leaves the committed state's elements as they are.
		*st = *old
	}
	e.pending[id] = st
	return st
}

func (st *meterState) episode(kind string) *episode { return &st.episodes[kindIndex(kind)] }

// numKinds is how many alarm kinds the rules raise.
const numKinds = 8

// kindIndex is kind's place in Kinds.
func kindIndex(kind string) int {
	switch kind {
	case Overload:
		return 0
	case Appliance:
		return 1
	case Fluctuation:
		return 2
	case Voltage:
		return 3
	case PhaseLoss:
		return 4
	case LowPowerFactor:
		return 5
	case ResidualCurrent:
		return 6
	}
	return 7 // Overtemperature
}

// Resume marks meter's alarm of kind as open, as the store has it after a
// restart, with the facts it was raised with (its event's Args): the next
// readings clear it when its condition is over, instead of leaving it open
// for ever. An appliance alarm takes back the level before its step.
func (e *Evaluator) Resume(meter, kind string, args map[string]string) {
	st := e.state(meter)
	st.episode(kind).active = true
	if kind == Appliance {
		from, err1 := strconv.ParseFloat(args["from_w"], 64)
		step, err2 := strconv.ParseFloat(args["step_kw"], 64)
		if err1 == nil && err2 == nil {
			st.stepBase, st.stepKW = from, step
		}
	}
	e.Commit()
}

// Watched reports whether meter's alarms of kind are judged: the meter is
// configured and the rule is on for it. An alarm left open by a rule
// turned off (or a meter removed) is cleared by the pipeline at start,
// since no reading would.
func (e *Evaluator) Watched(meter, kind string) bool {
	set, ok := e.rules.byMeter[meter]
	if !ok {
		return false
	}
	switch kind {
	case Overload:
		return set.Overload != nil && *set.Overload.Factor > 0 && e.rules.rated[meter] > 0
	case Appliance:
		return set.Appliance != nil && *set.Appliance.StepKW > 0
	case Fluctuation:
		return set.Fluctuation != nil && *set.Fluctuation.StddevKW > 0
	case Voltage:
		return set.Voltage != nil && *set.Voltage.Nominal > 0
	case PhaseLoss:
		return set.Voltage != nil && *set.Voltage.Nominal > 0 && set.PhaseLoss != nil && *set.PhaseLoss.BelowPct > 0
	case LowPowerFactor:
		return set.PowerFactor != nil && *set.PowerFactor.Below > 0
	case ResidualCurrent:
		return set.ResidualCurrent != nil && *set.ResidualCurrent.Above > 0
	case Overtemperature:
		return set.Temperature != nil && *set.Temperature.Above > 0
	}
	return false
}

// GapReset is how long a meter may go unread before its hold times start
// again: two readings an hour apart do not make an hour of overload.
const GapReset = 10 * time.Minute

// episode is one rule's state on one meter: an alarm is raised when the
// condition has held for the rule's time, and cleared when the way back
// has held as long.
type episode struct {
	active    bool
	badSince  time.Time // the condition holds since; zero: it does not
	goodSince time.Time // the way back holds since (while active)
}

// step advances the episode by one reading: bad is the condition, good the
// way back (bad and good may both be false: between the two thresholds the
// episode stays as it is). It returns +1 when the alarm is raised, −1 when
// it clears.
func (ep *episode) step(at time.Time, bad, good bool, hold time.Duration) int {
	if !ep.active {
		if !bad {
			ep.badSince = time.Time{}
			return 0
		}
		if ep.badSince.IsZero() || at.Before(ep.badSince) {
			ep.badSince = at
		}
		if at.Sub(ep.badSince) >= hold {
			ep.active, ep.badSince, ep.goodSince = true, time.Time{}, time.Time{}
			return 1
		}
		return 0
	}
	if !good {
		ep.goodSince = time.Time{}
		return 0
	}
	if ep.goodSince.IsZero() || at.Before(ep.goodSince) {
		ep.goodSince = at
	}
	if at.Sub(ep.goodSince) >= hold {
		ep.active, ep.goodSince = false, time.Time{}
		return -1
	}
	return 0
}

// num writes a value for Args: as few decimals as it needs, at most 3.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// Observe judges meter's reading of values at at and returns the alarms it
// raises and clears, in the order of Kinds. powered is false while the
// meter's relay is not closed: the load it reads then is no appliance's,
// and the step back to the tenant's load when power is restored is none
// either.
func (e *Evaluator) Observe(meter string, at time.Time, v Values, powered bool) []Change {
	set, ok := e.rules.byMeter[meter]
	if !ok {
		return nil
	}
	st := e.state(meter)
	if !st.lastObs.IsZero() && !at.After(st.lastObs) {
		return nil // a reading older than one judged: its values are past
	}
	if !st.lastObs.IsZero() && at.Sub(st.lastObs) > GapReset {
		for i := range st.episodes {
			st.episodes[i].badSince, st.episodes[i].goodSince = time.Time{}, time.Time{}
		}
		st.hasW, st.window = false, nil
	}
	st.lastObs = at
	if !powered {
		st.hasW, st.window = false, nil
	}
	var out []Change
	emit := func(kind string, dir int, severity *string, text string, args map[string]string) {
		if dir == 0 {
			return
		}
		args["meter"] = meter
		c := Change{Kind: kind, Alarm: kind, Raised: dir > 0, Text: text, Args: args}
		if dir > 0 {
			c.Severity = *severity
		} else {
			c.Kind = ClearedKind(kind)
		}
		out = append(out, c)
	}
	e.overload(meter, st, set.Overload, at, v, emit)
	if powered {
		e.appliance(meter, st, set.Appliance, at, v, emit)
		e.fluctuation(meter, st, set.Fluctuation, at, v, emit)
	}
	e.voltage(meter, st, set.Voltage, set.PhaseLoss, at, v, emit)
	e.powerFactor(meter, st, set.PowerFactor, at, v, emit)
	e.level(meter, st, ResidualCurrent, set.ResidualCurrent, at, v, []string{"residual_current"}, "mA", emit)
	e.level(meter, st, Overtemperature, set.Temperature, at, v, []string{"temp_a", "temp_b", "temp_c", "temp_n"}, "°C", emit)
	return out
}

type emitFunc func(kind string, dir int, severity *string, text string, args map[string]string)

// highest returns the highest of v's quantities named, its name, and
// whether any was there.
func highest(v Values, names ...string) (float64, string, bool) {
	best, which, ok := 0.0, "", false
	for _, n := range names {
		if x, has := v[n]; has && (!ok || x > best) {
			best, which, ok = x, n, true
		}
	}
	return best, which, ok
}

func (e *Evaluator) overload(meter string, st *meterState, r *OverloadRule, at time.Time, v Values, emit emitFunc) {
	rated := e.rules.rated[meter]
	if r == nil || *r.Factor == 0 || rated <= 0 {
		return
	}
	amps, phase, ok := highest(v, "current_a", "current_b", "current_c")
	if !ok {
		return
	}
	limit, back := rated**r.Factor, rated**r.ClearFactor
	ep := st.episode(Overload)
	dir := ep.step(at, amps > limit, amps < back, *r.For)
	if dir == 0 {
		return
	}
	args := map[string]string{"phase": phaseOf(phase), "current_a": num(amps), "limit_a": num(limit), "rated_a": num(rated)}
	text := fmt.Sprintf("overload on %s: %s A on %s, above %s A (rated %s A) for %s", meter, num(amps), phase, num(limit), num(rated), *r.For)
	if dir < 0 {
		text = fmt.Sprintf("overload on %s over: %s A, below %s A", meter, num(amps), num(back))
	}
	emit(Overload, dir, r.Severity, text, args)
}

func (e *Evaluator) appliance(meter string, st *meterState, r *ApplianceRule, at time.Time, v Values, emit emitFunc) {
	w, ok := v["power"]
	if !ok {
		return
	}
	defer func() { st.lastW, st.lastAt, st.hasW = w, at, true }()
	if r == nil || *r.StepKW == 0 {
		return
	}
	ep := st.episode(Appliance)
	step := *r.StepKW * 1000
	if !ep.active {
		if !st.hasW || at.Sub(st.lastAt) > *r.MaxGap || !at.After(st.lastAt) || w-st.lastW < step {
			return
		}
		ep.active = true
		st.stepBase, st.stepKW = st.lastW, (w-st.lastW)/1000
		emit(Appliance, 1, r.Severity, fmt.Sprintf("a high-power appliance on %s: active power stepped up by %s kW, from %s W to %s W",
			meter, num(st.stepKW), num(st.lastW), num(w)),
			map[string]string{"step_kw": num(st.stepKW), "from_w": num(st.lastW), "to_w": num(w), "limit_kw": num(*r.StepKW)})
		return
	}
	// Over when the power is back near where it was before the step.
	if w <= st.stepBase+st.stepKW*1000/2 {
		ep.active = false
		emit(Appliance, -1, r.Severity, fmt.Sprintf("the appliance on %s is off: active power %s W", meter, num(w)),
			map[string]string{"power_w": num(w), "step_kw": num(st.stepKW)})
	}
}

func (e *Evaluator) fluctuation(meter string, st *meterState, r *FluctuationRule, at time.Time, v Values, emit emitFunc) {
	w, ok := v["power"]
	if r == nil || *r.StddevKW == 0 || !ok {
		return
	}
	win := *r.Window
	st.window = append(st.window, sample{at, w})
	for len(st.window) > 0 && at.Sub(st.window[0].at) > win {
		st.window = st.window[1:]
	}
	// Judged once the samples span most of the window: a meter just back
	// online has too few to say.
	n := len(st.window)
	if n < 5 || at.Sub(st.window[0].at) < win*8/10 {
		return
	}
	// The spread of successive differences (von Neumann's estimator): a
	// load swinging back and forth, not one that stepped once to a new
	// level (the appliance rule's) or drifts with the hour.
	var sq float64
	for i := 1; i < n; i++ {
		d := st.window[i].w - st.window[i-1].w
		sq += d * d
	}
	sd := math.Sqrt(sq/float64(n-1)/2) / 1000
	limit := *r.StddevKW
	dir := st.episode(Fluctuation).step(at, sd > limit, sd < limit*0.8, *r.For)
	if dir == 0 {
		return
	}
	args := map[string]string{"stddev_kw": num(sd), "limit_kw": num(limit), "window_s": num(math.Round(win.Seconds()))}
	text := fmt.Sprintf("power on %s fluctuates: a spread of %s kW between readings over %s, above %s kW", meter, num(sd), win, num(limit))
	if dir < 0 {
		text = fmt.Sprintf("power on %s steady again: a spread of %s kW between readings over %s", meter, num(sd), win)
	}
	emit(Fluctuation, dir, r.Severity, text, args)
}

func (e *Evaluator) voltage(meter string, st *meterState, r *VoltageRule, pl *PhaseLossRule, at time.Time, v Values, emit emitFunc) {
	if r == nil || *r.Nominal == 0 {
		return
	}
	nominal := *r.Nominal
	phases := []string{"voltage_a", "voltage_b", "voltage_c"}
	var present []string
	live := 0.0
	for _, p := range phases {
		if x, ok := v[p]; ok {
			present = append(present, p)
			live = math.Max(live, x)
		}
	}
	if len(present) == 0 || live < nominal*deadPhase {
		return // no supply at all: nothing to judge
	}
	// Phase loss first: a lost phase is no low voltage.
	lostBelow := -1.0
	if pl != nil && *pl.BelowPct > 0 && len(present) > 1 {
		lostBelow = nominal * *pl.BelowPct / 100
		lowest, which, _ := lowestOf(v, present)
		backAbove := nominal * (*pl.BelowPct + 10) / 100
		if dir := st.episode(PhaseLoss).step(at, lowest < lostBelow && live > nominal*0.8, lowest >= backAbove, *pl.For); dir != 0 {
			args := map[string]string{"phase": phaseOf(which), "voltage_v": num(lowest), "limit_v": num(lostBelow)}
			text := fmt.Sprintf("phase loss on %s: %s at %s V, below %s V while another phase is live", meter, which, num(lowest), num(lostBelow))
			if dir < 0 {
				text = fmt.Sprintf("every phase of %s is back: the lowest at %s V", meter, num(lowest))
			}
			emit(PhaseLoss, dir, pl.Severity, text, args)
		}
	}
	high, low := nominal*(1+*r.HighPct/100), nominal*(1-*r.LowPct/100)
	hyst := *r.Hysteresis
	worst, which, dev := 0.0, "", 0.0
	inside := true
	for _, p := range present {
		x := v[p]
		if x < lostBelow || x < nominal*deadPhase {
			continue // a lost phase is phase_loss's; a dead one (a single-phase supply on a three-phase meter) no one's
		}
		if x > high-hyst || x < low+hyst {
			inside = false
		}
		if d := math.Max(x-high, low-x); which == "" || d > dev {
			worst, which, dev = x, p, d
		}
	}
	if which == "" {
		return
	}
	bad := worst > high || worst < low
	dir := st.episode(Voltage).step(at, bad, inside, *r.For)
	if dir == 0 {
		return
	}
	args := map[string]string{"phase": phaseOf(which), "voltage_v": num(worst), "high_v": num(high), "low_v": num(low)}
	text := fmt.Sprintf("voltage on %s out of range: %s at %s V, outside %s–%s V", meter, which, num(worst), num(low), num(high))
	if dir < 0 {
		text = fmt.Sprintf("voltage on %s back in range", meter)
	}
	emit(Voltage, dir, r.Severity, text, args)
}

// phaseOf is the phase (or terminal) a quantity's name ends with:
// "current_b" → "B".
func phaseOf(name string) string {
	if i := strings.LastIndexByte(name, '_'); i >= 0 {
		return strings.ToUpper(name[i+1:])
	}
	return name
}

// deadPhase is the share of nominal below which a phase carries no supply
// at all: the voltage rule leaves it out, whether or not phase_loss is
// watched (a three-phase meter on a single-phase supply).
const deadPhase = 0.1

func lowestOf(v Values, names []string) (float64, string, bool) {
	best, which, ok := 0.0, "", false
	for _, n := range names {
		if x, has := v[n]; has && (!ok || x < best) {
			best, which, ok = x, n, true
		}
	}
	return best, which, ok
}

func (e *Evaluator) powerFactor(meter string, st *meterState, r *PowerFactorRule, at time.Time, v Values, emit emitFunc) {
	pf, ok1 := v["pf"]
	w, ok2 := v["power"]
	if r == nil || *r.Below == 0 || !ok1 || !ok2 {
		return
	}
	pf = math.Abs(pf)                          // a meter may sign it by the load's kind
	loaded := math.Abs(w) >= *r.MinLoadKW*1000 // a reversed CT reads it negative
	dir := st.episode(LowPowerFactor).step(at, loaded && pf < *r.Below, !loaded || pf >= *r.Below+*r.Hysteresis, *r.For)
	if dir == 0 {
		return
	}
	args := map[string]string{"pf": num(pf), "limit": num(*r.Below), "power_w": num(w)}
	text := fmt.Sprintf("low power factor on %s: %s under %s W of load, below %s", meter, num(pf), num(w), num(*r.Below))
	if dir < 0 {
		text = fmt.Sprintf("power factor on %s back to %s", meter, num(pf))
	}
	emit(LowPowerFactor, dir, r.Severity, text, args)
}

func (e *Evaluator) level(meter string, st *meterState, kind string, r *LevelRule, at time.Time, v Values, names []string, unit string, emit emitFunc) {
	if r == nil || *r.Above == 0 {
		return
	}
	x, which, ok := highest(v, names...)
	if !ok {
		return
	}
	limit := *r.Above
	dir := st.episode(kind).step(at, x > limit, x < limit-*r.Hysteresis, *r.For)
	if dir == 0 {
		return
	}
	args := map[string]string{"value": num(x), "limit": num(limit)}
	if kind == Overtemperature {
		args["point"] = phaseOf(which) // the terminal: A, B, C or N
	}
	what := map[string]string{ResidualCurrent: "residual current", Overtemperature: "temperature"}[kind]
	text := fmt.Sprintf("%s on %s: %s %s (%s), above %s %s", what, meter, num(x), unit, which, num(limit), unit)
	if dir < 0 {
		text = fmt.Sprintf("%s on %s back to %s %s", what, meter, num(x), unit)
	}
	emit(kind, dir, r.Severity, text, args)
}
