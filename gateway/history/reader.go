package history

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"mallgrid/billing"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Reader answers the chart endpoints: web.History over the store. Set its
// fields before it serves.
type Reader struct {
	DB     *store.DB
	Config *config.Config
}

var _ web.History = (*Reader)(nil)

// MeterHistory implements web.History. A meter is known while it is in the
// configuration, and after it left it while samples of it are kept.
func (h *Reader) MeterHistory(id string, from, to time.Time, step web.Step) (web.HistoryView, error) {
	if err := h.knownMeter(id); err != nil {
		return web.HistoryView{}, err
	}
	starts, err := h.steps(from, to, step)
	if err != nil {
		return web.HistoryView{}, err
	}
	n := len(starts) - 1 // starts ends with the end of the last step
	points := make([]web.HistoryPoint, n)
	for i := range points {
		points[i].T = h.Config.SiteTime(starts[i])
	}
	// One step before the first: the counter that the first step's energy
	// rises from.
	lookback := starts[0].Add(-time.Duration(step))
	if step < web.StepQuarter {
		// At most MaxHistoryPoints × 5 one-minute samples: held together,
		// since the energy of a step needs the counter of the step before.
		samples, err := h.DB.Samples(id, lookback, starts[n])
		if err != nil {
			return web.HistoryView{}, err
		}
		pw := newPowerSums(starts)
		for _, s := range samples {
			pw.add(s)
		}
		pw.fill(points)
		counterEnergy(points, starts, samples, lookback)
	} else {
		// Up to years of minutes: summed as they are read, never held.
		pw := newPowerSums(starts)
		err := h.DB.EachSample(id, starts[0], starts[n], func(s store.Sample) error {
			pw.add(s)
			return nil
		})
		if err != nil {
			return web.HistoryView{}, err
		}
		pw.fill(points)
		slots, err := h.DB.Intervals(id, starts[0], starts[n])
		if err != nil {
			return web.HistoryView{}, err
		}
		intervalEnergy(points, starts, slots)
	}
	return web.HistoryView{Meter: id, From: h.Config.SiteTime(starts[0]), To: h.Config.SiteTime(to), Step: step.String(), Points: points}, nil
}

func (h *Reader) knownMeter(id string) error {
	for _, m := range h.Config.Meters {
		if m.ID == id {
			return nil
		}
	}
	ok, err := h.DB.HasSamples(id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: no meter %q", web.ErrNotFound, id)
	}
	return nil
}

// steps returns the starts of the steps from the one holding from to the
// one holding the last instant before to, and the end of the last, in
// site time.
func (h *Reader) steps(from, to time.Time, step web.Step) ([]time.Time, error) {
	loc := h.Config.Location
	if loc == nil {
		loc = time.UTC
	}
	var out []time.Time
	t := floor(from, step, loc)
	for {
		out = append(out, t)
		if !t.Before(to) {
			break
		}
		if len(out) > web.MaxHistoryPoints {
			return nil, fmt.Errorf("%w: more than %d points in steps of %s; ask a longer step or a shorter range", web.ErrInvalid, web.MaxHistoryPoints, step)
		}
		t = next(t, step, loc)
	}
	return out, nil
}

// floor returns the start of the step holding t: for a day the site's
// midnight, else t truncated on the site's clock (the same instant as in
// UTC wherever the zone's offset is a whole number of steps).
func floor(t time.Time, step web.Step, loc *time.Location) time.Time {
	lt := t.In(loc)
	if step == web.StepDay {
		y, m, d := lt.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	_, off := lt.Zone()
	shift := time.Duration(off) * time.Second
	return lt.Add(shift).Truncate(time.Duration(step)).Add(-shift)
}

func next(t time.Time, step web.Step, loc *time.Location) time.Time {
	if step == web.StepDay {
		y, m, d := t.In(loc).Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
	return t.Add(time.Duration(step))
}

// stepOf returns the index of the step holding t, or -1 when t is outside
// them all; starts is sorted and ends with the last step's end.
func stepOf(starts []time.Time, t time.Time) int {
	i := sort.Search(len(starts), func(i int) bool { return starts[i].After(t) }) - 1
	if i < 0 || i >= len(starts)-1 {
		return -1
	}
	return i
}

// powerSums gathers each step's mean, least and greatest power from the
// samples in it, one sample at a time.
type powerSums struct {
	starts []time.Time
	accs   []powerAcc
}

type powerAcc struct {
	n             int64
	sum, min, max int64
}

func newPowerSums(starts []time.Time) *powerSums {
	return &powerSums{starts: starts, accs: make([]powerAcc, len(starts)-1)}
}

// add counts s in its step; a sample outside the steps or without a
// reading is left out.
func (p *powerSums) add(s store.Sample) {
	i := stepOf(p.starts, s.Minute)
	if i < 0 || s.Readings == 0 {
		return
	}
	a := &p.accs[i]
	if a.n == 0 || s.MinW < a.min {
		a.min = s.MinW
	}
	if a.n == 0 || s.MaxW > a.max {
		a.max = s.MaxW
	}
	a.sum += s.AvgW
	a.n++
}

// fill sets each point's power from its step's samples.
func (p *powerSums) fill(points []web.HistoryPoint) {
	for i, a := range p.accs {
		if a.n == 0 {
			continue
		}
		avg, lo, hi := store.MeanW(a.sum, a.n), a.min, a.max
		points[i].AvgW, points[i].MinW, points[i].MaxW = &avg, &lo, &hi
	}
}

// counterEnergy fills each point's energy from the counters of the
// samples: the last known counter of its step less the last known counter
// of the step before. samples start at lookback, one step before the
// first.
func counterEnergy(points []web.HistoryPoint, starts []time.Time, samples []store.Sample, lookback time.Time) {
	// last[i+1] is the last counter known in step i; last[0] the one in
	// the step before the first.
	last := make([]int64, len(points)+1)
	for i := range last {
		last[i] = store.UnknownWh
	}
	for _, s := range samples {
		if s.ImportWh < 0 {
			continue
		}
		if s.Minute.Before(starts[0]) {
			if !s.Minute.Before(lookback) {
				last[0] = s.ImportWh
			}
			continue
		}
		if i := stepOf(starts, s.Minute); i >= 0 {
			last[i+1] = s.ImportWh
		}
	}
	for i := range points {
		before, end := last[i], last[i+1]
		if before < 0 || end < 0 || end < before {
			continue
		}
		kwh := meter.FormatKWh(end - before)
		points[i].KWh = &kwh
	}
}

// intervalEnergy fills each point's energy with the 15-minute slots that
// start in its step; a step with no slot stays null.
func intervalEnergy(points []web.HistoryPoint, starts []time.Time, slots []store.Interval) {
	sums := make([]int64, len(points))
	seen := make([]bool, len(points))
	for _, sl := range slots {
		if i := stepOf(starts, sl.Start); i >= 0 {
			sums[i] += sl.Wh
			seen[i] = true
		}
	}
	for i := range points {
		if seen[i] {
			kwh := meter.FormatKWh(sums[i])
			points[i].KWh = &kwh
		}
	}
}

// usagePage is how many ledger entries are read at a time.
const usagePage = 1000

// usageClockMargin is how far before a usage range the ledger is still
// read: a wall clock stepped back by less than this cannot hide a charge.
const usageClockMargin = 48 * time.Hour

// Usage implements web.History: the tenant's charge entries, by the day
// (site time) their energy was used, in all and by tariff window. A tenant
// is known while it is in the configuration, and after it left it while
// its ledger is kept (always).
func (h *Reader) Usage(tenant string, from, to time.Time) (web.UsageView, error) {
	if _, ok := h.Config.Tenant(tenant); !ok {
		if _, err := h.DB.Account(tenant); errors.Is(err, store.ErrNoAccount) {
			return web.UsageView{}, fmt.Errorf("%w: no tenant %q", web.ErrNotFound, tenant)
		} else if err != nil {
			return web.UsageView{}, err
		}
	}
	starts, err := h.steps(from, to, web.StepDay)
	if err != nil {
		return web.UsageView{}, err
	}
	type sum struct {
		wh    int64
		money billing.Money
	}
	n := len(starts) - 1
	days := make([]map[string]*sum, n)
	// The ledger is read newest first, in commit order: a charge for
	// energy used long ago (a meter back after days offline) may be among
	// the newest, but none is committed before the energy it bills was
	// used (From ≤ Time). So the reading stops at the first page whose
	// entries were all committed before the range began — less a margin
	// for the wall clock stepping back, which the gateway reports — rather
	// than going through years of ledger for one day's chart.
	stopBefore := starts[0].Add(-usageClockMargin)
	var before uint64
	for {
		page, err := h.DB.Entries(tenant, before, usagePage)
		if err != nil {
			return web.UsageView{}, err
		}
		older := 0
		for _, e := range page {
			if e.Time.Before(stopBefore) {
				older++
			}
			if e.Kind != store.Charge {
				continue
			}
			used := e.Time
			if e.From != nil {
				used = *e.From
			}
			i := stepOf(starts, used)
			if i < 0 {
				continue
			}
			if days[i] == nil {
				days[i] = make(map[string]*sum)
			}
			s := days[i][e.Window]
			if s == nil {
				s = &sum{}
				days[i][e.Window] = s
			}
			s.wh += e.Wh
			s.money -= e.Amount // a charge is a debit
		}
		if len(page) < usagePage || older == len(page) {
			break
		}
		before = page[len(page)-1].ID
	}
	v := web.UsageView{Tenant: tenant, From: h.Config.SiteTime(starts[0]), To: h.Config.SiteTime(to), Step: "day", Days: make([]web.UsageDay, n)}
	var totalWh int64
	var totalMoney billing.Money
	for i := range v.Days {
		st := h.Config.SiteTime(starts[i])
		d := web.UsageDay{Date: st.Format(time.DateOnly), T: st, Windows: []web.UsageWindow{}}
		var wh int64
		var money billing.Money
		for _, name := range windowOrder(days[i]) {
			s := days[i][name]
			d.Windows = append(d.Windows, web.UsageWindow{Window: name, KWh: meter.FormatKWh(s.wh), Amount: s.money.String()})
			wh, money = wh+s.wh, money+s.money
		}
		d.KWh, d.Amount = meter.FormatKWh(wh), money.String()
		totalWh, totalMoney = totalWh+wh, totalMoney+money
		v.Days[i] = d
	}
	v.Total = web.UsageWindow{KWh: meter.FormatKWh(totalWh), Amount: totalMoney.String()}
	return v, nil
}

// windowRank orders the usual tariff windows from dearest to cheapest,
// as a Chinese time-of-use bill lists them; any other window follows, by
// name.
var windowRank = map[string]int{"sharp": 0, "peak": 1, "flat": 2, "valley": 3}

func windowOrder[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, iok := windowRank[names[i]]
		rj, jok := windowRank[names[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return names[i] < names[j]
	})
	return names
}
