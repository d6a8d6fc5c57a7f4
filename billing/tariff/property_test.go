package tariff

import (
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"mallgrid/billing"
)

// refRate is the rate an instant is priced at, read straight off the spec
// by the package doc's rules: a second statement of them, with no walking
// and no apportioning, to check Split against.
func refRate(t *testing.T, spec Spec, at time.Time) string {
	days := spec.Days
	for _, s := range spec.Seasons {
		if slices.Contains(s.Months, int(at.Month())) {
			days = s.Days
		}
	}
	plan := func(kind string) *DaySpec {
		for i := range days {
			if days[i].Days == kind {
				return &days[i]
			}
		}
		return nil
	}
	kind := DaysWeekday
	if wd := at.Weekday(); wd == time.Saturday || wd == time.Sunday {
		kind = DaysWeekend
	}
	if slices.Contains(spec.Holidays, at.Format(time.DateOnly)) {
		kind = DaysHoliday
	}
	p := plan(kind)
	if p == nil && kind == DaysHoliday {
		p = plan(DaysWeekend)
	}
	if p == nil {
		p = plan(DaysAll)
	}
	clock := at.Format("15:04") // "HH:MM" compares as text; "24:00" is after all
	for _, w := range p.Windows {
		if w.From <= clock && clock < w.To {
			return w.Rate
		}
	}
	t.Fatalf("refRate: no window at %s", at)
	return ""
}

// randomInterval draws an interval of up to 3 days in 2026–2027, on whole
// minutes half the time so that window edges are hit exactly, and an
// energy from 0 to 100 kWh, small half the time so that rounding matters.
func randomInterval(rng *rand.Rand, loc *time.Location) (from, to time.Time, wh int64) {
	const threeDays = 3 * 24 * time.Hour
	from = time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(time.Duration(rng.Int64N(2*365*24*60)) * time.Minute)
	d := time.Duration(rng.Int64N(3*24*60)+1) * time.Minute
	if rng.IntN(2) == 0 {
		from = from.Add(time.Duration(rng.Int64N(int64(time.Minute))))
		d = time.Duration(rng.Int64N(int64(threeDays))) + 1
	}
	if rng.IntN(2) == 0 {
		return from, from.Add(d), rng.Int64N(20)
	}
	return from, from.Add(d), rng.Int64N(100_001)
}

// checkTiling checks that parts tile [from, to) in order, add up to wh,
// never cross a month start, and hold their linear share within 1 Wh:
// each part's, or for tiered tariffs (whose parts split a month by
// energy, not time) each month's.
func checkTiling(t *testing.T, parts []Part, from, to time.Time, wh int64, byMonth bool) bool {
	t.Helper()
	if len(parts) == 0 || !parts[0].From.Equal(from) || !parts[len(parts)-1].To.Equal(to) {
		t.Errorf("Split(%s, %s, %d): parts do not start at from and end at to: %v", from, to, wh, parts)
		return false
	}
	var sum int64
	perMonth := map[int]struct{ wh, d int64 }{}
	for k, p := range parts {
		if k > 0 && !p.From.Equal(parts[k-1].To) {
			t.Errorf("Split(%s, %s, %d): part %d starts at %s; want %s", from, to, wh, k, p.From, parts[k-1].To)
			return false
		}
		if p.To.Before(p.From) || p.Wh < 0 {
			t.Errorf("Split(%s, %s, %d): part %d is %s", from, to, wh, k, showPart(p))
			return false
		}
		m := monthOf(p.From)
		if p.To.After(p.From) && monthOf(p.To.Add(-1)) != m {
			t.Errorf("Split(%s, %s, %d): part %d crosses a month start: %s", from, to, wh, k, showPart(p))
			return false
		}
		if !byMonth && !nearShare(p.Wh, int64(p.To.Sub(p.From)), wh, int64(to.Sub(from))) {
			t.Errorf("Split(%s, %s, %d): part %d got %s; want its linear share within 1 Wh", from, to, wh, k, showPart(p))
			return false
		}
		s := perMonth[m]
		perMonth[m] = struct{ wh, d int64 }{s.wh + p.Wh, s.d + int64(p.To.Sub(p.From))}
		sum += p.Wh
	}
	if sum != wh {
		t.Errorf("Split(%s, %s, %d): parts add up to %d Wh", from, to, wh, sum)
		return false
	}
	for m, s := range perMonth {
		if byMonth && !nearShare(s.wh, s.d, wh, int64(to.Sub(from))) {
			t.Errorf("Split(%s, %s, %d): month %d got %d Wh over %s; want its linear share within 1 Wh", from, to, wh, m, s.wh, time.Duration(s.d))
			return false
		}
	}
	return true
}

func monthOf(t time.Time) int { return t.Year()*12 + int(t.Month()) - 1 }

// nearShare reports whether got differs from wh × d ÷ total by less than
// 1: |got × total − wh × d| < total, in big integers.
func nearShare(got, d, wh, total int64) bool {
	diff := new(big.Int).Mul(big.NewInt(got), big.NewInt(total))
	diff.Sub(diff, new(big.Int).Mul(big.NewInt(wh), big.NewInt(d)))
	return diff.CmpAbs(big.NewInt(total)) < 0
}

// TestTOU_Split_Properties: over random intervals and energies in Shanghai
// and in a DST zone, the parts tile the interval, add up to wh, each holds
// its linear share within 1 Wh, and every instant of a part is priced as
// the spec says for that instant.
func TestTOU_Split_Properties(t *testing.T) {
	berlin := berlinSpec(
		WindowSpec{"00:00", "02:30", "valley"}, WindowSpec{"02:30", "03:00", "flat"},
		WindowSpec{"03:00", "06:00", "valley"}, WindowSpec{"06:00", "22:00", "flat"},
		WindowSpec{"22:00", "24:00", "valley"},
	)
	for _, zc := range []struct {
		zone string
		spec Spec
	}{{"Asia/Shanghai", shanghaiTOU()}, {"Europe/Berlin", berlin}} {
		t.Run(zc.zone, func(t *testing.T) {
			loc := loadLocation(t, zc.zone)
			tr := mustNew(t, zc.spec)
			rng := rand.New(rand.NewPCG(20260615, 1))
			for range 20_000 {
				from, to, wh := randomInterval(rng, loc)
				parts, err := tr.Split(from, to, wh, 0)
				if err != nil {
					t.Fatalf("Split(%s, %s, %d): %v", from, to, wh, err)
				}
				if wh == 0 {
					if parts != nil {
						t.Fatalf("Split(%s, %s, 0) = %v; want no parts", from, to, parts)
					}
					continue
				}
				if !checkTiling(t, parts, from, to, wh, false) {
					return
				}
				for k, p := range parts {
					if !p.To.After(p.From) {
						t.Fatalf("Split(%s, %s, %d): part %d is empty: %s", from, to, wh, k, showPart(p))
					}
					if k > 0 && p.Window == parts[k-1].Window && monthOf(p.From) == monthOf(parts[k-1].From) {
						t.Errorf("Split(%s, %s, %d): parts %d and %d could be one: %s, %s", from, to, wh, k-1, k, showPart(parts[k-1]), showPart(p))
					}
					inside := p.From.Add(time.Duration(rng.Int64N(int64(p.To.Sub(p.From)))))
					for _, at := range []time.Time{p.From, inside, p.To.Add(-1)} {
						want := refRate(t, zc.spec, at)
						if p.Window != want || p.Price != mustPrice(t, zc.spec.Rates[want]) {
							t.Fatalf("Split(%s, %s, %d): part %s covers %s, which is %s", from, to, wh, showPart(p), at, want)
						}
					}
				}
			}
		})
	}
}

// TestTiered_Split_Properties: the parts tile the interval and add up;
// each month's energy is its linear share; and the blocks are laid on the
// month-to-date counter in order, starting again at each month.
func TestTiered_Split_Properties(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	spec := tieredSpec()
	tr := mustNew(t, spec)
	limits := []int64{200_000, 400_000, 0}
	rng := rand.New(rand.NewPCG(20260615, 2))
	for range 20_000 {
		from, to, wh := randomInterval(rng, sh)
		mtd := rng.Int64N(500_000)
		parts, err := tr.Split(from, to, wh, mtd)
		if err != nil {
			t.Fatalf("Split(%s, %s, %d, %d): %v", from, to, wh, mtd, err)
		}
		if wh == 0 {
			continue
		}
		if !checkTiling(t, parts, from, to, wh, true) {
			return
		}
		counter := mtd
		for k, p := range parts {
			if k > 0 && monthOf(p.From) != monthOf(parts[k-1].From) {
				counter = 0
			}
			b := 0
			for limits[b] != 0 && counter >= limits[b] {
				b++
			}
			if p.Window != tierName(b) || p.Price != mustPrice(t, spec.Blocks[b].Price) {
				t.Fatalf("Split(%s, %s, %d, %d): part %s starts at %d Wh of the month; want tier %d", from, to, wh, mtd, showPart(p), counter, b+1)
			}
			if limits[b] != 0 && counter+p.Wh > limits[b] {
				t.Fatalf("Split(%s, %s, %d, %d): part %s runs past the block's %d Wh", from, to, wh, mtd, showPart(p), limits[b])
			}
			counter += p.Wh
		}
	}
}

// TestSplit_ChargeConservesMoney charges the parts of 1,000,000 random
// splits with billing.Charge, carrying each meter's remainder as the
// pipeline does: the fen posted plus the remainder held must equal the
// exact price of the parts' energy, after every split and at the end.
// Meters read back to back (intervals mostly minutes, some up to 3 days),
// restarting at a random time now and then so that the years stay near
// the present; the tiered meter keeps its month-to-date counter from its
// own parts.
func TestSplit_ChargeConservesMoney(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	type meter struct {
		tariff      Tariff
		at          time.Time
		month, mtd  int64
		rem         billing.Remainder
		posted      billing.Money
		exact       int64 // nano-yuan; ≤ 333,334 splits × 100 kWh × 1.50 yuan ≈ 5e16
		splits, whs int64
	}
	meters := []*meter{
		{tariff: mustNew(t, flatSpec())},
		{tariff: mustNew(t, shanghaiTOU())},
		{tariff: mustNew(t, tieredSpec())},
	}
	rng := rand.New(rand.NewPCG(20260615, 3))
	for i := range 1_000_000 {
		m := meters[i%len(meters)]
		if m.splits%1000 == 0 {
			m.at, _, _ = randomInterval(rng, sh)
			m.month, m.mtd = int64(monthOf(m.at)), rng.Int64N(500_000)
		}
		d := time.Duration(rng.Int64N(int64(15*time.Minute))) + 1
		if rng.IntN(10) == 0 {
			d = time.Duration(rng.Int64N(int64(72*time.Hour))) + 1
		}
		wh := rng.Int64N(100_001)
		if rng.IntN(2) == 0 {
			wh = rng.Int64N(50)
		}
		parts, err := m.tariff.Split(m.at, m.at.Add(d), wh, m.mtd)
		if err != nil {
			t.Fatalf("%s.Split: %v", m.tariff.Name(), err)
		}
		before := int64(m.posted)*1000 + int64(m.rem)
		var exact int64
		for _, p := range parts {
			fen, rem, err := billing.Charge(m.rem, p.Wh, p.Price)
			if err != nil {
				t.Fatalf("Charge(%d, %d, %s): %v", m.rem, p.Wh, p.Price, err)
			}
			if _, rest := fen.Fen(); rest != 0 {
				t.Fatalf("Charge posted %s, not whole fen", fen)
			}
			m.posted += fen
			m.rem = rem
			exact += int64(p.Price) * p.Wh
			if mo := int64(monthOf(p.From)); mo != m.month {
				m.month, m.mtd = mo, 0
			}
			m.mtd += p.Wh
		}
		if got := int64(m.posted)*1000 + int64(m.rem) - before; got != exact {
			t.Fatalf("%s split %d: posted and held %d nano-yuan more; want %d", m.tariff.Name(), m.splits, got, exact)
		}
		m.exact += exact
		m.at = m.at.Add(d)
		m.splits++
		m.whs += wh
	}
	for _, m := range meters {
		if got := int64(m.posted)*1000 + int64(m.rem); got != m.exact {
			t.Errorf("%s: posted %s + remainder %s = %d nano-yuan; want %d", m.tariff.Name(), m.posted, m.rem, got, m.exact)
		}
		t.Logf("%s: %d splits, %d Wh, posted %s yuan, remainder %s", m.tariff.Name(), m.splits, m.whs, m.posted, m.rem)
	}
}
