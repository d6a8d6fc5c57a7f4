package tariff

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"mallgrid/billing"
)

// minutesPerDay is where a day plan's last window ends ("24:00").
const minutesPerDay = 24 * 60

// rate is what a stretch of time is priced at and what a statement calls
// it. Tiered tariffs walk time with the zero rate and price by energy
// afterwards.
type rate struct {
	name  string
	price billing.Price
}

// dayPlan is the windows of one day: window i is [edges[i], edges[i+1])
// in minutes after midnight, wall clock, at rates[i]. Edges rise from 0 to
// minutesPerDay.
type dayPlan struct {
	edges []int
	rates []rate
}

// allDay is a day plan of one window at r.
func allDay(r rate) *dayPlan {
	return &dayPlan{edges: []int{0, minutesPerDay}, rates: []rate{r}}
}

// planner picks the day plan of a wall-clock date.
type planner func(y int, m time.Month, d int, wd time.Weekday) *dayPlan

// segment is a stretch of [from, to) at one rate within one month, and
// the Wh apportioned to it.
type segment struct {
	from, to time.Time
	rate     rate
	month    int // months since year 0, site time; never falls along a walk
	wh       int64
}

// split checks Split's arguments, cuts [from, to) where the rate of plan
// or the month changes, and apportions wh over the pieces linearly. A nil
// slice and nil error mean there is nothing to price (wh == 0).
func split(from, to time.Time, wh, monthWh int64, plan planner) ([]segment, error) {
	if wh < 0 || monthWh < 0 || wh > math.MaxInt64-monthWh {
		return nil, fmt.Errorf("%w: %d Wh with %d Wh earlier in the month", ErrEnergy, wh, monthWh)
	}
	if wh == 0 {
		return nil, nil
	}
	// A monotonic reading would make Sub disagree with the wall clock the
	// windows are read from; the site's location decides the wall clock.
	from = from.Round(0)
	to = to.Round(0).In(from.Location())
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: %d Wh from %s to %s", ErrInterval, wh, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) == time.Duration(math.MaxInt64) {
		return nil, fmt.Errorf("%w: %s to %s is too long", ErrInterval, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	segs := walk(from, to, plan)
	apportion(wh, segs)
	return segs, nil
}

// walk cuts [from, to) into segments at one rate and month each, merging
// neighbours that share both. It steps from window edge to window edge in
// wall-clock time; within one zone offset wall time and absolute time
// move together, so the next edge is found by adding the wall-clock
// distance, and at an offset change (DST) the walk stops and reads the
// wall clock afresh. That makes an instant's rate the window of its own
// wall-clock time, with no guessing at times that do not exist or exist
// twice.
func walk(from, to time.Time, plan planner) []segment {
	var segs []segment
	month := math.MinInt
	for cur := from; cur.Before(to); {
		y, mo, d := cur.Date()
		h, mi, s := cur.Clock()
		wall := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute +
			time.Duration(s)*time.Second + time.Duration(cur.Nanosecond())
		p := plan(y, mo, d, cur.Weekday())
		// The window holding wall: the last edge at or before it.
		i, found := slices.BinarySearch(p.edges, int(wall/time.Minute))
		if !found {
			i--
		}
		next := cur.Add(time.Duration(p.edges[i+1])*time.Minute - wall)
		if _, end := cur.ZoneBounds(); !end.IsZero() && end.Before(next) {
			next = end
		}
		if next.After(to) {
			next = to
		}
		// Where clocks go back over a month start the wall date steps back
		// for a while; the month counter must not.
		month = max(month, y*12+int(mo)-1)
		r := p.rates[i]
		if n := len(segs); n > 0 && segs[n-1].rate == r && segs[n-1].month == month {
			segs[n-1].to = next
		} else {
			segs = append(segs, segment{from: cur, to: next, rate: r, month: month})
		}
		cur = next
	}
	return segs
}

// apportion shares wh among segs in proportion to their durations by
// largest remainder: each gets the floor of its exact share, and the Wh
// left over go one each to the largest remainders, the earlier segment on
// a tie. The products are taken in 128 bits, so no Wh or nanosecond is
// rounded before the division.
func apportion(wh int64, segs []segment) {
	total := uint64(segs[len(segs)-1].to.Sub(segs[0].from))
	type rest struct {
		i int
		r uint64
	}
	rests := make([]rest, len(segs))
	left := wh
	for i := range segs {
		q, r := mulDiv(uint64(wh), uint64(segs[i].to.Sub(segs[i].from)), total)
		segs[i].wh = int64(q)
		left -= int64(q)
		rests[i] = rest{i, r}
	}
	slices.SortStableFunc(rests, func(a, b rest) int { return cmp.Compare(b.r, a.r) })
	for k := range left {
		segs[rests[k].i].wh++
	}
}

// mulDiv returns a×b÷c and its remainder. The quotient must fit 64 bits,
// which holds whenever b ≤ c.
func mulDiv(a, b, c uint64) (q, r uint64) {
	hi, lo := bits.Mul64(a, b)
	return bits.Div64(hi, lo, c)
}

// ratedParts turns segments priced by time (flat, tou) into parts.
func ratedParts(segs []segment) []Part {
	parts := make([]Part, len(segs))
	for i, s := range segs {
		parts[i] = Part{From: s.from, To: s.to, Wh: s.wh, Price: s.rate.price, Window: s.rate.name}
	}
	return parts
}
