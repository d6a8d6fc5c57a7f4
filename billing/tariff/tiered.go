package tariff

import (
	"time"

	"mallgrid/billing"
)

// maxBlockKWh bounds a block limit: a terawatt-hour a month is beyond any
// tenant, and keeps limits in Wh far from overflow.
const maxBlockKWh = 1_000_000_000

// block is a tier: the month's energy up to limit Wh (0: no limit) costs
// price.
type block struct {
	limit int64
	price billing.Price
	name  string // "tier 2"
}

// tiered prices the energy of a calendar month in blocks.
type tiered struct {
	name   string
	plan   *dayPlan
	blocks []block
	fps    []fieldPrice
}

func newTiered(spec Spec, ps *problems) *tiered {
	onlyFor(spec, KindTiered, ps)
	t := &tiered{name: spec.Name, plan: allDay(rate{})}
	if len(spec.Blocks) == 0 {
		ps.add("blocks", "missing; want blocks lowest first, each with up_to_kwh and price, the last with no up_to_kwh")
		return t
	}
	last := len(spec.Blocks) - 1
	var prev int64
	for i, b := range spec.Blocks {
		f := indexed("blocks", i)
		switch {
		case i == last && b.UpToKWh != 0:
			ps.add(f+".up_to_kwh", "the last block must have no limit (leave up_to_kwh out), so that all energy has a price")
		case i == last:
		case b.UpToKWh == 0:
			ps.add(f+".up_to_kwh", "missing; only the last block has no limit")
		case b.UpToKWh < 0 || b.UpToKWh > maxBlockKWh:
			ps.add(f+".up_to_kwh", "want a limit from 1 to %d kWh, got %d", maxBlockKWh, b.UpToKWh)
		case b.UpToKWh <= prev:
			ps.add(f+".up_to_kwh", "%d kWh is not above the block before (%d kWh); limits count from the start of the month", b.UpToKWh, prev)
		default:
			prev = b.UpToKWh
		}
		p := parsePrice(f+".price", b.Price, ps)
		t.fps = append(t.fps, fieldPrice{f + ".price", p})
		t.blocks = append(t.blocks, block{limit: max(b.UpToKWh, 0) * 1000, price: p, name: tierName(i)})
	}
	return t
}

func (t *tiered) Name() string { return t.name }

func (t *tiered) Split(from, to time.Time, wh, monthWh int64) ([]Part, error) {
	// One window a day at the zero rate: the walk cuts only at month
	// starts, and blocks price the months' energy afterwards.
	segs, err := split(from, to, wh, monthWh, func(int, time.Month, int, time.Weekday) *dayPlan { return t.plan })
	if err != nil || segs == nil {
		return nil, err
	}
	var parts []Part
	counter := monthWh
	for k, s := range segs {
		if k > 0 {
			// Segments of a tiered walk are whole months: each after the
			// first starts a month, and its counter with it.
			counter = 0
		}
		b := t.blockOf(counter)
		dur := uint64(s.to.Sub(s.from))
		for done, start := int64(0), s.from; ; b++ {
			take := s.wh - done
			if lim := t.blocks[b].limit; lim != 0 && take > lim-counter {
				take = lim - counter
			}
			done += take
			counter += take
			end := s.to
			if done < s.wh {
				q, _ := mulDiv(dur, uint64(done), uint64(s.wh))
				end = s.from.Add(time.Duration(q))
			}
			parts = append(parts, Part{From: start, To: end, Wh: take, Price: t.blocks[b].price, Window: t.blocks[b].name})
			if done == s.wh {
				break
			}
			start = end
		}
	}
	return parts, nil
}

// blockOf returns the block the next Wh falls in when counter Wh of the
// month are already charged: a block's limit is the last Wh it prices.
func (t *tiered) blockOf(counter int64) int {
	for i, b := range t.blocks {
		if b.limit == 0 || counter < b.limit {
			return i
		}
	}
	return len(t.blocks) - 1 // unreachable: New makes the last block unbounded
}

func (t *tiered) MaxPrice() billing.Price { return maxPrice(t.fps) }

func (t *tiered) prices() []fieldPrice { return t.fps }
