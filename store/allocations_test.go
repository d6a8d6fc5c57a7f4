package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"mallgrid/billing"
)

func posting(rule string, from time.Time, days int, shares ...PostingShare) Posting {
	p := Posting{Rule: rule, Period: from.Format("2006-01-02"), From: from, To: from.AddDate(0, 0, days), Basis: "area",
		Tariff: "standard", Meters: []string{"M-PUB"}, PublicWh: 12_345, Time: from.AddDate(0, 0, days), Actor: "gateway", Shares: shares}
	for _, s := range shares {
		p.Cost += s.Amount
	}
	return p
}

func TestPostAllocation_OncePerRuleAndPeriod(t *testing.T) {
	db, _ := openTemp(t)
	p := posting("corridors", t0, 1, PostingShare{Tenant: "T-1", Basis: "area 1.00 m² of 3.00 m²", Amount: 34 * billing.Fen},
		PostingShare{Tenant: "T-2", Basis: "area 2.00 m² of 3.00 m²", Amount: 66 * billing.Fen}, PostingShare{Tenant: "T-3", Basis: "area 0", Amount: 0})
	first, existing, err := db.PostAllocation(p)
	if err != nil || existing || first.ID == 0 || first.Shares[0].Entry == 0 || first.Shares[2].Entry != 0 {
		t.Fatalf("first post = %+v, %v, %v", first, existing, err)
	}
	again, existing, err := db.PostAllocation(p)
	if err != nil || !existing || again.ID != first.ID {
		t.Fatalf("second post = %+v, %v, %v; want the first, existing", again, existing, err)
	}
	a, err := db.Account("T-1")
	if err != nil || a.Balance != -34*billing.Fen || a.Entries != 1 {
		t.Errorf("T-1 after two posts of one period = %+v, %v; want -0.34 in one entry", a, err)
	}
	if _, err := db.Account("T-3"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("T-3, a zero share: got %v; want no entry", err)
	}
	e, err := db.Entries("T-2", 0, 1)
	if err != nil || len(e) != 1 || e[0].Kind != Allocation || e[0].Note == "" {
		t.Fatalf("T-2's entry = %+v, %v", e, err)
	}
	if want := fmt.Sprintf("allocation corridors 2026-11-27 (posting %d): area 2.00 m² of 3.00 m²; public energy 12.345 kWh of 1 meter(s) at tariff standard, cost 1.00", first.ID); e[0].Note != want {
		t.Errorf("note: got %q; want %q", e[0].Note, want)
	}
	// An overlapping period of the rule (its period changed to a month)
	// is refused; another rule's is not.
	if _, _, err := db.PostAllocation(posting("corridors", t0.AddDate(0, 0, -10), 30, PostingShare{Tenant: "T-1", Amount: billing.Fen})); !errors.Is(err, ErrPostingOverlap) {
		t.Errorf("overlapping month: got %v; want ErrPostingOverlap", err)
	}
	if _, _, err := db.PostAllocation(posting("corridors", t0, 2, PostingShare{Tenant: "T-1", Amount: billing.Fen})); !errors.Is(err, ErrPostingOverlap) {
		t.Errorf("same start, longer period: got %v; want ErrPostingOverlap", err)
	}
	if _, _, err := db.PostAllocation(posting("chillers", t0, 1, PostingShare{Tenant: "T-1", Amount: billing.Fen})); err != nil {
		t.Errorf("another rule's period: %v", err)
	}
	// The next day posts.
	if _, existing, err := db.PostAllocation(posting("corridors", t0.AddDate(0, 0, 1), 1, PostingShare{Tenant: "T-1", Amount: billing.Fen})); err != nil || existing {
		t.Errorf("next day: %v, existing %v", err, existing)
	}
}

func TestReverseAllocation_Once(t *testing.T) {
	db, _ := openTemp(t)
	p := posting("corridors", t0, 1, PostingShare{Tenant: "T-1", Amount: 40 * billing.Fen}, PostingShare{Tenant: "T-2", Amount: 60 * billing.Fen})
	first, _, err := db.PostAllocation(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReverseAllocation(first.ID, "books", "", t0); !errors.Is(err, ErrBadPosting) {
		t.Errorf("reversal without a reason: got %v; want ErrBadPosting", err)
	}
	rev, err := db.ReverseAllocation(first.ID, "books", "wrong areas", t0.Add(time.Hour))
	if err != nil || rev.Reversal == nil || len(rev.Reversal.Entries) != 2 || rev.Reversal.Reason != "wrong areas" {
		t.Fatalf("reversal = %+v, %v", rev, err)
	}
	if _, err := db.ReverseAllocation(first.ID, "books", "again", t0.Add(time.Hour)); !errors.Is(err, ErrPostingReversed) {
		t.Errorf("second reversal: got %v; want ErrPostingReversed", err)
	}
	if _, err := db.ReverseAllocation(999, "books", "no such", t0); !errors.Is(err, ErrNoPosting) {
		t.Errorf("unknown posting: got %v; want ErrNoPosting", err)
	}
	for _, id := range []string{"T-1", "T-2"} {
		if a, err := db.Account(id); err != nil || a.Balance != 0 || a.Entries != 2 {
			t.Errorf("%s after the reversal = %+v, %v; want 0 in two entries", id, a, err)
		}
	}
	// The period posts again, as a new posting.
	second, existing, err := db.PostAllocation(p)
	if err != nil || existing || second.ID == first.ID {
		t.Fatalf("post after reversal = %+v, %v, %v; want a new posting", second, existing, err)
	}
	if a, _ := db.Account("T-2"); a.Balance != -60*billing.Fen {
		t.Errorf("T-2 after the new posting: %s; want -0.60", a.Balance)
	}
	latest, ok, err := db.LatestPosting("corridors")
	if err != nil || !ok || latest.ID != second.ID {
		t.Errorf("LatestPosting = %d, %v, %v; want %d", latest.ID, ok, err, second.ID)
	}
	live, err := db.LivePostings()
	if err != nil || len(live) != 1 || live["corridors\x00"+t0.Format(time.RFC3339)] != second.ID {
		t.Errorf("LivePostings = %v, %v; want only posting %d", live, err, second.ID)
	}
}

func TestPostAllocation_Refused(t *testing.T) {
	db, _ := openTemp(t)
	short := posting("corridors", t0, 1, PostingShare{Tenant: "T-1", Amount: 40 * billing.Fen})
	short.Cost = billing.Yuan
	negative := posting("corridors", t0, 1, PostingShare{Tenant: "T-1", Amount: -billing.Fen}, PostingShare{Tenant: "T-2", Amount: 2 * billing.Fen})
	twice := posting("corridors", t0, 1, PostingShare{Tenant: "T-1", Amount: billing.Fen}, PostingShare{Tenant: "T-1", Amount: billing.Fen})
	noRule := posting("", t0, 1, PostingShare{Tenant: "T-1", Amount: billing.Fen})
	backwards := posting("corridors", t0, -1, PostingShare{Tenant: "T-1", Amount: billing.Fen})
	for name, p := range map[string]Posting{"shares short of the cost": short, "negative share": negative, "tenant twice": twice, "no rule": noRule, "backwards": backwards} {
		if _, _, err := db.PostAllocation(p); !errors.Is(err, ErrBadPosting) {
			t.Errorf("%s: got %v; want ErrBadPosting", name, err)
		}
	}
	if n, _ := db.Accounts(); len(n) != 0 {
		t.Errorf("refused postings left %d accounts", len(n))
	}
}

// TestPostAllocation_RandomIdempotent posts random periods of random rules,
// each several times, and reverses some: every account's balance is what a
// model that counts each standing posting once makes of it.
func TestPostAllocation_RandomIdempotent(t *testing.T) {
	db, _ := openTemp(t)
	r := rand.New(rand.NewPCG(14, 7))
	model := make(map[string]billing.Money)
	type key struct {
		rule string
		day  int
	}
	standing := make(map[key]Posting)
	for i := 0; i < 300; i++ {
		k := key{fmt.Sprintf("rule-%d", r.IntN(3)), r.IntN(10)}
		if p, ok := standing[k]; ok && r.IntN(4) == 0 {
			if _, err := db.ReverseAllocation(p.ID, "books", "test", t0); err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Shares {
				model[s.Tenant] += s.Amount
			}
			delete(standing, k)
			continue
		}
		var shares []PostingShare
		for tn := 0; tn < 1+r.IntN(4); tn++ {
			shares = append(shares, PostingShare{Tenant: fmt.Sprintf("T-%d", tn), Amount: billing.Money(r.IntN(500)) * billing.Fen})
		}
		p, existing, err := db.PostAllocation(posting(k.rule, t0.AddDate(0, 0, k.day), 1, shares...))
		if err != nil {
			t.Fatal(err)
		}
		if _, was := standing[k]; was != existing {
			t.Fatalf("post %d of %v: existing = %v; want %v", i, k, existing, was)
		}
		if !existing {
			standing[k] = p
			for _, s := range p.Shares {
				model[s.Tenant] -= s.Amount
			}
		}
	}
	for id, want := range model {
		a, err := db.Account(id)
		if err != nil && want != 0 {
			t.Fatal(err)
		}
		if a.Balance != want {
			t.Errorf("%s: balance %s; the model says %s", id, a.Balance, want)
		}
	}
	live, err := db.LivePostings()
	if err != nil || len(live) != len(standing) {
		t.Errorf("LivePostings: %d, %v; want %d standing", len(live), err, len(standing))
	}
}

// LatestPosting is the rule's posting of the latest period, not the one
// made last: an older period posted by hand after later ones, and a later
// one reversed, leave the later one the latest.
func TestLatestPosting_LatestPeriod(t *testing.T) {
	db, _ := openTemp(t)
	share := PostingShare{Tenant: "T-1", Amount: billing.Fen}
	if _, _, err := db.PostAllocation(posting("daily", t0.AddDate(0, 0, 1), 1, share)); err != nil {
		t.Fatal(err)
	}
	day3, _, err := db.PostAllocation(posting("daily", t0.AddDate(0, 0, 2), 1, share))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReverseAllocation(day3.ID, "books", "meter re-read", t0.AddDate(0, 0, 4)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PostAllocation(posting("daily", t0, 1, share)); err != nil { // day 1, by hand, last
		t.Fatal(err)
	}
	if _, _, err := db.PostAllocation(posting("other", t0.AddDate(0, 0, 5), 1, share)); err != nil {
		t.Fatal(err)
	}
	latest, ok, err := db.LatestPosting("daily")
	if err != nil || !ok || latest.ID != day3.ID {
		t.Errorf("LatestPosting = posting %d (%s), %v, %v; want %d, day 3's (reversed), not day 1's made last or day 2's",
			latest.ID, latest.Period, ok, err, day3.ID)
	}
	if _, ok, err := db.LatestPosting("none"); ok || err != nil {
		t.Errorf("a rule never posted: %v, %v; want false", ok, err)
	}
}
