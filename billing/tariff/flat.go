package tariff

import (
	"time"

	"mallgrid/billing"
)

// flat is one price for all energy.
type flat struct {
	name string
	plan *dayPlan
	fps  []fieldPrice
}

func newFlat(spec Spec, ps *problems) *flat {
	onlyFor(spec, KindFlat, ps)
	p := parsePrice("price", spec.Price, ps)
	return &flat{
		name: spec.Name,
		plan: allDay(rate{name: "flat", price: p}),
		fps:  []fieldPrice{{"price", p}},
	}
}

func (t *flat) Name() string { return t.name }

func (t *flat) Split(from, to time.Time, wh, monthWh int64) ([]Part, error) {
	// Walked like any tariff, so that parts end at month starts as the
	// package promises statements.
	segs, err := split(from, to, wh, monthWh, func(int, time.Month, int, time.Weekday) *dayPlan { return t.plan })
	if err != nil || segs == nil {
		return nil, err
	}
	return ratedParts(segs), nil
}

func (t *flat) MaxPrice() billing.Price { return maxPrice(t.fps) }

func (t *flat) prices() []fieldPrice { return t.fps }
