package report

import "mallgrid/gateway/web"

// Rules lists the configured allocation rules in file order, for the
// finance page's list and its preview form (web.AllocationRules).
func (a *Allocator) Rules() []web.AllocationRuleInfo {
	rules := a.Config.Allocations()
	out := make([]web.AllocationRuleInfo, 0, len(rules))
	for _, r := range rules {
		out = append(out, web.AllocationRuleInfo{Name: r.Name, Basis: r.Basis, Tariff: r.TariffName, Period: r.Period,
			Meters: r.Meters, Tenants: r.Tenants})
	}
	return out
}
