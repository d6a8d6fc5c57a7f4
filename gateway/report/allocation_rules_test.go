package report

import (
	"fmt"
	"testing"

	"mallgrid/gateway/web"
)

// The finance page lists the rules as configured, in file order, with
// their defaults resolved (tariff standard, period month).
func TestAllocator_Rules(t *testing.T) {
	db, cfg := allocMall(t)
	var a web.Allocations = &Allocator{DB: db, Config: cfg}
	rl, ok := a.(web.AllocationRules)
	if !ok {
		t.Fatal("*Allocator does not list its rules (web.AllocationRules): the finance page would offer only the rules already posted")
	}
	got := fmt.Sprintf("%+v", rl.Rules())
	want := "[{Name:corridors Basis:area Tariff:standard Period:month Meters:[M-PUB] Tenants:[T-1 T-2]} " +
		"{Name:daily Basis:consumption Tariff:standard Period:day Meters:[M-HALL] Tenants:[T-1 T-2]}]"
	if got != want {
		t.Errorf("Rules() = %s; want %s", got, want)
	}
}
