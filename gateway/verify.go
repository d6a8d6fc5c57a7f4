package gateway

import (
	"fmt"
	"sort"
	"strings"

	"mallgrid/billing"
	"mallgrid/store"
)

// VerifyReport is what VerifyFile found.
type VerifyReport struct {
	Accounts, Entries int
	Violations        []Violation
}

// VerifyFile opens the database at path read-only and verifies its ledger.
func VerifyFile(path string) (VerifyReport, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return VerifyReport{}, err
	}
	defer db.Close()
	var r VerifyReport
	if r.Violations, err = Verify(db); err != nil {
		return r, err
	}
	accounts, err := db.Accounts()
	if err != nil {
		return r, err
	}
	r.Accounts = len(accounts)
	for _, a := range accounts {
		r.Entries += int(a.Entries)
	}
	return r, nil
}

// Violation is one broken ledger invariant found by Verify.
type Violation struct {
	Account string
	Entry   uint64 // 0 when the violation is about the account as a whole
	Problem string
}

func (v Violation) String() string {
	if v.Entry != 0 {
		return fmt.Sprintf("account %s, entry %d: %s", v.Account, v.Entry, v.Problem)
	}
	return fmt.Sprintf("account %s: %s", v.Account, v.Problem)
}

// Verify recomputes every account's balance from its entries, in one
// snapshot of the ledger, and checks each entry against the rules: the
// balance after each entry is the one before plus its amount; top-ups are
// credits with a payment reference used once; charges and allocations are
// debits; a charge's energy is its counter span; every reversal undoes an
// entry of its account, once; each account's stored balance and count are
// what its entries add up to. It returns every violation found; an error
// only when the database cannot be read.
func Verify(db *store.DB) ([]Violation, error) {
	type running struct {
		balance billing.Money
		count   int64
		last    uint64
	}
	var out []Violation
	accts := make(map[string]*running)
	byID := make(map[uint64]store.Entry)
	refs := make(map[string]uint64)
	reversed := make(map[uint64]uint64)
	bad := func(e store.Entry, format string, args ...any) {
		out = append(out, Violation{Account: e.Account, Entry: e.ID, Problem: fmt.Sprintf(format, args...)})
	}
	err := db.EachEntry(func(e store.Entry) error {
		r := accts[e.Account]
		if r == nil {
			r = &running{}
			accts[e.Account] = r
		}
		if e.ID <= r.last {
			bad(e, "id not after the account's previous entry %d", r.last)
		}
		if want := r.balance + e.Amount; e.Balance != want {
			bad(e, "balance after is %s; the entries before it and its amount make %s", e.Balance, want)
		}
		r.balance += e.Amount
		r.count++
		r.last = e.ID
		switch e.Kind {
		case store.TopUp:
			if e.Amount <= 0 {
				bad(e, "top-up of %s is not a credit", e.Amount)
			}
			if e.Ref == "" {
				bad(e, "top-up without a payment reference")
			} else if prev, dup := refs[e.Ref]; dup {
				bad(e, "payment reference %s already credited by entry %d", e.Ref, prev)
			} else {
				refs[e.Ref] = e.ID
			}
		case store.Charge, store.Allocation:
			if e.Amount > 0 {
				bad(e, "%s of %s is a credit", e.Kind, e.Amount)
			}
			if e.Kind == store.Charge && e.ToWh-e.FromWh != e.Wh {
				bad(e, "charges %d Wh for counter %d → %d", e.Wh, e.FromWh, e.ToWh)
			}
		case store.Reversal:
			orig, ok := byID[e.Reverses]
			switch {
			case !ok:
				bad(e, "reverses entry %d, which is not before it", e.Reverses)
			case orig.Account != e.Account:
				bad(e, "reverses entry %d of account %s", e.Reverses, orig.Account)
			case e.Amount != -orig.Amount:
				bad(e, "reverses %s with %s", orig.Amount, e.Amount)
			}
			if prev, twice := reversed[e.Reverses]; twice {
				bad(e, "entry %d already reversed by %d", e.Reverses, prev)
			}
			reversed[e.Reverses] = e.ID
		case store.Adjustment:
			if e.Note == "" || e.Actor == "" {
				bad(e, "adjustment without who and why")
			}
		default:
			bad(e, "unknown kind %q", e.Kind)
		}
		byID[e.ID] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	chains, err := verifyChains(db, byID)
	if err != nil {
		return nil, err
	}
	out = append(out, chains...)
	accounts, err := db.Accounts()
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	for _, a := range accounts {
		seen[a.ID] = true
		r := accts[a.ID]
		if r == nil {
			out = append(out, Violation{Account: a.ID, Problem: "account has no entries"})
			continue
		}
		if a.Balance != r.balance || a.Entries != r.count || a.LastEntry != r.last {
			out = append(out, Violation{Account: a.ID, Problem: fmt.Sprintf(
				"stored balance %s over %d entries (last %d); the entries make %s over %d (last %d)",
				a.Balance, a.Entries, a.LastEntry, r.balance, r.count, r.last)})
		}
	}
	for id := range accts {
		if !seen[id] {
			out = append(out, Violation{Account: id, Problem: "entries without an account record"})
		}
	}
	return out, nil
}

// verifyChains checks every meter's charges against its counter: in id
// order a meter's charges (and then its open charge, not yet posted) must
// follow each other on the counter without a gap or an overlap — a
// charge may start below the one before only after a counter reset — and
// the chain must end at the meter's baseline, the last counter accepted.
// A reading billed twice, or energy skipped, breaks the chain.
func verifyChains(db *store.DB, entries map[uint64]store.Entry) ([]Violation, error) {
	states, err := db.MeterStates()
	if err != nil {
		return nil, err
	}
	byMeter := make(map[string][]store.Entry)
	for _, e := range entries {
		if e.Kind == store.Charge && e.Meter != "" {
			byMeter[e.Meter] = append(byMeter[e.Meter], e)
		}
	}
	var out []Violation
	for meterID, raw := range states {
		if _, tenant := cutPrefix(meterID, tenantKeyPrefix); tenant {
			continue
		}
		mb, err := decodeState(raw)
		if err != nil {
			out = append(out, Violation{Account: "meter " + meterID, Problem: err.Error()})
			continue
		}
		chain := byMeter[meterID]
		sort.Slice(chain, func(i, j int) bool { return chain[i].ID < chain[j].ID })
		if mb.Open != nil {
			chain = append(chain, store.Entry{Account: mb.Open.Account, Meter: meterID, FromWh: mb.Open.FromWh, ToWh: mb.Open.ToWh})
		}
		for i := 1; i < len(chain); i++ {
			prev, e := chain[i-1], chain[i]
			if isExchange(prev) || isExchange(e) {
				continue // an exchange record joins two counters: the chain restarts
			}
			switch {
			case e.FromWh > prev.ToWh:
				out = append(out, Violation{Account: e.Account, Entry: e.ID, Problem: fmt.Sprintf(
					"meter %s: charge starts at %d Wh, after the previous one ended at %d: energy skipped", meterID, e.FromWh, prev.ToWh)})
			case e.FromWh < prev.ToWh && e.FromWh >= prev.FromWh:
				out = append(out, Violation{Account: e.Account, Entry: e.ID, Problem: fmt.Sprintf(
					"meter %s: charge %d→%d Wh overlaps the previous one, %d→%d: energy charged twice", meterID, e.FromWh, e.ToWh, prev.FromWh, prev.ToWh)})
				// A charge starting below the previous one's start is a
				// counter that restarted (a reset); it is the only overlap
				// that is not a double charge.
			}
		}
		if n := len(chain); n > 0 && mb.Counter.Known && !isExchange(chain[n-1]) && chain[n-1].ToWh != mb.Counter.Baseline.Wh {
			out = append(out, Violation{Account: chain[n-1].Account, Problem: fmt.Sprintf(
				"meter %s: charges end at %d Wh, its baseline is %d Wh", meterID, chain[n-1].ToWh, mb.Counter.Baseline.Wh)})
		}
	}
	return out, nil
}

func isExchange(e store.Entry) bool { return strings.HasPrefix(e.Note, exchangeNote+":") }
