package alarm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC)

func compile(t *testing.T, spec Spec, meters ...MeterInfo) Rules {
	t.Helper()
	if len(meters) == 0 {
		meters = []MeterInfo{{ID: "M-1", Category: "restaurant", RatedCurrent: 60}}
	}
	r, ps := Compile(spec, meters, []string{"restaurant", "retail"})
	if ps != nil {
		t.Fatalf("Compile: %v", ps)
	}
	return r
}

// kinds writes changes as "overload+ overload-" (raised, cleared).
func kinds(cs []Change) string {
	var out []string
	for _, c := range cs {
		sign := "-"
		if c.Raised {
			sign = "+"
		}
		out = append(out, c.Alarm+sign)
	}
	return strings.Join(out, " ")
}

func TestCompile_ProblemsAtTheirKeys(t *testing.T) {
	bad := -1.0
	big := 2.0
	sev := "loud"
	hold := -time.Second
	_, ps := Compile(Spec{
		Defaults:   RuleSet{Overload: &OverloadRule{Factor: f(1.0), ClearFactor: &big}},
		Categories: map[string]RuleSet{"cinema": {}, "restaurant": {Appliance: &ApplianceRule{StepKW: &bad}}},
		Meters:     map[string]RuleSet{"M-9": {}, "M-1": {Voltage: &VoltageRule{Common: Common{Severity: &sev, For: &hold}}}},
	}, []MeterInfo{{ID: "M-1", RatedCurrent: 60}}, []string{"restaurant"})
	var got []string
	for _, p := range ps {
		got = append(got, p.Field)
	}
	// The clear factor is reported once, where it is set (defaults), not
	// again at the category and meter that inherit it.
	want := "categories.cinema categories.restaurant.appliance.step_kw meters.M-1.voltage.for meters.M-1.voltage.severity meters.M-9 defaults.overload.clear_factor"
	if strings.Join(got, " ") != want {
		t.Errorf("problems at %v; want %s\n%v", got, want, ps)
	}
}

// Every level must let its alarms clear: the example's old restaurant
// line (factor 0.9 over the built-in clear factor 0.9) raised and cleared
// at 54 A; a hysteresis past the level, or a phase-loss clear above the
// low voltage limit, never cleared.
func TestCompile_EveryAlarmCanClear(t *testing.T) {
	hyst := 80.0
	_, ps := Compile(Spec{
		Categories: map[string]RuleSet{"restaurant": {Overload: &OverloadRule{Factor: f(0.9)}}},
		Meters: map[string]RuleSet{"M-1": {Temperature: &LevelRule{Above: f(60), Hysteresis: &hyst}, PhaseLoss: &PhaseLossRule{BelowPct: f(85)},
			PowerFactor: &PowerFactorRule{Below: f(0.99)}, Voltage: &VoltageRule{Hysteresis: f(20)}}},
	}, []MeterInfo{{ID: "M-1", Category: "restaurant", RatedCurrent: 60}}, []string{"restaurant"})
	var got []string
	for _, p := range ps {
		got = append(got, p.Field)
	}
	want := "categories.restaurant.overload.clear_factor meters.M-1.phase_loss.below_pct meters.M-1.power_factor.hysteresis meters.M-1.temperature.hysteresis meters.M-1.voltage.hysteresis"
	if strings.Join(got, " ") != want {
		t.Errorf("problems at %v; want %s\n%v", got, want, ps)
	}
	if _, ps := Compile(Spec{Categories: map[string]RuleSet{"restaurant": {Overload: &OverloadRule{Factor: f(0.9), ClearFactor: f(0.8)}}}},
		[]MeterInfo{{ID: "M-1", Category: "restaurant", RatedCurrent: 60}}, []string{"restaurant"}); ps != nil {
		t.Errorf("factor 0.9, clear 0.8: %v; want none", ps)
	}
}

// A meter's rule is the built-in one, then the defaults, then its
// category's, then its own, field by field.
func TestCompile_Overrides(t *testing.T) {
	r := compile(t, Spec{
		Defaults:   RuleSet{Overload: &OverloadRule{Factor: f(0.95)}},
		Categories: map[string]RuleSet{"restaurant": {Overload: &OverloadRule{Common: Common{For: d(10 * time.Second)}}, Appliance: &ApplianceRule{StepKW: f(2)}}},
		Meters:     map[string]RuleSet{"M-1": {Overload: &OverloadRule{ClearFactor: f(0.5)}}},
	}, MeterInfo{ID: "M-1", Category: "restaurant", RatedCurrent: 60}, MeterInfo{ID: "M-2", Category: "retail", RatedCurrent: 60})
	o := r.Of("M-1").Overload
	if *o.Factor != 0.95 || *o.For != 10*time.Second || *o.ClearFactor != 0.5 || *o.Severity != Critical {
		t.Errorf("M-1 overload = factor %v for %v clear %v %s; want 0.95 (defaults), 10s (category), 0.5 (meter), critical (built in)",
			*o.Factor, *o.For, *o.ClearFactor, *o.Severity)
	}
	if *r.Of("M-1").Appliance.StepKW != 2 || *r.Of("M-2").Appliance.StepKW != 0 {
		t.Error("the restaurant's appliance rule reached the retail meter, or not its own")
	}
	if o2 := r.Of("M-2").Overload; *o2.For != time.Minute || *o2.ClearFactor != 0.9 {
		t.Errorf("M-2 overload for %v clear %v; want the built-in 1m and 0.9", *o2.For, *o2.ClearFactor)
	}
}

// Overload: raised once the current has stayed above the limit for the
// rule's time, once however it hovers; cleared once it has stayed below
// the clear level as long.
func TestOverload_OneAlarmPerEpisode(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{}))
	at := t0
	obs := func(amps float64) string {
		at = at.Add(10 * time.Second)
		return kinds(e.Observe("M-1", at, Values{"current_a": 20, "current_b": amps, "current_c": 20}, true))
	}
	// 50 s above 60 A is not yet a minute.
	for range 5 {
		if got := obs(65); got != "" {
			t.Fatalf("raised %q before the minute", got)
		}
	}
	if got := obs(50); got != "" { // a dip starts the minute again
		t.Fatalf("got %q at 50 A", got)
	}
	var raised []Change
	for i := range 7 {
		cs := e.Observe("M-1", at.Add(time.Duration(i+1)*10*time.Second), Values{"current_b": 72.4}, true)
		raised = append(raised, cs...)
	}
	at = at.Add(70 * time.Second)
	if kinds(raised) != "overload+" || raised[0].Args["phase"] != "B" || raised[0].Args["current_a"] != "72.4" ||
		raised[0].Args["limit_a"] != "60" || raised[0].Severity != Critical || raised[0].Kind != Overload {
		t.Fatalf("after a minute above: %+v; want one critical overload on phase B at 72.4 A", raised)
	}
	// Hovering between 54 and 60 A neither raises again nor clears.
	for range 20 {
		if got := obs(57); got != "" {
			t.Fatalf("hovering: %q", got)
		}
	}
	var cleared string
	for range 7 {
		cleared += obs(40)
	}
	if cleared != "overload-" {
		t.Errorf("a minute below 54 A: %q; want the overload cleared once", cleared)
	}
}

// The built-in rules: an ordinary shop's day raises nothing.
func TestBuiltin_QuietOnOrdinaryLoad(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{}))
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 8640 { // a day at 10 s
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		w := 8000 + 4000*math.Sin(float64(i)/8640*2*math.Pi) + rng.Float64()*300
		v := Values{"power": w, "pf": 0.92 + rng.Float64()*0.05}
		for _, p := range []string{"a", "b", "c"} {
			v["voltage_"+p] = 220 + rng.Float64()*6 - 3
			v["current_"+p] = w / 3 / 220 / 0.95
		}
		if cs := e.Observe("M-1", at, v, true); len(cs) > 0 {
			t.Fatalf("%s: %v on ordinary load", at, cs)
		}
	}
}

// ordinaryDay is a restaurant's day at 10 s polling: load drifting with
// the hour and noise of a few hundred watts, with appliances switched on
// (and off again minutes later) at the steps' indexes.
func ordinaryDay(rng *rand.Rand, steps map[int]float64) []float64 {
	var out []float64
	on := 0.0
	off := map[int]float64{}
	for i := range 8640 {
		if kw, ok := steps[i]; ok {
			on += kw * 1000
			off[i+30+rng.IntN(60)] = kw * 1000 // off 5–15 min later
		}
		if w, ok := off[i]; ok {
			on -= w
		}
		hour := float64(i) / 360
		base := 3000 + 5000*math.Max(0, math.Sin((hour-9)/12*math.Pi)) // open 9:00–21:00
		out = append(out, base+on+rng.Float64()*600-300)
	}
	return out
}

// Appliance: every step of 3 kW or more at 10 s polling is found, at its
// reading, once; a simulated day of ordinary load raises nothing else.
func TestAppliance_StepsFoundNoFalseAlarm(t *testing.T) {
	spec := Spec{Categories: map[string]RuleSet{"restaurant": {Appliance: &ApplianceRule{StepKW: f(2.5)}}}}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		steps := map[int]float64{}
		for range 6 {
			steps[400+rng.IntN(7800)] = 3 + rng.Float64()*5 // an induction cooker, a heater: 3–8 kW
		}
		e := NewEvaluator(compile(t, spec))
		day := ordinaryDay(rng, steps)
		found := map[int]bool{}
		for i, w := range day {
			for _, c := range e.Observe("M-1", t0.Add(time.Duration(i)*10*time.Second), Values{"power": w}, true) {
				if !c.Raised {
					continue
				}
				if _, ok := steps[i]; !ok {
					t.Errorf("seed %d: appliance raised at reading %d, where nothing was switched on (%v)", seed, i, c.Args)
				}
				found[i] = true
			}
		}
		for i := range steps {
			// Two steps a few minutes apart: the second is found only if the
			// first was over; both are in the same episode otherwise.
			if !found[i] && !overlaps(steps, i) {
				t.Errorf("seed %d: the %.1f kW step at reading %d was not found", seed, steps[i], i)
			}
		}
	}
}

// overlaps reports whether another step came within 15 minutes before
// step i (its appliance may still be on: one episode).
func overlaps(steps map[int]float64, i int) bool {
	for j := range steps {
		if j < i && i-j <= 90 {
			return true
		}
	}
	return false
}

// A step across a gap in the readings (a meter back from offline) is no
// appliance switched on.
func TestAppliance_NoStepAcrossAGap(t *testing.T) {
	spec := Spec{Defaults: RuleSet{Appliance: &ApplianceRule{StepKW: f(2)}}}
	e := NewEvaluator(compile(t, spec))
	e.Observe("M-1", t0, Values{"power": 1000}, true)
	if cs := e.Observe("M-1", t0.Add(5*time.Minute), Values{"power": 9000}, true); len(cs) != 0 {
		t.Errorf("a step across 5 minutes: %v; want none", cs)
	}
	if cs := e.Observe("M-1", t0.Add(5*time.Minute+10*time.Second), Values{"power": 12000}, true); kinds(cs) != "appliance+" {
		t.Errorf("a 3 kW step in 10 s: %v; want an appliance", cs)
	}
	if cs := e.Observe("M-1", t0.Add(5*time.Minute+20*time.Second), Values{"power": 11000}, true); len(cs) != 0 {
		t.Errorf("1 kW down of a 3 kW step: %v; want the alarm still on", cs)
	}
	if cs := e.Observe("M-1", t0.Add(5*time.Minute+30*time.Second), Values{"power": 10000}, true); kinds(cs) != "appliance-" {
		t.Errorf("back to the level before: %v; want it cleared", cs)
	}
}

// A lost phase is phase_loss, not a low voltage; a sagging phase is a
// voltage alarm.
func TestVoltage_PhaseLossAndRange(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{}))
	var got []string
	at := t0
	run := func(n int, va, vb, vc float64) {
		for range n {
			at = at.Add(10 * time.Second)
			got = append(got, kinds(e.Observe("M-1", at, Values{"voltage_a": va, "voltage_b": vb, "voltage_c": vc}, true)))
		}
	}
	run(3, 220, 221, 3) // phase C gone: after 10 s
	if s := strings.Join(got, ""); s != "phase_loss+" {
		t.Errorf("phase C lost: %q; want phase_loss alone", s)
	}
	got = nil
	run(7, 220, 221, 220) // back: after 10 s; nothing else
	if s := strings.Join(got, ""); s != "phase_loss-" {
		t.Errorf("phase C back: %q; want phase_loss cleared", s)
	}
	got = nil
	run(8, 220, 190, 220) // B sags below 198 V for a minute
	if s := strings.Join(got, ""); s != "voltage+" {
		t.Errorf("B at 190 V: %q; want a voltage alarm", s)
	}
	got = nil
	run(8, 220, 199, 220) // inside, but within the hysteresis: stays
	run(8, 220, 205, 220)
	if s := strings.Join(got, ""); s != "voltage-" {
		t.Errorf("B back: %q; want one clear, after it left the hysteresis band", s)
	}
}

// Power factor under load only; a level alarm for leakage current.
func TestPowerFactorAndResidual(t *testing.T) {
	spec := Spec{Defaults: RuleSet{PowerFactor: &PowerFactorRule{Common: Common{For: d(time.Minute)}}}}
	e := NewEvaluator(compile(t, spec))
	var s string
	for i := range 10 { // idle at PF 0.3: nothing
		s += kinds(e.Observe("M-1", t0.Add(time.Duration(i)*10*time.Second), Values{"pf": 0.3, "power": 200}, true))
	}
	for i := 10; i < 20; i++ {
		s += kinds(e.Observe("M-1", t0.Add(time.Duration(i)*10*time.Second), Values{"pf": -0.7, "power": 5000}, true))
	}
	if s != "low_power_factor+" {
		t.Errorf("PF 0.7 under 5 kW for a minute: %q; want one alarm", s)
	}
	s = ""
	for i := range 3 {
		s += kinds(e.Observe("M-1", t0.Add(time.Duration(i+20)*10*time.Second), Values{"residual_current": 420}, true))
	}
	// The rule waits 10 s: raised at the second reading.
	if s != "residual_current+" {
		t.Errorf("420 mA of leakage: %q; want a residual_current alarm", s)
	}
}

// After a restart the store's open alarm is resumed: the first readings
// that show the condition over clear it.
func TestResume_ClearsAnAlarmOpenBeforeARestart(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{}))
	e.Resume("M-1", Overload, nil)
	var s string
	for i := range 8 {
		s += kinds(e.Observe("M-1", t0.Add(time.Duration(i)*10*time.Second), Values{"current_a": 10}, true))
	}
	if s != "overload-" {
		t.Errorf("after a restart at 10 A: %q; want the open overload cleared", s)
	}
	if cs := e.Observe("M-9", t0, Values{"current_a": 999}, true); cs != nil {
		t.Errorf("an unknown meter: %v; want nothing", cs)
	}
}

// Fluctuation: a load swinging by kilowatts every reading over the window.
func TestFluctuation(t *testing.T) {
	spec := Spec{Defaults: RuleSet{Fluctuation: &FluctuationRule{StddevKW: f(2), Window: d(time.Minute)}}}
	e := NewEvaluator(compile(t, spec))
	var s string
	for i := range 30 {
		w := 5000.0
		if i >= 10 && i < 20 && i%2 == 0 {
			w = 11000
		}
		s += kinds(e.Observe("M-1", t0.Add(time.Duration(i)*10*time.Second), Values{"power": w}, true))
	}
	if s != "fluctuation+fluctuation-" {
		t.Errorf("a load swinging by 6 kW for 100 s: %q; want raised then cleared", s)
	}
}

// Observations are pending until Commit; Discard (a cycle whose
// transaction failed) leaves the episode as it was, so the next readings
// raise the alarm the database never kept.
func TestEvaluator_DiscardKeepsTheCommittedEpisodes(t *testing.T) {
	spec := Spec{Defaults: RuleSet{Overload: &OverloadRule{Common: Common{For: d(0)}}}}
	e := NewEvaluator(compile(t, spec))
	if got := kinds(e.Observe("M-1", t0, Values{"current_a": 80}, true)); got != "overload+" {
		t.Fatalf("80 A: %q", got)
	}
	e.Discard()
	if got := kinds(e.Observe("M-1", t0.Add(time.Second), Values{"current_a": 80}, true)); got != "overload+" {
		t.Fatalf("after a discarded raise: %q; want it raised again", got)
	}
	e.Commit()
	if got := kinds(e.Observe("M-1", t0.Add(2*time.Second), Values{"current_a": 80}, true)); got != "" {
		t.Fatalf("after a committed raise: %q; want nothing more", got)
	}
}

// Every kind has its own episode slot.
func TestKindIndex(t *testing.T) {
	if len(Kinds()) != numKinds {
		t.Fatalf("%d kinds; numKinds is %d", len(Kinds()), numKinds)
	}
	for i, k := range Kinds() {
		if kindIndex(k) != i {
			t.Errorf("kindIndex(%s) = %d; want %d", k, kindIndex(k), i)
		}
	}
}

// Two readings far apart hold no condition between them: the hold time
// starts again after a gap.
func TestGap_RestartsTheHold(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{}))
	var s string
	s += kinds(e.Observe("M-1", t0, Values{"current_a": 90}, true))
	s += kinds(e.Observe("M-1", t0.Add(2*time.Hour), Values{"current_a": 90}, true))
	if s != "" {
		t.Errorf("90 A read twice two hours apart: %q; want no overload yet", s)
	}
	for i := 1; i <= 6; i++ {
		s += kinds(e.Observe("M-1", t0.Add(2*time.Hour+time.Duration(i)*10*time.Second), Values{"current_a": 90}, true))
	}
	if s != "overload+" {
		t.Errorf("then a minute of readings at 90 A: %q; want the overload", s)
	}
	if cs := e.Observe("M-1", t0.Add(time.Hour), Values{"current_a": 10}, true); cs != nil {
		t.Errorf("a reading older than one judged: %v; want it ignored", cs)
	}
}

// Power restored after a cut-off is no appliance switched on; nor is the
// load read while the relay is open.
func TestAppliance_NotOnRestore(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{Defaults: RuleSet{Appliance: &ApplianceRule{StepKW: f(2)}}}))
	var s string
	s += kinds(e.Observe("M-1", t0, Values{"power": 6000}, true))
	s += kinds(e.Observe("M-1", t0.Add(10*time.Second), Values{"power": 0}, false)) // cut off
	s += kinds(e.Observe("M-1", t0.Add(20*time.Second), Values{"power": 6000}, true))
	if s != "" {
		t.Errorf("cut off and restored: %q; want no appliance", s)
	}
	if s := kinds(e.Observe("M-1", t0.Add(30*time.Second), Values{"power": 9500}, true)); s != "appliance+" {
		t.Errorf("then a 3.5 kW step: %q; want an appliance", s)
	}
}

// An appliance alarm resumed after a restart clears when the power falls
// back to the level before its step, as its stored facts say.
func TestResume_ApplianceClearsAtItsLevel(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{Defaults: RuleSet{Appliance: &ApplianceRule{StepKW: f(2)}}}))
	e.Resume("M-1", Appliance, map[string]string{"from_w": "1000", "step_kw": "3", "to_w": "4000"})
	if s := kinds(e.Observe("M-1", t0, Values{"power": 3800}, true)); s != "" {
		t.Errorf("still 3.8 kW: %q; want the alarm on", s)
	}
	if s := kinds(e.Observe("M-1", t0.Add(10*time.Second), Values{"power": 1200}, true)); s != "appliance-" {
		t.Errorf("back to 1.2 kW: %q; want it cleared", s)
	}
}

// Watched says which rules judge a meter: an alarm of a rule turned off
// is cleared at start by the pipeline, since no reading would.
func TestWatched(t *testing.T) {
	e := NewEvaluator(compile(t, Spec{Meters: map[string]RuleSet{"M-1": {Overload: &OverloadRule{Factor: f(0)}}}},
		MeterInfo{ID: "M-1", RatedCurrent: 60}, MeterInfo{ID: "M-2", RatedCurrent: 60}, MeterInfo{ID: "M-3"}))
	for _, c := range []struct {
		meter, kind string
		want        bool
	}{{"M-1", Overload, false}, {"M-2", Overload, true}, {"M-3", Overload, false}, {"M-9", Voltage, false},
		{"M-2", Appliance, false}, {"M-2", Voltage, true}, {"M-2", PhaseLoss, true}, {"M-2", Overtemperature, true}} {
		if got := e.Watched(c.meter, c.kind); got != c.want {
			t.Errorf("Watched(%s, %s) = %v; want %v", c.meter, c.kind, got, c.want)
		}
	}
}

// One step to a new level is no fluctuation (the appliance rule's); a
// three-phase meter on a single-phase supply, with phase loss off, raises
// no voltage alarm for its dead phases.
func TestFluctuationStepAndSinglePhase(t *testing.T) {
	spec := Spec{Defaults: RuleSet{Fluctuation: &FluctuationRule{StddevKW: f(2), Window: d(time.Minute)}, PhaseLoss: &PhaseLossRule{BelowPct: f(0)}}}
	e := NewEvaluator(compile(t, spec))
	var s string
	for i := range 30 {
		w := 2000.0
		if i >= 10 {
			w = 8000
		}
		s += kinds(e.Observe("M-1", t0.Add(time.Duration(i)*10*time.Second),
			Values{"power": w, "voltage_a": 221, "voltage_b": 0.4, "voltage_c": 0.3}, true))
	}
	if s != "" {
		t.Errorf("a 6 kW step and a single-phase supply: %q; want nothing", s)
	}
}
