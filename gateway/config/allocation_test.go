package config

import (
	"slices"
	"strings"
	"testing"

	"mallgrid/billing/allocation"
)

// allocationHead is a mall with two public meters, a main meter, three
// tenants (T-103 without an area) and a standard tariff; the allocation
// section starts at line 13.
const allocationHead = "site: {name: M}\nbuses: [{name: b1, port: /dev/ttyUSB0}]\n" +
	"tariffs: [{name: standard, kind: flat, price: '1.00'}]\n" +
	"meters:\n" +
	"  - {id: M-PUB, bus: b1, address: 1, model: kpm33b, role: public}\n" +
	"  - {id: M-AC, bus: b1, address: 2, model: kpm33b, role: public}\n" +
	"  - {id: M-101, bus: b1, address: 3, model: kpm33b, tenant: T-101}\n" +
	"  - {id: M-MAIN, bus: b1, address: 4, model: kpm33b, role: main}\n" +
	"tenants:\n" +
	"  - {id: T-101, name: A, area_m2: 120.5}\n" +
	"  - {id: T-102, name: B, area_m2: 80}\n" +
	"  - {id: T-103, name: C}\n"

// The four rules load, with their defaults and resolved tenants.
func TestParse_Allocation(t *testing.T) {
	// Each public meter is shared by one rule: two more for kiosks and mixed.
	head := strings.Replace(allocationHead, "tenants:\n", "  - {id: M-PARK, bus: b1, address: 5, model: kpm33b, role: public}\n"+
		"  - {id: M-LIFT, bus: b1, address: 6, model: kpm33b, role: public}\ntenants:\n", 1)
	file := head + "allocation:\n" +
		"  - {name: corridors, meters: [M-PUB], tenants: [T-102, T-101], basis: area, tariff: standard, period: month}\n" +
		"  - {name: chillers, meters: [M-AC], basis: consumption, period: day}\n" +
		"  - {name: kiosks, meters: [M-PARK], basis: fixed, shares: {T-101: \"40%\", T-102: \"60%\"}}\n" +
		"  - {name: mixed, meters: [M-LIFT], tenants: [T-101, T-102], basis: {area: \"50%\", consumption: \"50%\"}}\n"
	cfg, err := Parse("t.yaml", []byte(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	rules := cfg.Allocations()
	if len(rules) != 4 {
		t.Fatalf("got %d rules; want 4", len(rules))
	}
	c := rules[0]
	if !slices.Equal(c.Tenants, []string{"T-101", "T-102"}) || c.AreaCM2["T-101"] != 12050 || c.Basis != "area" || c.Period != PeriodMonth || c.Tariff == nil {
		t.Errorf("corridors: got %+v", c)
	}
	if ch := rules[1]; !slices.Equal(ch.Tenants, []string{"T-101", "T-102", "T-103"}) || ch.Period != PeriodDay || ch.TariffName != "standard" {
		t.Errorf("chillers: tenants %v period %s tariff %s; want all three, day, standard", ch.Tenants, ch.Period, ch.TariffName)
	}
	if k := rules[2]; !slices.Equal(k.Tenants, []string{"T-101", "T-102"}) || k.Quotas["T-101"] != 400_000 || k.Quotas["T-102"] != 600_000 {
		t.Errorf("kiosks: tenants %v quotas %v", k.Tenants, k.Quotas)
	}
	m := rules[3]
	if want := []allocation.Weight{{Kind: allocation.Area, PPM: 500_000}, {Kind: allocation.Consumption, PPM: 500_000}}; !slices.Equal(m.Weights, want) || m.Basis != "area 50% + consumption 50%" {
		t.Errorf("mixed: weights %v basis %q", m.Weights, m.Basis)
	}
	if _, ok := cfg.AllocationNamed("kiosks"); !ok {
		t.Error("AllocationNamed(kiosks): not found")
	}
}

// Each mistake in allocation: is one problem at its line and key.
func TestParse_AllocationProblems(t *testing.T) {
	cases := []struct{ name, rule, want string }{
		{"unknown meter", "{name: a, meters: [M-PUB2], basis: consumption}", `t.yaml:14: allocation[0].meters[0]: unknown meter "M-PUB2"`},
		{"tenant meter", "{name: a, meters: [M-101], basis: consumption}",
			"t.yaml:14: allocation[0].meters[0]: meter M-101 has role tenant; only public meters' energy is shared (set role: public)"},
		{"main meter", "{name: a, meters: [M-MAIN], basis: consumption}",
			"t.yaml:14: allocation[0].meters[0]: meter M-MAIN has role main; only public meters' energy is shared (set role: public)"},
		{"no meters", "{name: a, basis: consumption}", "t.yaml:14: allocation[0].meters: required, not set: the public meters whose energy this rule shares"},
		{"unknown tenant", "{name: a, meters: [M-PUB], tenants: [T-999], basis: consumption}", `t.yaml:14: allocation[0].tenants[0]: unknown tenant "T-999"`},
		{"tenant twice", "{name: a, meters: [M-PUB], tenants: [T-101, T-101], basis: consumption}", "t.yaml:14: allocation[0].tenants[1]: tenant T-101 is listed twice"},
		{"shares short", "{name: a, meters: [M-PUB], basis: fixed, shares: {T-101: 40%, T-102: 50%}}", "t.yaml:14: allocation[0].shares: the shares add up to 90%; want 100%"},
		{"share not a percentage", "{name: a, meters: [M-PUB], basis: fixed, shares: {T-101: 0.4, T-102: 60%}}", `t.yaml:14: allocation[0].shares.T-101: want a share like 40%, got "0.4"`},
		{"share of an unknown tenant", "{name: a, meters: [M-PUB], basis: fixed, shares: {T-101: 40%, T-109: 60%}}", `t.yaml:14: allocation[0].shares.T-109: unknown tenant "T-109"`},
		{"fixed without shares", "{name: a, meters: [M-PUB], basis: fixed}", "t.yaml:14: allocation[0].shares: required for a fixed basis: each tenant's quota, like {T-101: 40%, T-102: 60%}"},
		{"shares without fixed", "{name: a, meters: [M-PUB], basis: area, tenants: [T-101], shares: {T-101: 100%}}", "t.yaml:14: allocation[0].shares: only for a fixed basis; this rule's basis is area"},
		{"listed tenant without a share", "{name: a, meters: [M-PUB], tenants: [T-101, T-102], basis: fixed, shares: {T-101: 100%}}", "t.yaml:14: allocation[0].shares: tenant T-102 of the rule has no share"},
		{"tenant without area", "{name: a, meters: [M-PUB], tenants: [T-101, T-103], basis: area}",
			"t.yaml:14: allocation[0].tenants[1]: tenant T-103 has no area_m2; a basis by area needs every tenant's floor area"},
		{"all tenants, one without area", "{name: a, meters: [M-PUB], basis: area}",
			"t.yaml:14: allocation[0].basis: tenant T-103 has no area_m2; a basis by area needs every tenant's floor area"},
		{"unknown basis", "{name: a, meters: [M-PUB], basis: volume}", `t.yaml:14: allocation[0].basis: want area, consumption, fixed or weights like {area: 50%, consumption: 50%}, got "volume"`},
		{"weights short", "{name: a, meters: [M-PUB], tenants: [T-101], basis: {area: 50%, consumption: 40%}}", "t.yaml:14: allocation[0].basis: the weights add up to 90%; want 100%"},
		{"unknown weight", "{name: a, meters: [M-PUB], tenants: [T-101], basis: {area: 50%, volume: 50%}}", "t.yaml:14: allocation[0].basis.volume: unknown basis; want area, consumption or fixed"},
		{"no basis", "{name: a, meters: [M-PUB]}", "t.yaml:14: allocation[0].basis: required, not set: area, consumption, fixed or weights like {area: 50%, consumption: 50%}"},
		{"unknown tariff", "{name: a, meters: [M-PUB], basis: consumption, tariff: night}", `t.yaml:14: allocation[0].tariff: unknown tariff "night" (tariffs: standard); public energy is priced at it`},
		{"period", "{name: a, meters: [M-PUB], basis: consumption, period: week}", `t.yaml:14: allocation[0].period: want one of day, month, got "week"`},
		{"name", "{name: a b, meters: [M-PUB], basis: consumption}", `t.yaml:14: allocation[0].name: want letters, digits, - and _ only (it is used in links), got "a b"`},
		{"unknown key", "{name: a, meters: [M-PUB], basis: consumption, tarif: standard}", "t.yaml:14: allocation[0].tarif: unknown key (did you mean tariff?)"},
	}
	for _, tc := range cases {
		_, err := Parse("t.yaml", []byte(allocationHead+"allocation:\n  - "+tc.rule+"\n"), nil)
		ps := problems(t, err)
		if len(ps) != 1 || ps[0].Error() != tc.want {
			t.Errorf("%s: got\n%v\nwant exactly:\n%s", tc.name, err, tc.want)
		}
	}
	// A mistake earlier in a rule does not hide that its weights or shares
	// do not add up.
	for _, tc := range []struct{ name, rule, want string }{
		{"weights short after a bad name", "{name: a b, meters: [M-PUB], tenants: [T-101], basis: {area: 50%, consumption: 40%}}",
			"t.yaml:14: allocation[0].basis: the weights add up to 90%; want 100%"},
		{"shares short after a bad meter", "{name: a, meters: [M-101], basis: fixed, shares: {T-101: 40%, T-102: 50%}}",
			"t.yaml:14: allocation[0].shares: the shares add up to 90%; want 100%"},
	} {
		_, err := Parse("t.yaml", []byte(allocationHead+"allocation:\n  - "+tc.rule+"\n"), nil)
		ps := problems(t, err)
		if len(ps) != 2 || ps[1].Error() != tc.want {
			t.Errorf("%s: got\n%v\nwant two problems, the second:\n%s", tc.name, err, tc.want)
		}
	}
	// A public meter in two rules would be charged twice: the second is
	// refused at its place in the list.
	_, err := Parse("t.yaml", []byte(allocationHead+"allocation:\n  - {name: a, meters: [M-PUB], basis: consumption}\n  - {name: b, meters: [M-AC, M-PUB], basis: consumption}\n"), nil)
	if ps := problems(t, err); len(ps) != 1 || ps[0].Error() != "t.yaml:15: allocation[1].meters[1]: meter M-PUB is already shared by rule a; a public meter's energy is shared by one rule, or it is charged twice" {
		t.Errorf("meter in two rules: got %v", err)
	}
	// A huge area is refused at the tenant, not shared by as nothing.
	_, err = Parse("t.yaml", []byte(strings.Replace(allocationHead, "area_m2: 80", "area_m2: 1e300", 1)+"allocation:\n  - {name: a, meters: [M-PUB], tenants: [T-101, T-102], basis: area}\n"), nil)
	if ps := problems(t, err); len(ps) != 1 || ps[0].Error() != "t.yaml:11: tenants[1].area_m2: want a number from 0 to 10000000 (m²), got 1e+300" {
		t.Errorf("huge area: got %v", err)
	}
	// Two rules of one name: the second is refused at its line.
	_, err = Parse("t.yaml", []byte(allocationHead+"allocation:\n  - {name: a, meters: [M-PUB], basis: consumption}\n  - {name: a, meters: [M-AC], basis: consumption}\n"), nil)
	if ps := problems(t, err); len(ps) != 1 || ps[0].Error() != `t.yaml:15: allocation[1].name: duplicate allocation rule name "a" (first at line 14)` {
		t.Errorf("duplicate name: got %v", err)
	}
}
