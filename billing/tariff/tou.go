package tariff

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"mallgrid/billing"
)

// Day plan kinds, the values of DaySpec.Days.
const (
	DaysWeekday = "weekday"
	DaysWeekend = "weekend"
	DaysHoliday = "holiday"
	DaysAll     = "all"
)

// rateRank orders the tou rate names from dearest to cheapest as tariffs
// usually price them; -1 is a name that is not one.
func rateRank(name string) int {
	switch name {
	case "sharp":
		return 0
	case "peak":
		return 1
	case "flat":
		return 2
	case "valley":
		return 3
	}
	return -1
}

// civil is a wall-clock date.
type civil struct {
	y int
	m time.Month
	d int
}

// planSet is the day plans of the base or of a season, resolved: holiday
// falls back to weekend, and an "all" plan is both weekday and weekend.
type planSet struct {
	weekday, weekend, holiday *dayPlan
}

// tou prices energy by the window of the day it was used in.
type tou struct {
	name     string
	base     planSet
	seasons  [13]*planSet // by month; nil: the base plans
	holidays map[civil]bool
	fps      []fieldPrice
}

func (t *tou) Name() string { return t.name }

func (t *tou) Split(from, to time.Time, wh, monthWh int64) ([]Part, error) {
	segs, err := split(from, to, wh, monthWh, t.plan)
	if err != nil || segs == nil {
		return nil, err
	}
	return ratedParts(segs), nil
}

// plan is the day plan of a wall-clock date: the season's plans on its
// months, else the base plans; the holiday plan on a listed holiday, else
// by the day of the week.
func (t *tou) plan(y int, m time.Month, d int, wd time.Weekday) *dayPlan {
	set := &t.base
	if s := t.seasons[m]; s != nil {
		set = s
	}
	switch {
	case t.holidays[civil{y, m, d}]:
		return set.holiday
	case wd == time.Saturday || wd == time.Sunday:
		return set.weekend
	}
	return set.weekday
}

func (t *tou) MaxPrice() billing.Price { return maxPrice(t.fps) }

func (t *tou) prices() []fieldPrice { return t.fps }

// touBuilder carries what the checks of one tou spec share.
type touBuilder struct {
	spec  Spec
	ps    *problems
	rates map[string]rate // every name in spec.Rates; price 0 if it did not parse
	names string          // the names in spec.Rates, for messages
	used  map[string]bool // rates some window uses
}

func newTOU(spec Spec, ps *problems) *tou {
	onlyFor(spec, KindTOU, ps)
	b := &touBuilder{spec: spec, ps: ps, rates: map[string]rate{}, used: map[string]bool{}}
	t := &tou{name: spec.Name, holidays: map[civil]bool{}}

	names := make([]string, 0, len(spec.Rates))
	for name := range spec.Rates {
		names = append(names, name)
	}
	// Known names in their usual order, then unknown ones: map order
	// would make the problems list differ from run to run.
	slices.SortFunc(names, func(a, b string) int {
		ra, rb := rateRank(a), rateRank(b)
		if ra < 0 {
			ra = 4
		}
		if rb < 0 {
			rb = 4
		}
		return cmp.Or(cmp.Compare(ra, rb), strings.Compare(a, b))
	})
	b.names = strings.Join(names, ", ")
	if len(names) == 0 {
		ps.add("rates", `missing; want a price for each rate the windows use, like peak: "1.20"`)
	}
	for _, name := range names {
		f := "rates." + name
		if rateRank(name) < 0 {
			ps.add(f, "unknown rate; want sharp, peak, flat or valley")
			continue
		}
		p := parsePrice(f, spec.Rates[name], ps)
		b.rates[name] = rate{name: name, price: p}
		t.fps = append(t.fps, fieldPrice{f, p})
	}

	if set, ok := b.planSet("days", spec.Days); ok {
		t.base = set
	}
	seasonOf := map[int]int{}
	for s, season := range spec.Seasons {
		f := indexed("seasons", s)
		if len(season.Months) == 0 {
			ps.add(f+".months", "missing; want the months (1 to 12) the season's day plans apply to")
		}
		var months []int
		for j, m := range season.Months {
			mf := indexed(f+".months", j)
			o, dup := seasonOf[m]
			switch {
			case m < 1 || m > 12:
				ps.add(mf, "want a month from 1 to 12, got %d", m)
			case dup && o == s:
				ps.add(mf, "month %d is listed twice", m)
			case dup:
				ps.add(mf, "month %d is already in %s", m, indexed("seasons", o))
			default:
				seasonOf[m] = s
				months = append(months, m)
			}
		}
		if set, ok := b.planSet(f+".days", season.Days); ok {
			for _, m := range months {
				t.seasons[m] = &set
			}
		}
	}

	listed := map[civil]int{}
	for i, h := range spec.Holidays {
		f := indexed("holidays", i)
		d, err := time.Parse(time.DateOnly, h)
		if err != nil {
			ps.add(f, "want a date like 2026-10-01, got %q", h)
			continue
		}
		c := civil{d.Year(), d.Month(), d.Day()}
		if j, dup := listed[c]; dup {
			ps.add(f, "%s is already listed at %s", h, indexed("holidays", j))
			continue
		}
		listed[c] = i
		t.holidays[c] = true
	}

	// A rate no window uses is most likely a window that names the wrong
	// one, and would still count against the price cap.
	for _, name := range names {
		if rateRank(name) >= 0 && !b.used[name] {
			ps.add("rates."+name, "no window uses it")
		}
	}
	return t
}

// planSet checks the day plans at path and resolves them; ok is false if
// any is wrong.
func (b *touBuilder) planSet(path string, days []DaySpec) (set planSet, ok bool) {
	const want = "want weekday and weekend plans, or one all plan"
	if len(days) == 0 {
		b.ps.add(path, "missing; %s", want)
		return set, false
	}
	n := len(*b.ps)
	plans := map[string]*dayPlan{}
	first := map[string]int{}
	kindsOK := true
	for i, d := range days {
		f := indexed(path, i)
		switch d.Days {
		case DaysWeekday, DaysWeekend, DaysHoliday, DaysAll:
			if j, dup := first[d.Days]; dup {
				b.ps.add(f+".days", "a second %s plan; the first is %s", d.Days, indexed(path, j))
			} else {
				first[d.Days] = i
			}
		case "":
			b.ps.add(f+".days", "missing; want weekday, weekend, holiday or all")
			kindsOK = false
		default:
			b.ps.add(f+".days", "want weekday, weekend, holiday or all, got %q", d.Days)
			kindsOK = false
		}
		if p := b.dayPlan(f, d.Windows); p != nil && plans[d.Days] == nil {
			plans[d.Days] = p
		}
	}
	if all, ok := first[DaysAll]; ok {
		for _, k := range []string{DaysWeekday, DaysWeekend} {
			if j, ok := first[k]; ok {
				b.ps.add(indexed(path, j)+".days", "%s beside the all plan at %s, which already covers every day", k, indexed(path, all))
			}
		}
		set = planSet{weekday: plans[DaysAll], weekend: plans[DaysAll]}
	} else {
		if kindsOK {
			for _, k := range []string{DaysWeekday, DaysWeekend} {
				if _, ok := first[k]; !ok {
					b.ps.add(path, "no %s plan; %s", k, want)
				}
			}
		}
		set = planSet{weekday: plans[DaysWeekday], weekend: plans[DaysWeekend]}
	}
	set.holiday = cmp.Or(plans[DaysHoliday], set.weekend)
	return set, len(*b.ps) == n
}

// dayPlan checks the windows of the day plan at path and builds it; nil
// means a problem was reported.
func (b *touBuilder) dayPlan(path string, windows []WindowSpec) *dayPlan {
	wpath := path + ".windows"
	if len(windows) == 0 {
		b.ps.add(wpath, "missing; want windows that cover 00:00 to 24:00")
		return nil
	}
	type win struct {
		i, from, to int
		r           rate
	}
	ws := make([]win, 0, len(windows))
	ok := true
	for j, w := range windows {
		f := indexed(wpath, j)
		from, okFrom := b.clock(f+".from", w.From)
		to, okTo := b.clock(f+".to", w.To)
		if okFrom && okTo && from >= to {
			b.ps.add(f+".to", "%s is not after from %s; a window across midnight is written as two, ending at 24:00 and starting at 00:00", w.To, w.From)
			okTo = false
		}
		r, okRate := b.rate(f+".rate", w.Rate)
		ok = ok && okFrom && okTo && okRate
		ws = append(ws, win{j, from, to, r})
	}
	if !ok {
		return nil
	}
	slices.SortStableFunc(ws, func(a, b win) int { return cmp.Compare(a.from, b.from) })
	plan := &dayPlan{}
	pos, reach := 0, -1 // covered up to pos, by window reach
	for _, w := range ws {
		if w.from > pos {
			b.ps.add(wpath, "nothing covers %s to %s", hhmm(pos), hhmm(w.from))
			ok = false
		}
		if w.from < pos {
			b.ps.add(indexed(wpath, w.i)+".from", "overlaps %s from %s to %s", indexed(wpath, reach), hhmm(w.from), hhmm(min(pos, w.to)))
			ok = false
		}
		if w.to > pos {
			plan.edges = append(plan.edges, max(w.from, pos))
			plan.rates = append(plan.rates, w.r)
			pos, reach = w.to, w.i
		}
	}
	if pos < minutesPerDay {
		b.ps.add(wpath, "nothing covers %s to 24:00", hhmm(pos))
		ok = false
	}
	if !ok {
		return nil
	}
	plan.edges = append(plan.edges, minutesPerDay)
	return plan
}

// clock reads "HH:MM" (00:00 to 24:00) as minutes after midnight.
func (b *touBuilder) clock(field, s string) (int, bool) {
	if s == "" {
		b.ps.add(field, "missing; want a time of day like 08:00")
		return 0, false
	}
	var h, m int
	if len(s) == 5 && s[2] == ':' && isDigits(s[:2]) && isDigits(s[3:]) {
		h = int(s[0]-'0')*10 + int(s[1]-'0')
		m = int(s[3]-'0')*10 + int(s[4]-'0')
		if m < 60 && (h < 24 || h == 24 && m == 0) {
			return h*60 + m, true
		}
	}
	b.ps.add(field, "want a time of day HH:MM from 00:00 to 24:00, got %q", s)
	return 0, false
}

// rate looks up the rate a window names.
func (b *touBuilder) rate(field, name string) (rate, bool) {
	have := b.names
	if have == "" {
		have = "none given"
	}
	if name == "" {
		b.ps.add(field, "missing; want one of the rates (%s)", have)
		return rate{}, false
	}
	if _, ok := b.spec.Rates[name]; !ok {
		b.ps.add(field, "%q is not one of the rates (%s)", name, have)
		return rate{}, false
	}
	b.used[name] = true
	return b.rates[name], true
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// hhmm writes minutes after midnight as "HH:MM".
func hhmm(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
