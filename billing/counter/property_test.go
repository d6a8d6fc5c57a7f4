package counter

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// trueMeter is the meter as it really is: its counter, its rate counters,
// and every Wh it counted (the sum of its positive counter steps).
type trueMeter struct {
	wh       int64
	rates    [4]int64
	drawn    int64
	drawnBy  [4]int64
	clockOff time.Duration // how wrong its clock is (some KPM33Bs: 21 years)
}

// obs is one observation of the meter as the gateway gets it, and whether
// it is noise (anything but a fresh reading of the true meter).
type obs struct {
	r     Reading
	noise string // "", "zero", "dup", "spike", "stale"
}

// observe generates a noisy observation log of a true meter, and returns it
// with the meter's final truth. The noise is what real meters and networks
// do: all-zero frames, messages delivered again, garbage spikes, readings
// stamped before the latest one, and readings lost (the meter offline
// across a gap). Resets happen with no load (a meter is exchanged or reset
// with its circuit off), and the readings just before and after one are not
// lost: energy nobody observed cannot be billed by any rule.
func observe(rng *rand.Rand, lim Limits, steps int) ([]obs, trueMeter) {
	tm := trueMeter{wh: rng.Int64N(100_000_000)}
	if rng.IntN(3) == 0 {
		tm.clockOff = -(21*365*24*time.Hour + 24*time.Hour)
	}
	tm.rates[2] = tm.wh // a meter installed long ago: all on "flat"
	n := lim.resetAfter()
	now := t0
	var (
		log       []obs
		last      *Reading // the latest fresh reading emitted
		mustSee   = 1      // fresh readings that must not be lost, from now on
		resetNext bool
	)
	emit := func(r Reading, noise string) {
		log = append(log, obs{r: r, noise: noise})
	}
	for i := 0; i < steps; i++ {
		dt := time.Duration(1+rng.IntN(60)) * time.Minute
		now = now.Add(dt)
		switch {
		case i == 0: // the first reading is the baseline: energy before it is not the gateway's
		case resetNext:
			tm.wh, tm.rates = 0, [4]int64{}
			resetNext = false
			mustSee = n + 1
		default:
			maxDraw := lim.MaxWhPerHour * int64(dt/time.Second) / 3600
			var d int64
			switch p := rng.IntN(10); {
			case p < 2: // idle
			case p < 3:
				d = maxDraw
			default:
				d = rng.Int64N(maxDraw + 1)
			}
			rate := rng.IntN(4)
			tm.wh += d
			tm.rates[rate] += d
			tm.drawn += d
			tm.drawnBy[rate] += d
		}
		// A reset needs the counter high enough that the new one stays
		// below it for the whole run, and none near the end of the log.
		if mustSee <= 1 && i < steps-n-3 && tm.wh > int64(n+2)*lim.MaxWhPerHour && rng.IntN(25) == 0 {
			resetNext = true
			mustSee = 1
		}
		lost := mustSee == 0 && rng.IntN(8) == 0 && i < steps-1
		if mustSee > 0 {
			mustSee--
		}
		if !lost {
			rates := tm.rates
			r := Reading{Wh: tm.wh, At: now, MeterTime: now.Add(tm.clockOff), RatesWh: &rates}
			emit(r, "")
			last = &r
		}
		// Noise within seconds after the step's reading, before the next.
		for sec := 1; sec <= 10 && rng.IntN(3) == 0; sec++ {
			at := now.Add(time.Duration(sec) * time.Second)
			switch k := rng.IntN(4); {
			case k == 0:
				emit(Reading{At: at, MeterTime: at.Add(tm.clockOff), ZeroFrame: true}, "zero")
			case k == 1 && last != nil:
				dup := *last
				dup.At = at
				emit(dup, "dup")
			case k == 2 && last != nil:
				emit(Reading{Wh: tm.wh + 1_000_000_000_000 + rng.Int64N(1_000_000), At: at, MeterTime: at.Add(tm.clockOff)}, "spike")
			case k == 3 && last != nil:
				stale := last.At.Add(-time.Duration(1+rng.IntN(3600)) * time.Second)
				emit(Reading{Wh: rng.Int64N(tm.wh + 1), At: stale, MeterTime: stale.Add(tm.clockOff)}, "stale")
			}
		}
	}
	return log, tm
}

// Over random noisy logs, the energy billed is exactly the energy the true
// meter counted — per rate too — no billed energy comes from noise, no
// refused reading moves the baseline, and billed spans follow each other
// without overlapping.
func TestCheck_Property(t *testing.T) {
	for seed := uint64(0); seed < 400; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x6d616c6c))
			lim := CircuitLimits(int64(5+rng.IntN(120)), int64(1+2*rng.IntN(2)))
			lim.ResetAfter = 1 + rng.IntN(5)
			log, tm := observe(rng, lim, 200+rng.IntN(200))

			var (
				st       State
				billed   int64
				billedBy [4]int64
				lastTo   time.Time
				resets   int
			)
			for i, o := range log {
				out := Check(st, o.r, lim)
				switch {
				case o.noise != "" && (out.Wh != 0 || !out.Verdict.Refused()):
					t.Fatalf("obs %d (%s, %d Wh): %s, %d Wh; want refused, no energy", i, o.noise, o.r.Wh, out.Verdict, out.Wh)
				case out.Verdict.Refused() && (out.Wh != 0 || !reflect.DeepEqual(out.Next.Baseline, st.Baseline)):
					t.Fatalf("obs %d: refused (%s) but %d Wh billed or baseline moved", i, out.Verdict, out.Wh)
				case o.r.ZeroFrame && !reflect.DeepEqual(out.Next, st):
					t.Fatalf("obs %d: zero frame changed the state", i)
				case o.noise == "" && out.Verdict != Baseline && out.Verdict != Accepted && out.Verdict != LowerPending &&
					out.Verdict != Reset && out.Verdict != Duplicate:
					t.Fatalf("obs %d: a fresh reading of the true meter (%d Wh) was %s", i, o.r.Wh, out.Verdict)
				}
				if out.Wh > 0 {
					if out.From.Before(lastTo) || !out.From.Before(out.To) {
						t.Fatalf("obs %d: span [%s, %s) after a span ending %s", i, out.From, out.To, lastTo)
					}
					lastTo = out.To
					if out.RatesWh == nil {
						t.Fatalf("obs %d: %s of %d Wh without rate rises", i, out.Verdict, out.Wh)
					}
					parts, ok := out.RateParts()
					if !ok || parts != *out.RatesWh {
						t.Fatalf("obs %d: RateParts = %v, %v; want %v", i, parts, ok, *out.RatesWh)
					}
					for k, v := range out.RatesWh {
						billedBy[k] += v
					}
				}
				if out.Verdict == Reset {
					resets++
				}
				checkSpans(t, i, st, out)
				billed += out.Wh
				st = out.Next
			}
			if billed != tm.drawn || billedBy != tm.drawnBy {
				t.Errorf("billed %d Wh %v over %d observations, %d resets; want %d Wh %v counted by the true meter",
					billed, billedBy, len(log), resets, tm.drawn, tm.drawnBy)
			}
			if st.Baseline.Wh != tm.wh || len(st.Lower) != 0 {
				t.Errorf("final baseline %d Wh, %d lower pending; want %d, none", st.Baseline.Wh, len(st.Lower), tm.wh)
			}
		})
	}
}

// The generator must produce what the property is about, or the property
// proves nothing.
func TestCheck_PropertyCoversTheRules(t *testing.T) {
	seen := map[Verdict]int{}
	for seed := uint64(0); seed < 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x6d616c6c))
		lim := CircuitLimits(int64(5+rng.IntN(120)), int64(1+2*rng.IntN(2)))
		lim.ResetAfter = 1 + rng.IntN(5)
		log, _ := observe(rng, lim, 200+rng.IntN(200))
		var st State
		for _, o := range log {
			out := Check(st, o.r, lim)
			seen[out.Verdict]++
			st = out.Next
		}
	}
	for _, v := range []Verdict{Baseline, Accepted, Duplicate, ZeroFrame, LowerPending, Reset, Quarantined, ClockBack} {
		if seen[v] < 20 {
			t.Errorf("verdict %s seen %d times over the generated logs; want at least 20 (all: %v)", v, seen[v], seen)
		}
	}
}

// checkSpans: an outcome's spans add up to its energy, each on one chain,
// never negative, and a chain that moves on says where it broke.
func checkSpans(t *testing.T, i int, before State, out Outcome) {
	t.Helper()
	var sum int64
	for _, sp := range out.Spans {
		if sp.Wh() <= 0 || !sp.From.Before(sp.To) {
			t.Fatalf("obs %d: span %+v: want energy > 0 over a time span", i, sp)
		}
		sum += sp.Wh()
	}
	if sum != out.Wh {
		t.Fatalf("obs %d: spans add up to %d Wh; want %d", i, sum, out.Wh)
	}
	if out.Next.Chain != before.Chain && (out.Break == nil || out.Break.Chain != out.Next.Chain) {
		t.Fatalf("obs %d: chain %d → %d without its break (%+v)", i, before.Chain, out.Next.Chain, out.Break)
	}
	if n := len(out.Spans); n > 0 && out.Spans[n-1].Chain == out.Next.Chain && out.Spans[n-1].ToWh != out.Next.Baseline.Wh {
		t.Fatalf("obs %d: last span ends at %d Wh; the baseline is %d", i, out.Spans[n-1].ToWh, out.Next.Baseline.Wh)
	}
}
