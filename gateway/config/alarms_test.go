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
