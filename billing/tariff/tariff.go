package tariff

import (
	"fmt"
	"time"

	"mallgrid/billing"
)

// Tariff prices a tenant's energy. A Tariff is immutable and safe for
// concurrent use.
type Tariff interface {
	// Name returns the spec's name, which tenants refer to.
	Name() string

	// Split apportions wh Wh consumed evenly over [from, to) into parts at
	// one price each, in time order, by the rules in the package doc.
	// Times carry their zone: pass them in the site's *time.Location.
	// monthWh is the tenant's energy already charged this calendar month
	// (site time) before from; only tiered tariffs use it. The parts' Wh
	// add up to wh exactly. wh == 0 gives no parts and a nil error; a
	// negative energy is ErrEnergy, and an interval that does not run
	// forward is ErrInterval, with no parts.
	Split(from, to time.Time, wh int64, monthWh int64) ([]Part, error)

	// MaxPrice returns the highest price the tariff can charge.
	MaxPrice() billing.Price
}

// Part is a stretch of a split interval at one price: Wh of the energy,
// used over [From, To) (in the location of Split's from), at Price.
// Window is what a statement shows for it: "flat", "peak", "sharp",
// "valley" (the tou rate or the flat tariff), or "tier 1", "tier 2", …
type Part struct {
	From, To time.Time
	Wh       int64
	Price    billing.Price
	Window   string
}

// Kinds of tariff, the values of Spec.Kind.
const (
	KindFlat   = "flat"
	KindTOU    = "tou"
	KindTiered = "tiered"
)

// New checks spec and builds its tariff. It returns every problem found,
// not just the first, and a nil Tariff when there is any; otherwise the
// problems are nil.
func New(spec Spec) (Tariff, []Problem) {
	var ps problems
	if spec.Name == "" {
		ps.add("name", "missing; tenants refer to a tariff by its name")
	}
	var t Tariff
	switch spec.Kind {
	case KindFlat:
		t = newFlat(spec, &ps)
	case KindTOU:
		t = newTOU(spec, &ps)
	case KindTiered:
		t = newTiered(spec, &ps)
	case "":
		ps.add("kind", "missing; want flat, tou or tiered")
	default:
		ps.add("kind", "want flat, tou or tiered, got %q", spec.Kind)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return t, nil
}

// onlyFor reports the fields spec sets that a tariff of kind does not
// read: a price left beside tou windows would otherwise look like it
// counted.
func onlyFor(spec Spec, kind string, ps *problems) {
	other := func(field, owner string) {
		ps.add(field, "only for kind %s; this tariff is %s", owner, kind)
	}
	if kind != KindFlat && spec.Price != "" {
		other("price", KindFlat)
	}
	if kind != KindTOU {
		if len(spec.Rates) > 0 {
			other("rates", KindTOU)
		}
		if len(spec.Days) > 0 {
			other("days", KindTOU)
		}
		if len(spec.Seasons) > 0 {
			other("seasons", KindTOU)
		}
		if len(spec.Holidays) > 0 {
			other("holidays", KindTOU)
		}
	}
	if kind != KindTiered && len(spec.Blocks) > 0 {
		other("blocks", KindTiered)
	}
}

// parsePrice reads the price at field, reporting it when it is missing,
// not a decimal, or not above zero (free energy in a tariff is a typo, not
// a policy).
func parsePrice(field, s string, ps *problems) billing.Price {
	if s == "" {
		ps.add(field, "missing; want a price in yuan per kWh like 1.05")
		return 0
	}
	p, err := billing.ParsePrice(s)
	if err != nil {
		ps.add(field, "want a price in yuan per kWh like 1.05, got %q", s)
		return 0
	}
	if p <= 0 {
		ps.add(field, "want a price above zero, got %s", s)
		return 0
	}
	return p
}

// fieldPrice is a price of a built tariff and the spec field it came from,
// for CheckCap.
type fieldPrice struct {
	field string
	price billing.Price
}

func maxPrice(fps []fieldPrice) billing.Price {
	var m billing.Price
	for _, fp := range fps {
		m = max(m, fp.price)
	}
	return m
}

// tierName is the Window of a tiered part for block i (from 0).
func tierName(i int) string { return fmt.Sprintf("tier %d", i+1) }

// indexed is the path of element i of the list at path: "days[2]".
func indexed(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// RatePrice returns the price t charges per kWh of energy a meter counted
// on its own rate counter rate (sharp, peak, flat or valley), for meters
// whose gaps are apportioned by their own rate counters: a time-of-use
// tariff's price of that rate, a flat tariff's one price. It is false for
// a rate the tariff does not price and for tiered tariffs, whose price
// depends on the month's total, not on the time of use.
func RatePrice(t Tariff, rate string) (billing.Price, bool) {
	switch x := t.(type) {
	case *tou:
		for _, fp := range x.fps {
			if fp.field == "rates."+rate {
				return fp.price, true
			}
		}
	case *flat:
		return x.MaxPrice(), true
	}
	return 0, false
}
