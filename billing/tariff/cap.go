package tariff

import "mallgrid/billing"

// CheckCap reports each price of t above cap, a resale price cap (some
// provinces cap what a landlord may charge at the grid price + 15%): each
// is a config error, with the Field of the spec it came from. A price
// equal to the cap is allowed. It returns nil when none is above; a cap
// of zero or less has every price above it, so call CheckCap only when a
// cap is configured. For a Tariff that New did not build, only MaxPrice is
// checked, with an empty Field.
func CheckCap(t Tariff, cap billing.Price) []Problem {
	var ps problems
	above := func(field string, p billing.Price) {
		if p > cap {
			ps.add(field, "%s yuan/kWh is above the resale price cap of %s yuan/kWh", p, cap)
		}
	}
	if c, ok := t.(interface{ prices() []fieldPrice }); ok {
		for _, fp := range c.prices() {
			above(fp.field, fp.price)
		}
	} else {
		above("", t.MaxPrice())
	}
	return ps
}
