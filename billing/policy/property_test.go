package policy

import (
	"math/rand/v2"
	"testing"
	"time"

	"mallgrid/billing"
)

// Over random runs of charges, top-ups, flags, time passing and clocks
// stepping back, the relays obey the package's rules at every evaluation:
//
//   - they are never opened inside protected hours or under an active
//     flag, nor before the stored CutOffAt, nor before ExhaustedAt + grace
//     in stored times or in real elapsed time;
//   - they are closed under an active flag and once the balance reaches
//     the restore level;
//   - they are open only when cut off, and change only with an event that
//     says so;
//   - evaluating again changes nothing and tells nobody, and nothing
//     changes before NextChange.
//
// Protected hours stop cut-offs; an account cut before a window stays cut
// through it (see the package doc), so "never open in protected hours" is
// checked as "never opened in protected hours".
func TestEvaluate_Property(t *testing.T) {
	loc := shanghai(t)
	prot := mustProtected(t, mallHours(), loc)
	ratings := []Rating{
		mustRating(t, ratingA()),
		mustRating(t, RatingSpec{Name: "strict", Warning1: "30", Warning2: "0", Overdraft: "0", Grace: "0s", Restore: "0"}),
		mustRating(t, RatingSpec{Name: "B", Warning1: "500", Warning2: "200", Overdraft: "0.50", Grace: "30m", Restore: "100"}),
		mustRating(t, RatingSpec{Name: "long", Warning1: "100", Warning2: "99.99", Overdraft: "1000", Grace: "72h", Restore: "0"}),
	}
	rng := rand.New(rand.NewPCG(7, 11))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	const runs, steps = 300, 400
	var cuts, restores, holds int
	for run := range runs {
		r := ratings[run%len(ratings)]
		real := start.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		var offset time.Duration // wall clock = real + offset; only ever steps back
		bal := billing.Money(rng.Int64N(int64(300 * billing.Yuan)))
		var flag *Protection
		var prev Status
		var realExhausted time.Time
		for i := range steps {
			real = real.Add(randomStep(rng))
			if rng.IntN(50) == 0 {
				offset -= time.Duration(rng.Int64N(int64(26 * time.Hour)))
			}
			now := real.Add(offset)
			bal = randomBalance(rng, bal)
			switch rng.IntN(40) {
			case 0:
				flag = &Protection{Reason: "random", Until: now.Add(time.Duration(rng.Int64N(int64(50*time.Hour))) - time.Hour)}
			case 1:
				flag = &Protection{Reason: "permanent"}
			case 2, 3:
				flag = nil
			}
			in := Input{Balance: bal, Rating: r, Protected: prot, Flag: flag, Now: now}
			d := Evaluate(prev, in)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("run %d step %d (%s, now %s, balance %s, flag %v): %s → %s closed=%v events %v: "+format,
					append([]any{run, i, r.Name(), now.Format(time.DateTime), bal, flag, showStatus(prev, loc), showStatus(d.Next, loc), d.Closed, d.Events}, args...)...)
			}
			if !d.Next.ExhaustedAt.IsZero() && !d.Next.ExhaustedAt.Equal(prev.ExhaustedAt) {
				realExhausted = real
			}
			opened := prev.Closed() && !d.Closed
			if opened {
				cuts++
				switch {
				case prot.Contains(now):
					fail("opened in protected hours")
				case flag.Active(now):
					fail("opened under an active flag")
				case now.Before(d.Next.CutOffAt):
					fail("opened before CutOffAt")
				case now.Before(d.Next.ExhaustedAt.Add(r.Grace())):
					fail("opened before ExhaustedAt + grace")
				case real.Before(realExhausted.Add(r.Grace())):
					fail("opened %s after exhaustion in real time; grace is %s", real.Sub(realExhausted), r.Grace())
				case countKind(d.Events, EventCutOff) != 1:
					fail("opened without one cut_off event")
				}
			}
			if !prev.Closed() && d.Closed {
				if countKind(d.Events, EventRestored)+countKind(d.Events, EventProtectedHold) != 1 {
					fail("closed without one restored or protected_hold event")
				}
			}
			if countKind(d.Events, EventRestored) > 0 {
				restores++
			}
			if countKind(d.Events, EventProtectedHold) > 0 {
				holds++
			}
			if flag.Active(now) && !d.Closed {
				fail("open under an active flag")
			}
			if bal >= r.Restore() && !d.Closed {
				fail("open at or above the restore level %s", r.Restore())
			}
			if d.Closed != d.Next.Closed() || !d.Closed && d.Next.State != StateCutOff {
				fail("relay state does not follow the status")
			}
			if !d.Closed && (d.Next.CutSince.Before(d.Next.ExhaustedAt.Add(r.Grace())) || prot.Contains(d.Next.CutSince)) {
				fail("open since a cut at a time no cut may happen")
			}
			for _, k := range []EventKind{EventWarning1, EventWarning2, EventOverdraft, EventCutOffScheduled, EventCutOffCancelled, EventCutOff, EventRestored, EventProtectedHold} {
				if countKind(d.Events, k) > 1 {
					fail("%s given twice", k)
				}
			}
			if again := Evaluate(d.Next, in); !sameStatus(again.Next, d.Next) || again.Closed != d.Closed || again.Events != nil {
				fail("evaluated again: %s closed=%v events %v", showStatus(again.Next, loc), again.Closed, again.Events)
			}
			nc := NextChange(prev, in)
			if !nc.Equal(NextChange(d.Next, in)) {
				fail("NextChange %s for prev but %s for next", nc, NextChange(d.Next, in))
			}
			if !nc.IsZero() && !nc.After(now) {
				fail("NextChange %s is not after now", nc)
			}
			horizon := nc
			if horizon.IsZero() {
				horizon = now.Add(72 * time.Hour)
			}
			later := in
			later.Now = now.Add(1 + time.Duration(rng.Int64N(int64(horizon.Sub(now)))))
			if later.Now.Before(horizon) {
				if l := Evaluate(d.Next, later); !sameStatus(l.Next, d.Next) || l.Closed != d.Closed || l.Events != nil {
					fail("changed at %s, before NextChange %s: %s closed=%v events %v", later.Now, nc, showStatus(l.Next, loc), l.Closed, l.Events)
				}
			}
			prev = d.Next
		}
	}
	// The runs must reach the interesting cases, or they prove little.
	t.Logf("%d cut-offs, %d restores, %d holds", cuts, restores, holds)
	if cuts < 100 || restores < 100 || holds < 100 {
		t.Errorf("got %d cut-offs, %d restores, %d holds over %d runs; want at least 100 of each", cuts, restores, holds, runs)
	}
}

// randomStep is how long passes between evaluations: mostly minutes,
// sometimes hours, now and then days (a gateway that was down).
func randomStep(rng *rand.Rand) time.Duration {
	switch n := rng.IntN(100); {
	case n < 70:
		return time.Duration(rng.Int64N(int64(20 * time.Minute)))
	case n < 97:
		return time.Duration(rng.Int64N(int64(6 * time.Hour)))
	default:
		return time.Duration(rng.Int64N(int64(4 * 24 * time.Hour)))
	}
}

// randomBalance moves b on: mostly down by a charge, now and then up by a
// few fen (a reversed charge), so balances hover at levels as well as
// cross them, and up by a top-up, seldom while there is credit and more
// often once there is none, as tenants do.
func randomBalance(rng *rand.Rand, b billing.Money) billing.Money {
	topUp := 2
	if b < 0 {
		topUp = 10
	}
	switch n := rng.IntN(100); {
	case n < topUp:
		return b + billing.Money(rng.Int64N(int64(400*billing.Yuan)))
	case n < topUp+10:
		return b + billing.Money(rng.Int64N(int64(5*billing.Fen)))
	default:
		return b - billing.Money(rng.Int64N(int64(10*billing.Yuan)))
	}
}

func countKind(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}
