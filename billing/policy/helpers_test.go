package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Shanghai on a gateway image without /usr/share/zoneinfo

	"mallgrid/billing"
)

func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatalf("LoadLocation: %v", err)
	}
	return loc
}

// wall reads "2006-01-02 15:04" (or with ":05") as wall time in loc.
func wall(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	layout := "2006-01-02 15:04"
	if strings.Count(s, ":") == 2 {
		layout += ":05"
	}
	tm, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		t.Fatalf("ParseInLocation(%q): %v", s, err)
	}
	return tm
}

func money(t testing.TB, s string) billing.Money {
	t.Helper()
	m, err := billing.ParseMoney(s)
	if err != nil {
		t.Fatalf("ParseMoney(%q): %v", s, err)
	}
	return m
}

func mustRating(t testing.TB, spec RatingSpec) Rating {
	t.Helper()
	r, ps := NewRating(spec)
	if ps != nil {
		t.Fatalf("NewRating(%+v): %v", spec, ps)
	}
	return r
}

func mustProtected(t testing.TB, spec ProtectedSpec, loc *time.Location) Protected {
	t.Helper()
	p, ps := NewProtected(spec, loc)
	if ps != nil {
		t.Fatalf("NewProtected(%+v): %v", spec, ps)
	}
	return p
}

// ratingA is the rating most tests use: warnings at 100 and 50 yuan, 50
// yuan of credit, two hours' grace, restored at 20 yuan.
func ratingA() RatingSpec {
	return RatingSpec{Name: "A", Warning1: "100", Warning2: "50", Overdraft: "50", Grace: "2h", Restore: "20"}
}

// mallHours is a mall's protected time: nights from 22:00 to 08:00,
// weekends, the Dragon Boat Festival (Friday 2026-06-19) and the National
// Day week (2026-10-01 to 07, which takes in a weekend).
func mallHours() ProtectedSpec {
	return ProtectedSpec{
		Nightly:  []Window{{From: "22:00", To: "08:00"}},
		Weekends: true,
		Holidays: []string{"2026-06-19", "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07"},
	}
}

// step is one evaluation of a scenario and what it should give. Events
// are written by showEvent.
type step struct {
	at     string // wall time in Shanghai
	bal    string // balance, yuan
	flag   *Protection
	state  State
	closed bool
	events []string
}

// runSteps evaluates steps in turn, each on the Status the one before
// gave, and checks each answer, and that evaluating it again changes
// nothing and tells nobody anything.
func runSteps(t *testing.T, r Rating, p Protected, start Status, steps []step) Status {
	t.Helper()
	loc := shanghai(t)
	prev := start
	for i, s := range steps {
		in := Input{Balance: money(t, s.bal), Rating: r, Protected: p, Flag: s.flag, Now: wall(t, loc, s.at)}
		d := Evaluate(prev, in)
		var got []string
		for _, e := range d.Events {
			got = append(got, showEvent(e, in.Now, loc))
		}
		if d.Next.State != s.state || d.Closed != s.closed || !slices.Equal(got, s.events) {
			t.Errorf("step %d (%s, %s): got %s closed=%v events %q; want %s closed=%v events %q",
				i, s.at, s.bal, d.Next.State, d.Closed, got, s.state, s.closed, s.events)
		}
		if d.Closed != d.Next.Closed() {
			t.Errorf("step %d: got Closed %v but Next.Closed() %v", i, d.Closed, d.Next.Closed())
		}
		again := Evaluate(d.Next, in)
		if !sameStatus(again.Next, d.Next) || again.Closed != d.Closed || again.Events != nil {
			t.Errorf("step %d evaluated again: got %s closed=%v events %v; want %s closed=%v and no events",
				i, showStatus(again.Next, loc), again.Closed, again.Events, showStatus(d.Next, loc), d.Closed)
		}
		prev = d.Next
	}
	return prev
}

// showEvent writes an event as its kind, then "@time" when At is not now,
// and its hold and reason: "cutoff_scheduled @Tue 06-02 08:00 protected_hours".
func showEvent(e Event, now time.Time, loc *time.Location) string {
	s := string(e.Kind)
	switch {
	case e.At.IsZero():
		s += " @never"
	case !e.At.Equal(now):
		s += " @" + e.At.In(loc).Format("Mon 01-02 15:04")
	}
	if e.Hold != "" {
		s += " " + string(e.Hold)
	}
	if e.Reason != "" {
		s += " " + fmt.Sprintf("%q", e.Reason)
	}
	return s
}

func showStatus(s Status, loc *time.Location) string {
	tm := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(loc).Format("Mon 01-02 15:04:05")
	}
	return fmt.Sprintf("{%s exhausted %s cut-off %s since %s hold %q}", s.State, tm(s.ExhaustedAt), tm(s.CutOffAt), tm(s.CutSince), s.Hold)
}

func sameStatus(a, b Status) bool {
	return a.State == b.State && a.ExhaustedAt.Equal(b.ExhaustedAt) && a.CutOffAt.Equal(b.CutOffAt) &&
		a.CutSince.Equal(b.CutSince) && a.Hold == b.Hold
}
