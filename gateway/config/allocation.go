package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"

	"mallgrid/billing/allocation"
	"mallgrid/billing/tariff"
	"mallgrid/gateway/yamlcheck"
)

// AllocationRule is one rule of the allocation: section as the technician
// writes it: which public meters' energy is shared, among which tenants,
// by what, priced at which tariff, per day or per month.
type AllocationRule struct {
	Name   string   `yaml:"name"`
	Meters []string `yaml:"meters"` // public meters; their energy is the cost
	// Tenants share the cost; empty means every tenant (for a fixed basis,
	// the tenants of shares).
	Tenants []string `yaml:"tenants"`
	// Basis is area, consumption or fixed, or a mapping of those to
	// weights adding up to 100 %: {area: "50%", consumption: "50%"}.
	Basis yamlcheck.TextOrMap `yaml:"basis"`
	// Shares are the fixed quotas by tenant ("40%"), for a fixed basis.
	Shares map[string]string `yaml:"shares"`
	// Tariff prices the public energy in the window it was used in; the
	// default is the site's standard tariff, the one tenants default to.
	Tariff string `yaml:"tariff"`
	Period string `yaml:"period"` // PeriodDay or PeriodMonth
}

// Allocation periods, in site time.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
)

func (a *AllocationRule) setDefaults() {
	a.Tariff = "standard"
	a.Period = PeriodMonth
}

// Allocation is an allocation rule checked and resolved: what gateway/report
// computes and posts.
type Allocation struct {
	Name    string
	Meters  []string // public meter ids, in file order
	Tenants []string // tenant ids, sorted
	Weights []allocation.Weight
	// Basis is the rule's basis as written back in one line: "area",
	// "area 50% + consumption 50%".
	Basis string
	// Quotas are the fixed shares by tenant, in parts per million.
	Quotas     map[string]int64
	TariffName string
	Tariff     tariff.Tariff
	Period     string
	// AreaCM2 is each tenant's floor area in hundredths of a square metre.
	AreaCM2 map[string]int64
}

// Allocations returns the allocation rules, in file order.
func (c *Config) Allocations() []Allocation { return c.allocations }

// AllocationNamed returns the allocation rule called name.
func (c *Config) AllocationNamed(name string) (Allocation, bool) {
	for _, a := range c.allocations {
		if a.Name == name {
			return a, true
		}
	}
	return Allocation{}, false
}

// MaxAreaM2 bounds a tenant's floor area (ten square kilometres, far
// beyond any shop): the area in hundredths of a square metre that
// allocation shares by stays well inside int64, where a larger one would
// overflow and be shared by as nothing.
const MaxAreaM2 = 10_000_000

var ruleName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validateAllocation checks every allocation rule against the meters,
// tenants and tariffs, reporting each problem at its key, and builds the
// rules of a good one.
func validateAllocation(cfg *Config, r *yamlcheck.Report) {
	meters := make(map[string]Meter, len(cfg.Meters))
	for _, m := range cfg.Meters {
		if _, dup := meters[m.ID]; !dup {
			meters[m.ID] = m
		}
	}
	tenants := make(map[string]Tenant, len(cfg.Tenants))
	var allTenants []string
	for _, t := range cfg.Tenants {
		if _, dup := tenants[t.ID]; !dup && t.ID != "" {
			tenants[t.ID] = t
			allTenants = append(allTenants, t.ID)
		}
	}
	names := unique(r, "allocation rule name")
	// sharedBy is the rule each public meter is shared by: a meter in two
	// rules would have its energy charged to tenants twice.
	sharedBy := make(map[string]string)
	cfg.allocations = nil
	for i, rule := range cfg.Allocation {
		p := yamlcheck.Index("allocation", i)
		ok := true
		bad := func(key, format string, args ...any) {
			r.Add(key, format, args...)
			ok = false
		}
		if !r.Need(p+".name", rule.Name) {
			ok = false
		} else if !ruleName.MatchString(rule.Name) {
			bad(p+".name", "want letters, digits, - and _ only (it is used in links), got %q", rule.Name)
		} else {
			names.check(p+".name", rule.Name)
		}
		if len(rule.Meters) == 0 {
			bad(p+".meters", "required, not set: the public meters whose energy this rule shares")
		}
		for j, id := range rule.Meters {
			k := yamlcheck.Index(p+".meters", j)
			m, known := meters[id]
			switch {
			case !known:
				bad(k, "unknown meter %q", id)
			case m.Role != PublicMeter:
				bad(k, "meter %s has role %s; only public meters' energy is shared (set role: public)", id, m.Role)
			case slices.Index(rule.Meters, id) < j:
				bad(k, "meter %s is listed twice", id)
			case sharedBy[id] != "":
				bad(k, "meter %s is already shared by rule %s; a public meter's energy is shared by one rule, or it is charged twice", id, sharedBy[id])
			default:
				sharedBy[id] = ruleLabel(rule.Name, i)
			}
		}
		a := Allocation{Name: rule.Name, Meters: rule.Meters, Period: rule.Period, TariffName: rule.Tariff,
			Quotas: make(map[string]int64), AreaCM2: make(map[string]int64)}
		// The basis: one word, or weights by kind.
		kinds := map[string]bool{}
		switch {
		case rule.Basis.Map != nil:
			var sum int64
			var parts []string
			// The sum is checked when every weight reads, whatever else
			// in the rule is wrong: each mistake is reported at once.
			weightsRead := true
			for _, k := range allocation.Kinds() {
				w, given := rule.Basis.Map[string(k)]
				if !given {
					continue
				}
				ppm, err := allocation.ParsePercent(w)
				if err != nil || ppm == 0 {
					bad(p+".basis."+string(k), "want a weight above 0%% like 50%%, got %q", w)
					weightsRead = false
					continue
				}
				a.Weights = append(a.Weights, allocation.Weight{Kind: k, PPM: ppm})
				kinds[string(k)] = true
				sum += ppm
				parts = append(parts, string(k)+" "+allocation.FormatPercent(ppm))
			}
			for _, name := range sortedKeys(mapKeys(rule.Basis.Map)) {
				if !slices.Contains(allocation.Kinds(), allocation.Kind(name)) {
					bad(p+".basis."+name, "unknown basis; want area, consumption or fixed")
					weightsRead = false
				}
			}
			if len(rule.Basis.Map) == 0 {
				bad(p+".basis", "want area, consumption, fixed or weights like {area: 50%%, consumption: 50%%}")
			} else if weightsRead && sum != allocation.Whole {
				bad(p+".basis", "the weights add up to %s; want 100%%", allocation.FormatPercent(sum))
			}
			a.Basis = strings.Join(parts, " + ")
		case rule.Basis.Text == "":
			bad(p+".basis", "required, not set: area, consumption, fixed or weights like {area: 50%%, consumption: 50%%}")
		case slices.Contains(allocation.Kinds(), allocation.Kind(rule.Basis.Text)):
			a.Weights = []allocation.Weight{{Kind: allocation.Kind(rule.Basis.Text), PPM: allocation.Whole}}
			kinds[rule.Basis.Text] = true
			a.Basis = rule.Basis.Text
		default:
			bad(p+".basis", "want area, consumption, fixed or weights like {area: 50%%, consumption: 50%%}, got %q", rule.Basis.Text)
		}
		// The tenants: as listed, else those of the shares (fixed), else all.
		listed := rule.Tenants
		for j, id := range listed {
			k := yamlcheck.Index(p+".tenants", j)
			switch {
			case tenants[id].ID == "":
				bad(k, "unknown tenant %q", id)
			case slices.Index(listed, id) < j:
				bad(k, "tenant %s is listed twice", id)
			}
		}
		switch {
		case len(listed) > 0:
			a.Tenants = append([]string(nil), listed...)
		case kinds[string(allocation.Fixed)]:
			a.Tenants = sortedKeys(mapKeys(rule.Shares))
		default:
			a.Tenants = append([]string(nil), allTenants...)
		}
		sort.Strings(a.Tenants)
		if len(a.Tenants) == 0 && len(rule.Shares) == 0 && !kinds[string(allocation.Fixed)] {
			bad(p+".tenants", "no tenant to share among: the configuration has none")
		}
		// Fixed quotas: one per tenant of the rule, adding up to 100 %.
		switch {
		case kinds[string(allocation.Fixed)]:
			var sum int64
			sharesRead := true // as weightsRead
			for _, id := range sortedKeys(mapKeys(rule.Shares)) {
				k := p + ".shares." + id
				ppm, err := allocation.ParsePercent(rule.Shares[id])
				switch {
				case tenants[id].ID == "":
					bad(k, "unknown tenant %q", id)
					sharesRead = false
				case len(listed) > 0 && !slices.Contains(listed, id):
					bad(k, "tenant %s is not among the rule's tenants", id)
					sharesRead = false
				case err != nil:
					bad(k, "want a share like 40%%, got %q", rule.Shares[id])
					sharesRead = false
				default:
					a.Quotas[id] = ppm
					sum += ppm
				}
			}
			if len(rule.Shares) == 0 {
				bad(p+".shares", "required for a fixed basis: each tenant's quota, like {T-101: 40%%, T-102: 60%%}")
			} else if sharesRead && sum != allocation.Whole {
				bad(p+".shares", "the shares add up to %s; want 100%%", allocation.FormatPercent(sum))
			}
			for _, id := range listed {
				if _, has := rule.Shares[id]; !has && tenants[id].ID != "" {
					bad(p+".shares", "tenant %s of the rule has no share", id)
				}
			}
		case len(rule.Shares) > 0:
			bad(p+".shares", "only for a fixed basis; this rule's basis is %s", a.Basis)
		}
		// Area: every tenant of the rule needs one.
		for _, id := range a.Tenants {
			t, known := tenants[id]
			if !known {
				continue
			}
			if !(t.AreaM2 <= MaxAreaM2) {
				continue // reported at the tenant
			}
			cm2 := int64(math.Round(t.AreaM2 * 100))
			if kinds[string(allocation.Area)] && !(cm2 > 0) {
				key := p + ".basis"
				if j := slices.Index(listed, id); j >= 0 {
					key = yamlcheck.Index(p+".tenants", j)
				}
				bad(key, "tenant %s has no area_m2; a basis by area needs every tenant's floor area", id)
			}
			if cm2 > 0 {
				a.AreaCM2[id] = cm2
			}
		}
		if r.Need(p+".tariff", rule.Tariff) {
			if tf, known := cfg.tariffs[rule.Tariff]; known {
				a.Tariff = tf
			} else if slices.Contains(tariffNames(cfg), rule.Tariff) {
				ok = false // broken, and reported where it is
			} else if len(cfg.Tariffs) == 0 {
				bad(p+".tariff", "no tariffs are configured; public energy is priced at tariff %q", rule.Tariff)
			} else {
				bad(p+".tariff", "unknown tariff %q (tariffs: %s); public energy is priced at it", rule.Tariff, strings.Join(tariffNames(cfg), ", "))
			}
		}
		if !r.OneOf(p+".period", rule.Period, PeriodDay, PeriodMonth) {
			ok = false
		}
		if ok && !r.Bad(p) {
			cfg.allocations = append(cfg.allocations, a)
		}
	}
}

// ruleLabel names rule i in a problem: its name, or its place when it has
// none.
func ruleLabel(name string, i int) string {
	if name == "" {
		return yamlcheck.Index("allocation", i)
	}
	return name
}

func mapKeys(m map[string]string) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// String is the rule in a line, for logs: "corridors: area over M-PUB-2F, month".
func (a Allocation) String() string {
	return fmt.Sprintf("%s: %s over %s, %s", a.Name, a.Basis, strings.Join(a.Meters, ", "), a.Period)
}
