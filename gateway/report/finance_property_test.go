package report

import (
	"context"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// TestFinance_TotalsEqualLedger posts random ledgers (random tenants,
// kinds, windows, amounts and times around a month) and checks, for each,
// that the report's totals are the ledger's: Σ revenue by tenant = by
// category = by window = by day = the period's charges, summed here from
// the entries posted; and the balances reconcile (opening + the period's
// entries = closing; liability − receivables = closing; one month's
// closing is the next one's opening).
func TestFinance_TotalsEqualLedger(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run("", func(t *testing.T) {
			cfg := newMallConfig(t, t.TempDir())
			db := openDB(t, cfg)
			rng := rand.New(rand.NewPCG(seed, 14))
			accounts := []string{"T-101", "T-102", "T-201", "T-301", "T-GONE"}
			windows := []string{"peak", "flat", "valley", ""}
			start := time.Date(2026, 10, 25, 0, 0, 0, 0, shanghai)
			var times []time.Time
			for range 300 {
				times = append(times, start.Add(time.Duration(rng.Int64N(int64(45*24*time.Hour)))))
			}
			// Every third seed posts its entries in random time order (the
			// report then reads whole accounts); the others in time order
			// but with charges dated up to 20 minutes back, as a charge
			// dated at its slot's last reading is posted after entries
			// dated later, and at each midnight between months a top-up
			// posted just before a charge dated a moment before midnight.
			ordered := seed%3 != 0
			midnights := map[time.Time]bool{
				time.Date(2026, 11, 1, 0, 0, 0, 50e6, shanghai): true,
				time.Date(2026, 12, 1, 0, 0, 0, 50e6, shanghai): true,
			}
			for m := range midnights {
				times = append(times, m)
			}
			if ordered {
				sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
			}
			var posted []store.Entry
			var reversible []store.Entry // top-ups and allocations, with their ids
			for i, when := range times {
				acct := accounts[rng.IntN(len(accounts))]
				amount := billing.Money(rng.Int64N(20_000)+1) * billing.Fen
				e := store.Entry{Time: when, Account: acct}
				var err error
				if midnights[when] {
					// A top-up at 00:00:00.05, then a charge of the same
					// account dated 23:59:59.9, posted after it.
					top := store.Entry{Time: when, Account: acct, Kind: store.TopUp, Amount: amount, Ref: "M" + itoa(i), Channel: "cash", Actor: "till"}
					if _, _, err := db.PostTopUp(top); err != nil {
						t.Fatal(err)
					}
					posted = append(posted, top)
					e.Time, e.Kind, e.Amount, e.Wh, e.Window, e.Meter = when.Add(-150*time.Millisecond), store.Charge, -amount/10, 1_000, "valley", "M"
					if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{e}}); err != nil {
						t.Fatal(err)
					}
					posted = append(posted, e)
					continue
				}
				switch k := rng.IntN(10); {
				case k < 6:
					e.Kind, e.Amount, e.Wh, e.Window, e.Meter = store.Charge, -amount/10, rng.Int64N(50_000), windows[rng.IntN(len(windows))], "M"
					if ordered {
						e.Time = e.Time.Add(-time.Duration(rng.Int64N(int64(20 * time.Minute))))
					}
					_, err = db.CommitCycle(store.Cycle{Charges: []store.Entry{e}})
				case k < 8:
					e.Kind, e.Amount, e.Ref, e.Channel = store.TopUp, amount, "R"+itoa(i), []string{"cash", "wechat", "alipay", "bank"}[rng.IntN(4)]
					e.Actor = []string{"till", "books", ""}[rng.IntN(3)]
					var stored store.Entry
					stored, _, err = db.PostTopUp(e)
					reversible = append(reversible, stored)
				case k < 9:
					e.Kind, e.Amount, e.Wh = store.Allocation, -amount/20, rng.Int64N(9_000)
					var stored store.Entry
					stored, err = db.PostEntry(e)
					reversible = append(reversible, stored)
				case len(reversible) > 0 && rng.IntN(2) == 0:
					// Undo an earlier top-up or allocation, each once.
					j := rng.IntN(len(reversible))
					r := reversible[j]
					reversible = append(reversible[:j], reversible[j+1:]...)
					e.Account, e.Kind, e.Amount, e.Reverses, e.Note, e.Actor = r.Account, store.Reversal, -r.Amount, r.ID, "undo", "books"
					if r.Kind == store.Allocation {
						_, err = db.PostEntry(e) // a share alone: no correction, no reference
					} else {
						e.Ref = "V" + itoa(i)
						_, _, err = db.PostCorrection(e)
					}
				default:
					e.Kind, e.Amount, e.Ref, e.Note, e.Actor = store.Adjustment, amount/5*billing.Money(1-2*rng.IntN(2)), "A"+itoa(i), "fix", "books"
					_, _, err = db.PostCorrection(e)
				}
				if err != nil {
					t.Fatal(err)
				}
				posted = append(posted, e)
			}
			// Read in pages of 1, 2 and 3 entries, an account's span is the
			// same as in one page: the page boundaries lose nothing.
			accts, err := db.Accounts()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range accts {
				from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, shanghai), time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai)
				whole, err := readSpan(context.Background(), db, a, from, to, entriesPage)
				if err != nil {
					t.Fatal(err)
				}
				// Dated within the slack of their order, the accounts are
				// read around the month, not whole.
				if _, near, err := readSpanNear(context.Background(), db, a, from, to, entriesPage); err != nil {
					t.Fatal(err)
				} else if near != ordered {
					t.Errorf("%s: read around the month %v; entries in time order but for the slack %v", a.ID, near, ordered)
				}
				for _, size := range []int{1, 2, 3} {
					got, err := readSpan(context.Background(), db, a, from, to, size)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, whole) {
						t.Errorf("%s in pages of %d: %d entries, %s..%s; in one page %d, %s..%s", a.ID, size,
							len(got.Entries), got.Opening, got.Closing, len(whole.Entries), whole.Opening, whole.Closing)
					}
				}
			}
			var prevClosing *billing.Money
			months := []string{"2026-10", "2026-11", "2026-12"}
			for _, month := range months {
				f := buildReport(t, db, cfg, month)
				checkTotals(t, f, posted)
				if prevClosing != nil && f.Opening != *prevClosing {
					t.Errorf("%s: opening %s; the month before closed at %s", month, f.Opening, *prevClosing)
				}
				prevClosing = &f.Closing
			}
			checkEachInOneMonth(t, db, months)
		})
	}
}

// checkEachInOneMonth checks that the months, which hold every entry's
// date, list each entry of the ledger exactly once: in the month of its
// date, one account's and one month's span at a time.
func checkEachInOneMonth(t *testing.T, db *store.DB, months []string) {
	t.Helper()
	accts, err := db.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint64]string)
	for _, month := range months {
		p, err := MonthPeriod(month, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range accts {
			s, err := readSpan(context.Background(), db, a, p.From, p.To, entriesPage)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range s.Entries {
				if prev, ok := seen[e.ID]; ok {
					t.Errorf("entry %d (%s) in %s and in %s", e.ID, e.Time, prev, month)
				}
				seen[e.ID] = month
				if got := e.Time.In(shanghai).Format("2006-01"); got != month {
					t.Errorf("entry %d dated %s in %s", e.ID, e.Time, month)
				}
			}
		}
	}
	n := 0
	if err := db.EachEntry(func(e store.Entry) error {
		n++
		if _, ok := seen[e.ID]; !ok {
			t.Errorf("entry %d (%s, %s, %s) in no month", e.ID, e.Account, e.Kind, e.Time)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != len(seen) {
		t.Errorf("%d entries in the months; %d in the ledger", len(seen), n)
	}
}

func itoa(n int) string { return Cell{Kind: Count, N: int64(n)}.String() }

func checkTotals(t *testing.T, f *Finance, posted []store.Entry) {
	t.Helper()
	p := f.Period
	var revenue, alloc, topups, adjust, reversals, opening, closing billing.Money
	var wh int64
	balance := make(map[string]billing.Money)
	for _, e := range posted {
		if !e.Time.Before(p.To) {
			continue
		}
		balance[e.Account] += e.Amount
		if e.Time.Before(p.From) {
			opening += e.Amount
			continue
		}
		switch e.Kind {
		case store.Charge:
			revenue -= e.Amount
			wh += e.Wh
		case store.Allocation:
			alloc -= e.Amount
		case store.TopUp:
			topups += e.Amount
		case store.Adjustment:
			adjust += e.Amount
		case store.Reversal:
			reversals += e.Amount
		}
	}
	for _, b := range balance {
		closing += b
	}
	sumTenants, sumCategories, sumWindows, sumDays := Figures{}, Figures{}, Figures{}, Figures{}
	for _, x := range f.Tenants {
		sumTenants = sumTenants.plus(x.Figures)
		if x.Closing != balance[x.Tenant] {
			t.Errorf("%s: %s closes at %s; the ledger says %s", p.Label, x.Tenant, x.Closing, balance[x.Tenant])
		}
	}
	for _, x := range f.Categories {
		sumCategories = sumCategories.plus(x.Figures)
	}
	for _, x := range f.Windows {
		sumWindows.Revenue += x.Revenue
		sumWindows.ChargeWh += x.Wh
	}
	for _, x := range f.Days {
		sumDays = sumDays.plus(x.Figures)
	}
	for _, c := range []struct {
		what      string
		got, want billing.Money
	}{
		{"revenue", f.Total.Revenue, revenue},
		{"revenue by tenant", sumTenants.Revenue, revenue},
		{"revenue by category", sumCategories.Revenue, revenue},
		{"revenue by window", sumWindows.Revenue, revenue},
		{"revenue by day", sumDays.Revenue, revenue},
		{"allocation by tenant", sumTenants.Allocation, alloc},
		{"allocation by category", sumCategories.Allocation, alloc},
		{"top-ups by tenant", sumTenants.TopUps, topups},
		{"top-ups by day", sumDays.TopUps, topups},
		{"adjustments", f.Total.Adjustments, adjust},
		{"reversals", f.Total.Reversals, reversals},
		{"reversals of top-ups and allocations", f.Reversed[store.TopUp] + f.Reversed[store.Allocation], reversals},
		{"opening", f.Opening, opening},
		{"closing", f.Closing, closing},
		{"opening + movement", f.Opening + f.Total.Movement(), closing},
		{"liability − receivables", f.Liability - f.Receivables, closing},
		{"kWh by window (Wh as money)", billing.Money(sumWindows.ChargeWh), billing.Money(wh)},
		{"kWh by category (Wh as money)", billing.Money(sumCategories.ChargeWh), billing.Money(wh)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s %s; the ledger's %s", p.Label, c.what, c.got, c.want)
		}
	}
	var reversed billing.Money
	for _, m := range f.Reversed {
		reversed += m
	}
	if reversed != f.Total.Reversals {
		t.Errorf("%s: reversals by the kind they undid add up to %s; all reversals %s", p.Label, reversed, f.Total.Reversals)
	}
	var channels, operators billing.Money
	for _, g := range f.Channels {
		channels += g.Amount
	}
	for _, g := range f.Operators {
		operators += g.Amount
	}
	var listed billing.Money
	for _, e := range f.TopUps {
		listed += e.Amount
	}
	if channels != topups || operators != topups || listed != topups {
		t.Errorf("%s: top-ups by channel %s, by operator %s, listed %s; the ledger's %s", p.Label, channels, operators, listed, topups)
	}
}

// TestFinance_MidnightOutOfOrder posts, at the midnight between November
// and December, a top-up dated 00:00:00.05 and then a charge dated
// 23:59:59.9 (its reading's time; charges are posted at the end of the
// bus cycle): November has the charge, December the top-up, and
// November's closing is December's opening. Then a charge held up across
// the month's end by more than the slack (posted after a top-up of
// 2 December, dated 30 November 20:00, as a gateway stopped with a slot
// open posts it when it starts again): still in November.
func TestFinance_MidnightOutOfOrder(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(map[bool]string{false: "cycle", true: "held up"}[late], func(t *testing.T) {
			cfg := newMallConfig(t, t.TempDir())
			db := openDB(t, cfg)
			topUp := func(when time.Time, ref, amount string) {
				t.Helper()
				if _, _, err := db.PostTopUp(store.Entry{Time: when, Account: "T-101", Kind: store.TopUp, Amount: yuan(t, amount),
					Ref: ref, Channel: "cash", Actor: "till"}); err != nil {
					t.Fatal(err)
				}
			}
			charge := func(when time.Time, amount string) { chargeT101(t, db, when, amount) }
			topUp(time.Date(2026, 11, 10, 9, 0, 0, 0, shanghai), "C-1", "100.00")
			for h := 18; h < 24; h++ {
				charge(time.Date(2026, 11, 30, h, 0, 0, 0, shanghai), "1.00")
			}
			chargeAt := time.Date(2026, 11, 30, 23, 59, 59, 900e6, shanghai)
			topUpAt := time.Date(2026, 12, 1, 0, 0, 0, 50e6, shanghai)
			if late {
				chargeAt = time.Date(2026, 11, 30, 20, 0, 0, 0, shanghai)
				topUpAt = time.Date(2026, 12, 2, 10, 0, 0, 0, shanghai)
			}
			topUp(topUpAt, "C-2", "50.00")
			charge(chargeAt, "0.25")
			for h := 11; h < 14; h++ {
				charge(time.Date(2026, 12, 2, h, 0, 0, 0, shanghai), "2.00")
			}
			nov, dec := buildReport(t, db, cfg, "2026-11"), buildReport(t, db, cfg, "2026-12")
			// Held up beyond the slack, the check sees it and the
			// account is read whole.
			a, err := db.Account("T-101")
			if err != nil {
				t.Fatal(err)
			}
			if _, near, err := readSpanNear(context.Background(), db, a, dec.Period.From, dec.Period.To, entriesPage); err != nil {
				t.Fatal(err)
			} else if near == late {
				t.Errorf("December read around the month: %v, want %v", near, !late)
			}
			for _, c := range []struct {
				what      string
				got, want billing.Money
			}{
				{"November's revenue", nov.Total.Revenue, yuan(t, "6.25")},
				{"November's top-ups", nov.Total.TopUps, yuan(t, "100.00")},
				{"November's closing", nov.Closing, yuan(t, "93.75")},
				{"December's opening", dec.Opening, yuan(t, "93.75")},
				{"December's top-ups", dec.Total.TopUps, yuan(t, "50.00")},
				{"December's revenue", dec.Total.Revenue, yuan(t, "6.00")},
				{"December's closing", dec.Closing, yuan(t, "137.75")},
			} {
				if c.got != c.want {
					t.Errorf("%s: %s, want %s", c.what, c.got, c.want)
				}
			}
			if len(dec.TopUps) != 1 || dec.TopUps[0].Ref != "C-2" {
				t.Errorf("December lists top-ups %v, want C-2", dec.TopUps)
			}
		})
	}
}

// TestFinance_HeldChargeBehindManyEntries: a charge held up across a
// stop is posted after more of the account's entries than readSpan's
// check reads (a bus that stayed unreadable after the restart while the
// tenant's other meters were charged): it is still in its own month, and
// that month's closing is the next one's opening.
func TestFinance_HeldChargeBehindManyEntries(t *testing.T) {
	cfg := newMallConfig(t, t.TempDir())
	db := openDB(t, cfg)
	charge := func(when time.Time, amount string) { chargeT101(t, db, when, amount) }
	if _, _, err := db.PostTopUp(store.Entry{Time: time.Date(2026, 11, 10, 9, 0, 0, 0, shanghai), Account: "T-101", Kind: store.TopUp,
		Amount: yuan(t, "100.00"), Ref: "C-1", Channel: "cash", Actor: "till"}); err != nil {
		t.Fatal(err)
	}
	charge(time.Date(2026, 11, 30, 18, 0, 0, 0, shanghai), "1.00")
	for i := range 200 { // December's charges of the tenant's other meters
		charge(time.Date(2026, 12, 1, 2, 0, 0, 0, shanghai).Add(time.Duration(i)*15*time.Minute), "0.01")
	}
	charge(time.Date(2026, 11, 30, 20, 0, 0, 0, shanghai), "0.25") // held up
	for i := range 3 {
		charge(time.Date(2026, 12, 4, 2, 0, 0, 0, shanghai).Add(time.Duration(i)*15*time.Minute), "0.01")
	}
	nov, dec := buildReport(t, db, cfg, "2026-11"), buildReport(t, db, cfg, "2026-12")
	if want := yuan(t, "1.25"); nov.Total.Revenue != want {
		t.Errorf("November's revenue %s, want %s (the held charge in it)", nov.Total.Revenue, want)
	}
	if nov.Closing != dec.Opening {
		t.Errorf("November closes at %s, December opens at %s", nov.Closing, dec.Opening)
	}
	if want := yuan(t, "2.03"); dec.Total.Revenue != want {
		t.Errorf("December's revenue %s, want %s", dec.Total.Revenue, want)
	}
}

// chargeT101 posts a charge of T-101's meter M-101 for the quarter hour
// ending at when, as a bus cycle does: dated by its reading.
func chargeT101(t *testing.T, db *store.DB, when time.Time, amount string) {
	t.Helper()
	from := when.Add(-15 * time.Minute)
	c := store.Entry{Time: when, Account: "T-101", Kind: store.Charge, Amount: -yuan(t, amount), Meter: "M-101",
		Wh: 1000, From: &from, To: &when, Window: "valley", Actor: "gateway"}
	if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{c}}); err != nil {
		t.Fatal(err)
	}
}
