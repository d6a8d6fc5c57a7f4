package policy

import (
	"slices"
	"testing"
	"time"

	"mallgrid/billing"
)

// A tenant runs down through every state, is cut off, and tops up.
func TestEvaluate_EveryTransition(t *testing.T) {
	loc := shanghai(t)
	r, p := mustRating(t, ratingA()), mustProtected(t, mallHours(), loc)
	runSteps(t, r, p, Status{}, []step{
		{at: "2026-06-01 09:00", bal: "200", state: StateNormal, closed: true},
		{at: "2026-06-01 09:05", bal: "100.00", state: StateWarning1, closed: true, events: []string{"warning_1"}},
		{at: "2026-06-01 09:10", bal: "50.00", state: StateWarning2, closed: true, events: []string{"warning_2"}},
		{at: "2026-06-01 09:15", bal: "-0.01", state: StateOverdraft, closed: true, events: []string{"overdraft"}},
		{at: "2026-06-01 09:20", bal: "-50.00", state: StateOverdraft, closed: true},
		{at: "2026-06-01 10:00", bal: "-50.01", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 12:00"}},
		{at: "2026-06-01 11:59", bal: "-52", state: StateExhausted, closed: true},
		{at: "2026-06-01 12:00", bal: "-52", state: StateCutOff, closed: false, events: []string{"cut_off"}},
		{at: "2026-06-01 12:30", bal: "-60", state: StateCutOff, closed: false},
		{at: "2026-06-01 13:00", bal: "0", state: StateCutOff, closed: false},
		{at: "2026-06-01 13:01", bal: "19.99", state: StateCutOff, closed: false},
		{at: "2026-06-01 13:02", bal: "20", state: StateWarning2, closed: true, events: []string{"restored"}},
		{at: "2026-06-01 13:03", bal: "500", state: StateNormal, closed: true},
	})
}

// Each level is "at or below" a warning level and "below" zero and the
// overdraft limit, to the micro-yuan.
func TestEvaluate_Boundaries(t *testing.T) {
	r := mustRating(t, ratingA())
	now := wall(t, shanghai(t), "2026-06-01 10:00")
	for _, tt := range []struct {
		bal  string
		want State
	}{
		{"100.000001", StateNormal}, {"100", StateWarning1}, {"50.000001", StateWarning1}, {"50", StateWarning2},
		{"0.000001", StateWarning2}, {"0", StateWarning2}, {"-0.000001", StateOverdraft}, {"-50", StateOverdraft},
		{"-50.000001", StateExhausted}, {"-1000000000", StateExhausted},
	} {
		d := Evaluate(Status{}, Input{Balance: money(t, tt.bal), Rating: r, Now: now})
		if d.Next.State != tt.want || !d.Closed {
			t.Errorf("balance %s: got %s closed=%v; want %s closed=true", tt.bal, d.Next.State, d.Closed, tt.want)
		}
	}
}

// An account leaves a state for a better one only when the balance less
// Hysteresis is in the better band, and gives no event for it; the same
// balance, falling, gives the worse state at once.
func TestEvaluate_Hysteresis(t *testing.T) {
	loc := shanghai(t)
	r := mustRating(t, ratingA())
	now := wall(t, loc, "2026-06-01 10:00")
	exhausted := Status{State: StateExhausted, ExhaustedAt: now.Add(-time.Hour), CutOffAt: now.Add(time.Hour)}
	for _, tt := range []struct {
		name string
		from Status
		bal  string
		want State
		ev   []string
	}{
		{"warning 1 at its level", Status{State: StateWarning1}, "100", StateWarning1, nil},
		{"warning 1 half a yuan above", Status{State: StateWarning1}, "100.50", StateWarning1, nil},
		{"warning 1 a yuan above", Status{State: StateWarning1}, "101", StateWarning1, nil},
		{"warning 1 cleared", Status{State: StateWarning1}, "101.000001", StateNormal, nil},
		{"warning 2 a yuan above", Status{State: StateWarning2}, "51", StateWarning2, nil},
		{"warning 2 to warning 1", Status{State: StateWarning2}, "51.01", StateWarning1, nil},
		{"warning 2 to normal", Status{State: StateWarning2}, "300", StateNormal, nil},
		{"overdraft just above zero", Status{State: StateOverdraft}, "0.999999", StateOverdraft, nil},
		{"overdraft cleared", Status{State: StateOverdraft}, "1", StateWarning2, nil},
		{"warning 1 falls", Status{State: StateWarning1}, "50", StateWarning2, []string{"warning_2"}},
		{"normal falls to overdraft: one event", Status{}, "-10", StateOverdraft, []string{"overdraft"}},
		{"normal falls to exhaustion: one event", Status{}, "-80", StateExhausted, []string{"cutoff_scheduled @Mon 06-01 12:00"}},
		{"exhausted, top-up not clear of the limit", exhausted, "-49.000001", StateExhausted, nil},
		{"exhausted, top-up a yuan clear", exhausted, "-49", StateOverdraft, []string{"cutoff_cancelled"}},
		{"exhausted, top-up to normal", exhausted, "150", StateNormal, []string{"cutoff_cancelled"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(tt.from, Input{Balance: money(t, tt.bal), Rating: r, Now: now})
			var got []string
			for _, e := range d.Events {
				got = append(got, showEvent(e, now, loc))
			}
			if d.Next.State != tt.want || !slices.Equal(got, tt.ev) {
				t.Errorf("got %s %q; want %s %q", d.Next.State, got, tt.want, tt.ev)
			}
		})
	}
}

func TestEvaluate_ProtectedHours(t *testing.T) {
	loc := shanghai(t)
	r, p := mustRating(t, ratingA()), mustProtected(t, mallHours(), loc)
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"grace ends inside the night: cut at its end", []step{
			{at: "2026-06-01 21:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Tue 06-02 08:00 protected_hours"}},
			{at: "2026-06-01 23:00", bal: "-61", state: StateExhausted, closed: true},
			{at: "2026-06-02 07:59:59", bal: "-62", state: StateExhausted, closed: true},
			{at: "2026-06-02 08:00", bal: "-62", state: StateCutOff, closed: false, events: []string{"cut_off"}},
		}},
		{"grace ends at the night's start: moved", []step{
			{at: "2026-06-01 20:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Tue 06-02 08:00 protected_hours"}},
		}},
		{"grace ends a minute before the night: cut", []step{
			{at: "2026-06-01 19:59", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 21:59"}},
			{at: "2026-06-01 21:59", bal: "-60", state: StateCutOff, closed: false, events: []string{"cut_off"}},
			{at: "2026-06-01 23:00", bal: "-60", state: StateCutOff, closed: false},
		}},
		{"Friday night into the weekend: Monday 08:00", []step{
			{at: "2026-06-05 20:30", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-08 08:00 protected_hours"}},
			{at: "2026-06-06 12:00", bal: "-70", state: StateExhausted, closed: true},
			{at: "2026-06-08 00:00", bal: "-80", state: StateExhausted, closed: true},
			{at: "2026-06-08 07:59", bal: "-80", state: StateExhausted, closed: true},
			{at: "2026-06-08 08:00", bal: "-80", state: StateCutOff, closed: false, events: []string{"cut_off"}},
		}},
		{"a holiday Friday, then the weekend", []step{
			{at: "2026-06-18 21:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-22 08:00 protected_hours"}},
		}},
		{"grace ends on a holiday morning", []step{
			{at: "2026-06-19 10:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-22 08:00 protected_hours"}},
		}},
		{"the National Day week", []step{
			{at: "2026-09-30 20:30", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Thu 10-08 08:00 protected_hours"}},
			{at: "2026-10-04 12:00", bal: "-60", state: StateExhausted, closed: true},
			{at: "2026-10-08 08:00", bal: "-60", state: StateCutOff, closed: false, events: []string{"cut_off"}},
		}},
		{"cut-off found due at night (gateway was down): held to morning", []step{
			{at: "2026-06-01 17:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 19:00"}},
			{at: "2026-06-01 23:30", bal: "-60", state: StateExhausted, closed: true, events: []string{"protected_hold @Tue 06-02 08:00 protected_hours"}},
			{at: "2026-06-02 03:00", bal: "-60", state: StateExhausted, closed: true},
			{at: "2026-06-02 08:00", bal: "-60", state: StateCutOff, closed: false, events: []string{"cut_off"}},
		}},
		{"restored during protected hours", []step{
			{at: "2026-06-01 17:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 19:00"}},
			{at: "2026-06-01 19:00", bal: "-60", state: StateCutOff, closed: false, events: []string{"cut_off"}},
			{at: "2026-06-01 23:00", bal: "100", state: StateWarning1, closed: true, events: []string{"restored"}},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, r, p, Status{}, tt.steps) })
	}
}

func TestEvaluate_ProtectionFlag(t *testing.T) {
	loc := shanghai(t)
	r, p := mustRating(t, ratingA()), mustProtected(t, mallHours(), loc)
	at := func(s string) time.Time { return wall(t, loc, s) }
	// Exhausted at 10:00 on Monday 2026-06-01, due at 12:00.
	exhausted := Status{State: StateExhausted, ExhaustedAt: at("2026-06-01 10:00"), CutOffAt: at("2026-06-01 12:00")}
	cut := Status{State: StateCutOff, ExhaustedAt: at("2026-06-01 10:00"), CutOffAt: at("2026-06-01 12:00"), CutSince: at("2026-06-01 12:00")}
	flag := func(until string) *Protection {
		if until == "" {
			return &Protection{Reason: "cold store"}
		}
		return &Protection{Reason: "cold store", Until: at(until)}
	}
	for _, tt := range []struct {
		name  string
		from  Status
		steps []step
	}{
		{"expired before the cut-off is due", exhausted, []step{
			{at: "2026-06-01 12:00", bal: "-60", flag: flag("2026-06-01 11:00"), state: StateCutOff, events: []string{"cut_off"}},
		}},
		{"expires at the due time", exhausted, []step{
			{at: "2026-06-01 12:00", bal: "-60", flag: flag("2026-06-01 12:00"), state: StateCutOff, events: []string{"cut_off"}},
		}},
		{"expires after the due time: held, then cut at expiry", exhausted, []step{
			{at: "2026-06-01 11:00", bal: "-60", flag: flag("2026-06-01 15:00"), state: StateExhausted, closed: true},
			{at: "2026-06-01 12:00", bal: "-60", flag: flag("2026-06-01 15:00"), state: StateExhausted, closed: true,
				events: []string{`protected_hold @Mon 06-01 15:00 flag "cold store"`}},
			{at: "2026-06-01 14:59:59", bal: "-60", flag: flag("2026-06-01 15:00"), state: StateExhausted, closed: true},
			{at: "2026-06-01 15:00", bal: "-60", flag: flag("2026-06-01 15:00"), state: StateCutOff, events: []string{"cut_off"}},
		}},
		{"no expiry: held until lifted", exhausted, []step{
			{at: "2026-06-01 12:00", bal: "-60", flag: flag(""), state: StateExhausted, closed: true,
				events: []string{`protected_hold @never flag "cold store"`}},
			{at: "2026-07-01 12:00", bal: "-300", flag: flag(""), state: StateExhausted, closed: true},
			{at: "2026-07-01 12:01", bal: "-300", state: StateCutOff, events: []string{"cut_off"}},
		}},
		{"set on an account already cut off: power on, books unchanged", cut, []step{
			{at: "2026-06-01 13:00", bal: "-60", state: StateCutOff},
			{at: "2026-06-01 14:00", bal: "-60", flag: flag("2026-06-02 09:00"), state: StateCutOff, closed: true,
				events: []string{`protected_hold @Tue 06-02 09:00 flag "cold store"`}},
			{at: "2026-06-01 20:00", bal: "0", flag: flag("2026-06-02 09:00"), state: StateCutOff, closed: true},
			{at: "2026-06-02 09:00", bal: "0", flag: flag("2026-06-02 09:00"), state: StateCutOff, events: []string{"cut_off"}},
		}},
		{"expires at night: held to morning", cut, []step{
			{at: "2026-06-01 14:00", bal: "-60", flag: flag("2026-06-01 23:00"), state: StateCutOff, closed: true,
				events: []string{`protected_hold @Mon 06-01 23:00 flag "cold store"`}},
			{at: "2026-06-01 23:00", bal: "-60", flag: flag("2026-06-01 23:00"), state: StateCutOff, closed: true,
				events: []string{"protected_hold @Tue 06-02 08:00 protected_hours"}},
			{at: "2026-06-02 07:00", bal: "-60", state: StateCutOff, closed: true},
			{at: "2026-06-02 08:00", bal: "-60", state: StateCutOff, events: []string{"cut_off"}},
		}},
		{"restored while held", cut, []step{
			{at: "2026-06-01 14:00", bal: "-60", flag: flag(""), state: StateCutOff, closed: true,
				events: []string{`protected_hold @never flag "cold store"`}},
			{at: "2026-06-01 15:00", bal: "-20", flag: flag(""), state: StateCutOff, closed: true},
			{at: "2026-06-01 16:00", bal: "20", flag: flag(""), state: StateWarning2, closed: true, events: []string{"restored"}},
			{at: "2026-06-01 17:00", bal: "20", state: StateWarning2, closed: true},
		}},
		{"warnings still given under a flag", Status{}, []step{
			{at: "2026-06-01 10:00", bal: "90", flag: flag(""), state: StateWarning1, closed: true, events: []string{"warning_1"}},
			{at: "2026-06-01 10:05", bal: "-51", flag: flag(""), state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 12:05"}},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, r, p, tt.from, tt.steps) })
	}
}

func TestEvaluate_TopUpDuringGrace(t *testing.T) {
	loc := shanghai(t)
	r, p := mustRating(t, ratingA()), mustProtected(t, mallHours(), loc)
	t.Run("cancels, and a new exhaustion has a new grace", func(t *testing.T) {
		runSteps(t, r, p, Status{}, []step{
			{at: "2026-06-01 10:00", bal: "-51", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 12:00"}},
			{at: "2026-06-01 11:00", bal: "-49", state: StateOverdraft, closed: true, events: []string{"cutoff_cancelled"}},
			{at: "2026-06-01 12:00", bal: "-49", state: StateOverdraft, closed: true},
			{at: "2026-06-01 13:00", bal: "-50.01", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 15:00"}},
			{at: "2026-06-01 15:00", bal: "-50.01", state: StateCutOff, events: []string{"cut_off"}},
		})
	})
	t.Run("to the limit only: still cut", func(t *testing.T) {
		runSteps(t, r, p, Status{}, []step{
			{at: "2026-06-01 10:00", bal: "-51", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 12:00"}},
			{at: "2026-06-01 11:00", bal: "-50", state: StateExhausted, closed: true},
			{at: "2026-06-01 12:00", bal: "-50", state: StateCutOff, events: []string{"cut_off"}},
		})
	})
	t.Run("no overdraft: the restore level cancels", func(t *testing.T) {
		r := mustRating(t, RatingSpec{Name: "C", Warning1: "50", Warning2: "10", Overdraft: "0", Grace: "1h", Restore: "0"})
		runSteps(t, r, p, Status{}, []step{
			{at: "2026-06-01 10:00", bal: "-0.01", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 11:00"}},
			{at: "2026-06-01 10:30", bal: "0.50", state: StateWarning2, closed: true, events: []string{"cutoff_cancelled"}},
		})
	})
}

func TestEvaluate_RestoreLevel(t *testing.T) {
	loc := shanghai(t)
	p := mustProtected(t, mallHours(), loc)
	for _, tt := range []struct {
		restore string
		bal     string
		want    State
		closed  bool
	}{
		{"20", "19.999999", StateCutOff, false},
		{"20", "20", StateWarning2, true},
		{"0", "-0.01", StateCutOff, false},
		{"0", "0", StateWarning2, true},
		{"150", "149.99", StateCutOff, false},
		{"150", "150", StateNormal, true},
	} {
		spec := ratingA()
		spec.Restore = tt.restore
		r := mustRating(t, spec)
		now := wall(t, loc, "2026-06-02 10:00")
		cut := Status{State: StateCutOff, ExhaustedAt: now.Add(-26 * time.Hour), CutOffAt: now.Add(-24 * time.Hour), CutSince: now.Add(-24 * time.Hour)}
		d := Evaluate(cut, Input{Balance: money(t, tt.bal), Rating: r, Protected: p, Now: now})
		if d.Next.State != tt.want || d.Closed != tt.closed {
			t.Errorf("restore %s, balance %s: got %s closed=%v; want %s closed=%v", tt.restore, tt.bal, d.Next.State, d.Closed, tt.want, tt.closed)
		}
		if tt.closed && (len(d.Events) != 1 || d.Events[0].Kind != EventRestored || !sameStatus(d.Next, Status{State: tt.want})) {
			t.Errorf("restore %s, balance %s: got %v, %s; want one restored event and a fresh status", tt.restore, tt.bal, d.Events, showStatus(d.Next, loc))
		}
	}
}

// The same input twice gives the same decision; the decision's status
// evaluated again gives no events (runSteps checks that at every step of
// every scenario too).
func TestEvaluate_Repeated(t *testing.T) {
	loc := shanghai(t)
	r, p := mustRating(t, ratingA()), mustProtected(t, mallHours(), loc)
	now := wall(t, loc, "2026-06-01 10:00")
	in := Input{Balance: money(t, "-80"), Rating: r, Protected: p, Now: now}
	a, b := Evaluate(Status{}, in), Evaluate(Status{}, in)
	if !sameStatus(a.Next, b.Next) || a.Closed != b.Closed || len(a.Events) != 1 || len(b.Events) != 1 || a.Events[0] != b.Events[0] {
		t.Errorf("got %+v then %+v; want the same decision twice", a, b)
	}
	prev := a.Next
	for i := range 5 {
		d := Evaluate(prev, in)
		if d.Events != nil || !sameStatus(d.Next, prev) {
			t.Errorf("evaluation %d: got %v, %s; want no events and %s", i+2, d.Events, showStatus(d.Next, loc), showStatus(prev, loc))
		}
		prev = d.Next
	}
}

func TestEvaluate_ClockStepsBack(t *testing.T) {
	loc := shanghai(t)
	r, p := mustRating(t, ratingA()), mustProtected(t, mallHours(), loc)
	t.Run("a day back during grace: no cut before the stored time", func(t *testing.T) {
		runSteps(t, r, p, Status{}, []step{
			{at: "2026-06-02 10:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Tue 06-02 12:00"}},
			{at: "2026-06-02 11:00", bal: "-60", state: StateExhausted, closed: true},
			{at: "2026-06-01 12:30", bal: "-61", state: StateExhausted, closed: true},
			{at: "2026-06-01 18:00", bal: "-62", state: StateExhausted, closed: true},
			{at: "2026-06-02 11:59", bal: "-63", state: StateExhausted, closed: true},
			{at: "2026-06-02 12:00", bal: "-63", state: StateCutOff, events: []string{"cut_off"}},
		})
	})
	t.Run("a day back after the cut: stays cut, no new events", func(t *testing.T) {
		runSteps(t, r, p, Status{}, []step{
			{at: "2026-06-02 10:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Tue 06-02 12:00"}},
			{at: "2026-06-02 12:00", bal: "-60", state: StateCutOff, events: []string{"cut_off"}},
			{at: "2026-06-01 12:00", bal: "-60", state: StateCutOff},
		})
	})
	t.Run("a stored cut-off time later than the rating gives: kept", func(t *testing.T) {
		at := func(s string) time.Time { return wall(t, loc, s) }
		from := Status{State: StateExhausted, ExhaustedAt: at("2026-06-02 10:00"), CutOffAt: at("2026-06-02 16:00")}
		runSteps(t, r, p, from, []step{
			{at: "2026-06-02 12:00", bal: "-60", state: StateExhausted, closed: true},
			{at: "2026-06-02 15:59", bal: "-60", state: StateExhausted, closed: true},
			{at: "2026-06-02 16:00", bal: "-60", state: StateCutOff, events: []string{"cut_off"}},
		})
	})
	t.Run("a longer grace moves a pending cut-off later", func(t *testing.T) {
		spec := ratingA()
		spec.Grace = "3h"
		at := func(s string) time.Time { return wall(t, loc, s) }
		from := Status{State: StateExhausted, ExhaustedAt: at("2026-06-02 10:00"), CutOffAt: at("2026-06-02 12:00")}
		runSteps(t, mustRating(t, spec), p, from, []step{
			{at: "2026-06-02 11:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Tue 06-02 13:00"}},
			{at: "2026-06-02 12:00", bal: "-60", state: StateExhausted, closed: true},
			{at: "2026-06-02 13:00", bal: "-60", state: StateCutOff, events: []string{"cut_off"}},
		})
	})
}

func TestEvaluate_Odd(t *testing.T) {
	loc := shanghai(t)
	p := mustProtected(t, mallHours(), loc)
	t.Run("no grace: cut at once outside protected hours", func(t *testing.T) {
		r := mustRating(t, RatingSpec{Name: "D", Warning1: "100", Warning2: "0", Overdraft: "0", Grace: "0s", Restore: "0"})
		runSteps(t, r, p, Status{}, []step{
			{at: "2026-06-01 10:00", bal: "-0.01", state: StateCutOff, events: []string{"cutoff_scheduled", "cut_off"}},
		})
	})
	t.Run("a damaged state is rebuilt from the balance", func(t *testing.T) {
		runSteps(t, mustRating(t, ratingA()), p, Status{State: "cut_of", CutSince: wall(t, loc, "2026-06-01 09:00")}, []step{
			{at: "2026-06-01 10:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 12:00"}},
		})
	})
	t.Run("times left on a warning are dropped", func(t *testing.T) {
		now := wall(t, loc, "2026-06-01 10:00")
		d := Evaluate(Status{State: StateWarning1, ExhaustedAt: now, CutOffAt: now, Hold: HoldFlag}, Input{Balance: money(t, "90"), Rating: mustRating(t, ratingA()), Now: now})
		if !sameStatus(d.Next, Status{State: StateWarning1}) || d.Events != nil || !d.Closed {
			t.Errorf("got %s %v closed=%v; want warning_1 alone, no events, closed", showStatus(d.Next, loc), d.Events, d.Closed)
		}
	})
	t.Run("exhausted with no time recorded: grace from now", func(t *testing.T) {
		runSteps(t, mustRating(t, ratingA()), p, Status{State: StateExhausted}, []step{
			{at: "2026-06-01 10:00", bal: "-60", state: StateExhausted, closed: true, events: []string{"cutoff_scheduled @Mon 06-01 12:00"}},
		})
	})
	t.Run("zero rating and no protected hours", func(t *testing.T) {
		runSteps(t, Rating{}, Protected{}, Status{}, []step{
			{at: "2026-06-06 23:00", bal: "0", state: StateWarning2, closed: true, events: []string{"warning_2"}},
			{at: "2026-06-06 23:01", bal: "-0.01", state: StateCutOff, events: []string{"cutoff_scheduled", "cut_off"}},
		})
	})
	t.Run("balance at the bottom of Money's range", func(t *testing.T) {
		now := wall(t, loc, "2026-06-01 10:00")
		d := Evaluate(Status{State: StateOverdraft}, Input{Balance: billing.Money(-1 << 63), Rating: mustRating(t, ratingA()), Now: now})
		if d.Next.State != StateExhausted {
			t.Errorf("got %s; want exhausted", d.Next.State)
		}
	})
}

func TestNextChange(t *testing.T) {
	loc := shanghai(t)
	r, p := mustRating(t, ratingA()), mustProtected(t, mallHours(), loc)
	at := func(s string) time.Time { return wall(t, loc, s) }
	exhausted := Status{State: StateExhausted, ExhaustedAt: at("2026-06-01 10:00"), CutOffAt: at("2026-06-01 12:00")}
	cut := Status{State: StateCutOff, ExhaustedAt: at("2026-06-01 10:00"), CutOffAt: at("2026-06-01 12:00"), CutSince: at("2026-06-01 12:00")}
	for _, tt := range []struct {
		name string
		prev Status
		now  string
		bal  string
		flag *Protection
		want time.Time
	}{
		{"normal: nothing pending", Status{}, "2026-06-01 10:00", "500", nil, time.Time{}},
		{"becoming exhausted: the cut-off", Status{}, "2026-06-01 10:00", "-60", nil, at("2026-06-01 12:00")},
		{"grace running", exhausted, "2026-06-01 11:00", "-60", nil, at("2026-06-01 12:00")},
		{"grace running under a flag", exhausted, "2026-06-01 11:00", "-60", &Protection{Until: at("2026-06-01 18:00")}, at("2026-06-01 12:00")},
		{"held by a flag: its expiry", exhausted, "2026-06-01 13:00", "-60", &Protection{Until: at("2026-06-01 18:00")}, at("2026-06-01 18:00")},
		{"held by a flag without expiry", exhausted, "2026-06-01 13:00", "-60", &Protection{}, time.Time{}},
		{"grace ends at night: the morning", Status{}, "2026-06-01 21:00", "-60", nil, at("2026-06-02 08:00")},
		{"found due at night: the morning", exhausted, "2026-06-01 23:00", "-60", nil, at("2026-06-02 08:00")},
		{"cut off: only money", cut, "2026-06-01 13:00", "-60", nil, time.Time{}},
		{"cut off, held by a flag", cut, "2026-06-01 13:00", "-60", &Protection{Until: at("2026-06-01 23:00")}, at("2026-06-01 23:00")},
		{"cut now", exhausted, "2026-06-01 12:00", "-60", nil, time.Time{}},
	} {
		in := Input{Balance: money(t, tt.bal), Rating: r, Protected: p, Flag: tt.flag, Now: at(tt.now)}
		if got := NextChange(tt.prev, in); !got.Equal(tt.want) {
			t.Errorf("%s: got %v; want %v", tt.name, got, tt.want)
		}
	}
}
