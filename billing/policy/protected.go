package policy

import (
	"time"
)

// ProtectedSpec is when cut-offs must not happen, as the YAML config writes
// it (under protected_hours:). Times and dates are the site's wall clock.
type ProtectedSpec struct {
	Nightly  []Window `yaml:"daily"`    // windows every day, e.g. {from: "22:00", to: "08:00"} (may cross midnight)
	Weekends bool     `yaml:"weekends"` // all of Saturday and Sunday
	Holidays []string `yaml:"holidays"` // "2026-10-01" dates, all day
}

// Window is a stretch of every day, [From, To) in wall-clock "HH:MM"
// (00:00 to 24:00). A To before From runs across midnight: 22:00 to 08:00
// is the night.
type Window struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Protected is a checked set of protected hours. It is immutable and safe
// to copy and share. The zero Protected protects no time.
type Protected struct {
	loc      *time.Location
	daily    []span // parts of the day, a window across midnight as two
	weekends bool
	holidays map[civil]bool
}

// span is [from, to) in minutes after midnight, from < to <= 24:00.
type span struct{ from, to int }

// civil is a wall-clock date.
type civil struct {
	y int
	m time.Month
	d int
}

const minutesPerDay = 24 * 60

// maxChain bounds EndOf's walk from one protected window into the next.
// NewProtected refuses daily windows that cover the whole day, so a walk
// ends within a day of the last listed holiday; the bound only makes sure
// that no Protected, however built, can make it loop.
const maxChain = 10_000

// NewProtected checks spec and builds its protected hours, read in loc,
// the site's time zone. It returns every problem found, and the zero
// Protected when there is any; otherwise the problems are nil. A spec is
// refused when a window's from or to is not "HH:MM" from 00:00 to 24:00 or
// they are equal, when the daily windows together cover the whole day (no
// cut-off could ever happen), when a holiday is not a "YYYY-MM-DD" date or
// is listed twice, and when loc is nil.
func NewProtected(spec ProtectedSpec, loc *time.Location) (Protected, []Problem) {
	var ps problems
	if loc == nil {
		ps.add("", "no time zone; protected hours are the site's wall-clock times")
	}
	p := Protected{loc: loc, weekends: spec.Weekends}
	var covered [minutesPerDay]bool
	for i, w := range spec.Nightly {
		f := indexed("daily", i)
		from, okFrom := parseClock(f+".from", w.From, &ps)
		to, okTo := parseClock(f+".to", w.To, &ps)
		if !okFrom || !okTo {
			continue
		}
		if from == to || from == minutesPerDay && to == 0 {
			ps.add(f+".to", "%s is where the window starts; a window needs a length (from 22:00 to 08:00 runs across midnight)", w.To)
			continue
		}
		if from < to {
			p.daily = append(p.daily, span{from, to})
		} else {
			p.daily = append(p.daily, span{from, minutesPerDay}, span{0, to})
		}
	}
	for _, s := range p.daily {
		for m := s.from; m < s.to; m++ {
			covered[m] = true
		}
	}
	if len(p.daily) > 0 && !containsFalse(covered[:]) {
		ps.add("daily", "the windows cover the whole day, so no cut-off could ever happen")
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
		if p.holidays == nil {
			p.holidays = map[civil]bool{}
		}
		p.holidays[c] = true
	}
	if len(ps) > 0 {
		return Protected{}, ps
	}
	return p, nil
}

func containsFalse(bs []bool) bool {
	for _, b := range bs {
		if !b {
			return true
		}
	}
	return false
}

// parseClock reads "HH:MM" (00:00 to 24:00) as minutes after midnight.
func parseClock(field, s string, ps *problems) (int, bool) {
	if s == "" {
		ps.add(field, "missing; want a time of day like 22:00")
		return 0, false
	}
	if len(s) == 5 && s[2] == ':' && isDigits(s[:2]) && isDigits(s[3:]) {
		h := int(s[0]-'0')*10 + int(s[1]-'0')
		m := int(s[3]-'0')*10 + int(s[4]-'0')
		if m < 60 && (h < 24 || h == 24 && m == 0) {
			return h*60 + m, true
		}
	}
	ps.add(field, "want a time of day HH:MM from 00:00 to 24:00, got %q", s)
	return 0, false
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Contains reports whether t is in protected hours: inside a daily window,
// on a Saturday or Sunday when weekends are protected, or on a listed
// holiday, all read on the site's wall clock. Windows include their start
// and exclude their end.
func (p Protected) Contains(t time.Time) bool {
	_, ok := p.windowEnd(t)
	return ok
}

// EndOf returns the end of the protected time that contains t, following
// windows that chain (Friday 22:00 into the weekend into Monday's night
// until Monday 08:00), in the site's time zone; t itself when t is not
// protected. A cut-off due at t happens at EndOf(t).
func (p Protected) EndOf(t time.Time) time.Time {
	for range maxChain {
		end, ok := p.windowEnd(t)
		if !ok || !end.After(t) {
			break
		}
		t = end
	}
	return t
}

// windowEnd returns the latest end among the protected stretches that
// contain t, each at most a day long, so that EndOf chains them.
func (p Protected) windowEnd(t time.Time) (time.Time, bool) {
	if len(p.daily) == 0 && !p.weekends && len(p.holidays) == 0 {
		return t, false
	}
	if p.loc != nil {
		t = t.In(p.loc)
	}
	loc := t.Location()
	y, m, d := t.Date()
	var end time.Time
	found := false
	later := func(e time.Time) {
		if !found || e.After(end) {
			end, found = e, true
		}
	}
	wd := t.Weekday()
	if p.weekends && (wd == time.Saturday || wd == time.Sunday) || p.holidays[civil{y, m, d}] {
		later(time.Date(y, m, d+1, 0, 0, 0, 0, loc))
	}
	// Compared on the wall clock, to the nanosecond, so that 07:59:59.9
	// is still inside a window that ends at 08:00.
	hh, mm, ss := t.Clock()
	wall := time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second + time.Duration(t.Nanosecond())
	for _, s := range p.daily {
		if time.Duration(s.from)*time.Minute <= wall && wall < time.Duration(s.to)*time.Minute {
			later(time.Date(y, m, d, 0, s.to, 0, 0, loc))
		}
	}
	return end, found
}
