package alarm

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Spec is the configuration's alarms: section.
type Spec struct {
	// Defaults apply to every meter; a field left out keeps the built-in
	// default (Builtin).
	Defaults RuleSet `yaml:"defaults"`
	// Categories override Defaults for the meters of tenants of a category
	// (restaurant, anchor, …), field by field.
	Categories map[string]RuleSet `yaml:"categories"`
	// Meters override both for one meter, field by field.
	Meters map[string]RuleSet `yaml:"meters"`
}

// RuleSet is every rule, each optional: a rule or a field left out is
// taken from the level below.
type RuleSet struct {
	Overload        *OverloadRule    `yaml:"overload"`
	Appliance       *ApplianceRule   `yaml:"appliance"`
	Fluctuation     *FluctuationRule `yaml:"fluctuation"`
	Voltage         *VoltageRule     `yaml:"voltage"`
	PhaseLoss       *PhaseLossRule   `yaml:"phase_loss"`
	PowerFactor     *PowerFactorRule `yaml:"power_factor"`
	ResidualCurrent *LevelRule       `yaml:"residual_current"`
	Temperature     *LevelRule       `yaml:"temperature"`
}

// Common are the fields every rule has.
type Common struct {
	// For is how long the condition must hold before the alarm is raised,
	// and how long the way back must hold before it clears.
	For *time.Duration `yaml:"for"`
	// Severity is critical or warning.
	Severity *string `yaml:"severity"`
}

// OverloadRule: the highest phase current above the meter's
// rated_current × Factor; it clears below rated_current × ClearFactor.
type OverloadRule struct {
	Common      `yaml:",inline"`
	Factor      *float64 `yaml:"factor"`       // 0: off
	ClearFactor *float64 `yaml:"clear_factor"` // below Factor
}

// ApplianceRule: active power stepping up by at least StepKW between two
// readings at most MaxGap apart; it clears when the power falls back below
// the level before the step plus half the step. It has no hold time: a
// step is an instant.
type ApplianceRule struct {
	Severity *string        `yaml:"severity"`
	StepKW   *float64       `yaml:"step_kw"` // 0: off
	MaxGap   *time.Duration `yaml:"max_gap"` // readings further apart are no step
}

// FluctuationRule: the standard deviation of active power over Window
// above StddevKW; it clears below 80 % of it.
type FluctuationRule struct {
	Common   `yaml:",inline"`
	Window   *time.Duration `yaml:"window"`
	StddevKW *float64       `yaml:"stddev_kw"` // 0: off
}

// VoltageRule: a phase voltage above Nominal × (1 + HighPct/100) or below
// Nominal × (1 − LowPct/100) (but not so low that the phase is lost,
// which phase_loss reports); it clears Hysteresis volts back inside.
type VoltageRule struct {
	Common     `yaml:",inline"`
	Nominal    *float64 `yaml:"nominal"`    // V, phase to neutral; 0: off
	HighPct    *float64 `yaml:"high_pct"`   // %
	LowPct     *float64 `yaml:"low_pct"`    // %
	Hysteresis *float64 `yaml:"hysteresis"` // V
}

// PhaseLossRule: a phase below BelowPct % of the voltage rule's nominal
// while another phase is above 80 % of it; it clears when every phase is
// above BelowPct + 10 %.
type PhaseLossRule struct {
	Common   `yaml:",inline"`
	BelowPct *float64 `yaml:"below_pct"` // 0: off
}

// PowerFactorRule: the total power factor below Below while active power
// is at least MinLoadKW; it clears at Below + Hysteresis.
type PowerFactorRule struct {
	Common     `yaml:",inline"`
	Below      *float64 `yaml:"below"` // 0: off
	MinLoadKW  *float64 `yaml:"min_load_kw"`
	Hysteresis *float64 `yaml:"hysteresis"`
}

// LevelRule: a value above Above; it clears Hysteresis below it.
// residual_current is in mA, temperature in °C.
type LevelRule struct {
	Common     `yaml:",inline"`
	Above      *float64 `yaml:"above"` // 0: off
	Hysteresis *float64 `yaml:"hysteresis"`
}

// Builtin is what a rule is when the configuration says nothing of it:
//
//	overload          factor 1.0, clear_factor 0.9, for 60s, critical
//	appliance         off (step_kw 0); max_gap 60s, warning
//	fluctuation       off (stddev_kw 0); window 5m, for 0s, warning
//	voltage           nominal 220 V, +7 % / −10 % (GB/T 12325), hysteresis 2 V, for 60s, warning
//	phase_loss        below 50 %, for 10s, critical
//	power_factor      below 0.8 at 1 kW and more, hysteresis 0.03, for 15m, warning
//	residual_current  above 300 mA (electrical fire monitoring, GB 14287), hysteresis 50 mA, for 10s, critical
//	temperature       above 75 °C, hysteresis 5 °C, for 30s, critical
func Builtin() RuleSet {
	return RuleSet{
		Overload:        &OverloadRule{Common: common(time.Minute, Critical), Factor: f(1.0), ClearFactor: f(0.9)},
		Appliance:       &ApplianceRule{Severity: str(Warning), StepKW: f(0), MaxGap: d(time.Minute)},
		Fluctuation:     &FluctuationRule{Common: common(0, Warning), Window: d(5 * time.Minute), StddevKW: f(0)},
		Voltage:         &VoltageRule{Common: common(time.Minute, Warning), Nominal: f(220), HighPct: f(7), LowPct: f(10), Hysteresis: f(2)},
		PhaseLoss:       &PhaseLossRule{Common: common(10*time.Second, Critical), BelowPct: f(50)},
		PowerFactor:     &PowerFactorRule{Common: common(15*time.Minute, Warning), Below: f(0.8), MinLoadKW: f(1), Hysteresis: f(0.03)},
		ResidualCurrent: &LevelRule{Common: common(10*time.Second, Critical), Above: f(300), Hysteresis: f(50)},
		Temperature:     &LevelRule{Common: common(30*time.Second, Critical), Above: f(75), Hysteresis: f(5)},
	}
}

// Severities.
const (
	Critical = "critical"
	Warning  = "warning"
)

func f(v float64) *float64             { return &v }
func str(v string) *string             { return &v }
func d(v time.Duration) *time.Duration { return &v }
func common(hold time.Duration, sev string) Common {
	return Common{For: d(hold), Severity: &sev}
}

// over returns base with every field that top sets taken from top.
func over[T any](base, top *T, merge func(b, t T) T) *T {
	switch {
	case top == nil:
		return base
	case base == nil:
		return top
	}
	out := merge(*base, *top)
	return &out
}

// pick is t when set, else b.
func pick[V any](b, t *V) *V {
	if t != nil {
		return t
	}
	return b
}

func (b Common) with(t Common) Common {
	return Common{For: pick(b.For, t.For), Severity: pick(b.Severity, t.Severity)}
}

// Over returns s with every rule and field that top sets taken from top.
func (s RuleSet) Over(top RuleSet) RuleSet {
	return RuleSet{
		Overload: over(s.Overload, top.Overload, func(b, t OverloadRule) OverloadRule {
			return OverloadRule{Common: b.Common.with(t.Common), Factor: pick(b.Factor, t.Factor), ClearFactor: pick(b.ClearFactor, t.ClearFactor)}
		}),
		Appliance: over(s.Appliance, top.Appliance, func(b, t ApplianceRule) ApplianceRule {
			return ApplianceRule{Severity: pick(b.Severity, t.Severity), StepKW: pick(b.StepKW, t.StepKW), MaxGap: pick(b.MaxGap, t.MaxGap)}
		}),
		Fluctuation: over(s.Fluctuation, top.Fluctuation, func(b, t FluctuationRule) FluctuationRule {
			return FluctuationRule{Common: b.Common.with(t.Common), Window: pick(b.Window, t.Window), StddevKW: pick(b.StddevKW, t.StddevKW)}
		}),
		Voltage: over(s.Voltage, top.Voltage, func(b, t VoltageRule) VoltageRule {
			return VoltageRule{Common: b.Common.with(t.Common), Nominal: pick(b.Nominal, t.Nominal), HighPct: pick(b.HighPct, t.HighPct),
				LowPct: pick(b.LowPct, t.LowPct), Hysteresis: pick(b.Hysteresis, t.Hysteresis)}
		}),
		PhaseLoss: over(s.PhaseLoss, top.PhaseLoss, func(b, t PhaseLossRule) PhaseLossRule {
			return PhaseLossRule{Common: b.Common.with(t.Common), BelowPct: pick(b.BelowPct, t.BelowPct)}
		}),
		PowerFactor: over(s.PowerFactor, top.PowerFactor, func(b, t PowerFactorRule) PowerFactorRule {
			return PowerFactorRule{Common: b.Common.with(t.Common), Below: pick(b.Below, t.Below), MinLoadKW: pick(b.MinLoadKW, t.MinLoadKW),
				Hysteresis: pick(b.Hysteresis, t.Hysteresis)}
		}),
		ResidualCurrent: over(s.ResidualCurrent, top.ResidualCurrent, mergeLevel),
		Temperature:     over(s.Temperature, top.Temperature, mergeLevel),
	}
}

func mergeLevel(b, t LevelRule) LevelRule {
	return LevelRule{Common: b.Common.with(t.Common), Above: pick(b.Above, t.Above), Hysteresis: pick(b.Hysteresis, t.Hysteresis)}
}

// Problem is one thing wrong with a Spec: Field is its path inside the
// alarms: section ("categories.restaurant.appliance.step_kw"), for the
// configuration to point at its line.
type Problem struct{ Field, Msg string }

func (p Problem) String() string { return p.Field + ": " + p.Msg }

type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// MeterInfo is what the rules need of a configured meter.
type MeterInfo struct {
	ID           string
	Category     string // its tenant's category; "" for a public or main meter
	RatedCurrent int    // A
}

// Rules are the rules each meter is watched by, resolved.
type Rules struct {
	byMeter map[string]RuleSet
	rated   map[string]float64
}

// Compile resolves the rules of every meter and checks them: every value
// in range, every category and meter named one that exists. It returns
// every problem found, and Rules only when there is none.
func Compile(spec Spec, meters []MeterInfo, categories []string) (Rules, []Problem) {
	var ps problems
	check(&ps, "defaults", spec.Defaults)
	for _, name := range sortedKeys(spec.Categories) {
		p := "categories." + name
		if !slices.Contains(categories, name) {
			ps.add(p, "no tenant has category %q (tenants have %v)", name, categories)
		}
		check(&ps, p, spec.Categories[name])
	}
	known := make(map[string]bool, len(meters))
	for _, m := range meters {
		known[m.ID] = true
	}
	for _, id := range sortedKeys(spec.Meters) {
		p := "meters." + id
		if !known[id] {
			ps.add(p, "no meter %q is configured", id)
		}
		check(&ps, p, spec.Meters[id])
	}
	// Each level as it resolves must let every alarm clear: a clear level
	// that the level's own values and those below it put past the raise
	// level would raise and clear at the same point (or never clear). A
	// problem is reported at the level that brings it, not again at each
	// level that inherits it.
	base := Builtin().Over(spec.Defaults)
	builtinBad := clearable(Builtin())
	levelBad := func(p string, set RuleSet, parent map[string]bool) map[string]bool {
		bad := clearable(set)
		for _, field := range sortedKeys(bad) {
			if !parent[field] {
				ps.add(p+"."+field, "%s", clearMsg(set, field))
			}
		}
		return bad
	}
	defaultsBad := levelBad("defaults", base, builtinBad)
	categoryBad := map[string]map[string]bool{}
	for _, name := range sortedKeys(spec.Categories) {
		categoryBad[name] = levelBad("categories."+name, base.Over(spec.Categories[name]), defaultsBad)
	}
	for _, m := range meters {
		o, ok := spec.Meters[m.ID]
		if !ok {
			continue
		}
		set, parent := base, defaultsBad
		if c, ok := spec.Categories[m.Category]; ok && m.Category != "" {
			set, parent = set.Over(c), categoryBad[m.Category]
		}
		levelBad("meters."+m.ID, set.Over(o), parent)
	}
	if len(ps) > 0 {
		return Rules{}, ps
	}
	r := Rules{byMeter: make(map[string]RuleSet, len(meters)), rated: make(map[string]float64, len(meters))}
	for _, m := range meters {
		set := base
		if c, ok := spec.Categories[m.Category]; ok && m.Category != "" {
			set = set.Over(c)
		}
		if o, ok := spec.Meters[m.ID]; ok {
			set = set.Over(o)
		}
		r.byMeter[m.ID] = set
		r.rated[m.ID] = float64(m.RatedCurrent)
	}
	return r, nil
}

// Of returns meter id's resolved rules.
func (r Rules) Of(id string) RuleSet { return r.byMeter[id] }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// clearable returns the fields of a resolved set whose alarm could not
// clear short of its raise level ("overload.clear_factor").
func clearable(s RuleSet) map[string]bool {
	bad := map[string]bool{}
	if r := s.Overload; r != nil && *r.Factor > 0 && !(*r.ClearFactor > 0 && *r.ClearFactor < *r.Factor) {
		bad["overload.clear_factor"] = true
	}
	if r, v := s.PhaseLoss, s.Voltage; r != nil && v != nil && *r.BelowPct > 0 && *v.Nominal > 0 && *r.BelowPct+10 >= 100-*v.LowPct {
		bad["phase_loss.below_pct"] = true
	}
	if v := s.Voltage; v != nil && *v.Nominal > 0 && *v.Hysteresis*2 >= *v.Nominal*(*v.HighPct+*v.LowPct)/100 {
		bad["voltage.hysteresis"] = true
	}
	if r := s.PowerFactor; r != nil && *r.Below > 0 && *r.Below+*r.Hysteresis > 1 {
		bad["power_factor.hysteresis"] = true
	}
	if r := s.ResidualCurrent; r != nil && *r.Above > 0 && *r.Hysteresis >= *r.Above {
		bad["residual_current.hysteresis"] = true
	}
	if r := s.Temperature; r != nil && *r.Above > 0 && *r.Hysteresis >= *r.Above {
		bad["temperature.hysteresis"] = true
	}
	return bad
}

// clearMsg says why field of s keeps its alarm from clearing.
func clearMsg(s RuleSet, field string) string {
	switch field {
	case "overload.clear_factor":
		return fmt.Sprintf("%v with factor %v: want above 0 and below factor, so that the alarm clears below where it is raised", *s.Overload.ClearFactor, *s.Overload.Factor)
	case "phase_loss.below_pct":
		return fmt.Sprintf("%v: a phase clears at %v %% of nominal, which is not above the voltage rule's low limit (%v %%); want below %v",
			*s.PhaseLoss.BelowPct, *s.PhaseLoss.BelowPct+10, 100-*s.Voltage.LowPct, 90-*s.Voltage.LowPct)
	case "voltage.hysteresis":
		v := s.Voltage
		return fmt.Sprintf("%v V: want less than half the band (%s V), so that a voltage back in range clears", *v.Hysteresis, num(*v.Nominal*(*v.HighPct+*v.LowPct)/200))
	case "power_factor.hysteresis":
		r := s.PowerFactor
		return fmt.Sprintf("%v with below %v: a power factor cannot reach %s; want at most %s", *r.Hysteresis, *r.Below, num(*r.Below+*r.Hysteresis), num(1-*r.Below))
	case "residual_current.hysteresis":
		return fmt.Sprintf("%v with above %v: want less than above, so that the alarm clears", *s.ResidualCurrent.Hysteresis, *s.ResidualCurrent.Above)
	}
	return fmt.Sprintf("%v with above %v: want less than above, so that the alarm clears", *s.Temperature.Hysteresis, *s.Temperature.Above)
}

// check reports the values of one level that are out of range.
func check(ps *problems, p string, s RuleSet) {
	nonNeg := func(field string, v *float64) {
		if v != nil && (*v < 0 || math.IsNaN(*v) || math.IsInf(*v, 0)) {
			ps.add(p+"."+field, "want 0 or more, got %v", *v)
		}
	}
	within := func(field string, v *float64, lo, hi float64) {
		if v != nil && !(*v >= lo && *v <= hi) {
			ps.add(p+"."+field, "want %v to %v, got %v", lo, hi, *v)
		}
	}
	common := func(rule string, c Common) {
		if c.For != nil && (*c.For < 0 || *c.For > 24*time.Hour) {
			ps.add(p+"."+rule+".for", "want 0s to 24h, got %s", *c.For)
		}
		if c.Severity != nil && *c.Severity != Critical && *c.Severity != Warning {
			ps.add(p+"."+rule+".severity", "want critical or warning, got %q", *c.Severity)
		}
	}
	if r := s.Overload; r != nil {
		common("overload", r.Common)
		within("overload.factor", r.Factor, 0, 10)
		within("overload.clear_factor", r.ClearFactor, 0, 10)
	}
	if r := s.Appliance; r != nil {
		common("appliance", Common{Severity: r.Severity})
		within("appliance.step_kw", r.StepKW, 0, 10000)
		if r.MaxGap != nil && (*r.MaxGap <= 0 || *r.MaxGap > time.Hour) {
			ps.add(p+".appliance.max_gap", "want more than 0s and at most 1h, got %s", *r.MaxGap)
		}
	}
	if r := s.Fluctuation; r != nil {
		common("fluctuation", r.Common)
		nonNeg("fluctuation.stddev_kw", r.StddevKW)
		if r.Window != nil && (*r.Window < time.Minute || *r.Window > 24*time.Hour) {
			ps.add(p+".fluctuation.window", "want 1m to 24h, got %s", *r.Window)
		}
	}
	if r := s.Voltage; r != nil {
		common("voltage", r.Common)
		within("voltage.nominal", r.Nominal, 0, 1000)
		within("voltage.high_pct", r.HighPct, 0, 100)
		within("voltage.low_pct", r.LowPct, 0, 100)
		nonNeg("voltage.hysteresis", r.Hysteresis)
	}
	if r := s.PhaseLoss; r != nil {
		common("phase_loss", r.Common)
		within("phase_loss.below_pct", r.BelowPct, 0, 90)
	}
	if r := s.PowerFactor; r != nil {
		common("power_factor", r.Common)
		within("power_factor.below", r.Below, 0, 1)
		nonNeg("power_factor.min_load_kw", r.MinLoadKW)
		within("power_factor.hysteresis", r.Hysteresis, 0, 0.5)
	}
	for _, lv := range []struct {
		name string
		r    *LevelRule
	}{{"residual_current", s.ResidualCurrent}, {"temperature", s.Temperature}} {
		if lv.r != nil {
			common(lv.name, lv.r.Common)
			nonNeg(lv.name+".above", lv.r.Above)
			nonNeg(lv.name+".hysteresis", lv.r.Hysteresis)
		}
	}
}
