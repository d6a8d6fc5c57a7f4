package config_test

import (
	"testing"

	"mallgrid/gateway/alarm"
	"mallgrid/gateway/config"
)

// A main or public meter is watched for overload only when its
// rated_current is written; a tenant's meter always (60 A by default).
func TestAlarms_OverloadOnlyWithARating(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters:\n"+
		"  - {id: P-1, bus: b, address: 1, model: kpm33b, role: public}\n"+
		"  - {id: P-2, bus: b, address: 2, model: kpm33b, role: public, rated_current: 200}\n"+
		"  - {id: M-1, bus: b, address: 3, model: kpm33b, tenant: T-1}\n"+
		"tenants: [{id: T-1, name: Shop}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := alarm.NewEvaluator(cfg.AlarmRules())
	for id, want := range map[string]bool{"P-1": false, "P-2": true, "M-1": true} {
		if got := e.Watched(id, alarm.Overload); got != want {
			t.Errorf("%s watched for overload: %v; want %v", id, got, want)
		}
	}
}

// A tenant category's rules reach the meters of that category's tenants,
// and only theirs; a meter's own rules go over them.
func TestAlarms_CategoryReachesItsTenantsMeters(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters:\n"+
		"  - {id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}\n"+
		"  - {id: M-2, bus: b, address: 2, model: kpm33b, tenant: T-2}\n"+
		"  - {id: M-3, bus: b, address: 3, model: kpm33b, tenant: T-1}\n"+
		"tenants: [{id: T-1, name: Noodles, category: restaurant}, {id: T-2, name: Shoes}]\n"+
		"alarms:\n  categories:\n    restaurant: {overload: {factor: 0.9, clear_factor: 0.8}, appliance: {step_kw: 2.5}}\n"+
		"  meters:\n    M-3: {overload: {factor: 0.8, clear_factor: 0.7}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]struct{ factor, step float64 }{"M-1": {0.9, 2.5}, "M-2": {1.0, 0}, "M-3": {0.8, 2.5}} {
		set := cfg.AlarmRules().Of(id)
		if *set.Overload.Factor != want.factor || *set.Appliance.StepKW != want.step {
			t.Errorf("%s: overload factor %v, appliance step %v kW; want %v, %v", id, *set.Overload.Factor, *set.Appliance.StepKW, want.factor, want.step)
		}
	}
}
