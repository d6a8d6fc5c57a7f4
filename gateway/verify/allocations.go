package verify

import (
	"fmt"
	"sort"
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// checkAllocations: every allocation posting's shares add up to its cost
// and none is below zero; one posting stands per rule and period (no two
// standing periods of a rule overlap), and the index of standing postings
// names exactly those, each under its own rule and period start; each
// share above zero has its allocation entry, of the share's tenant and
// amount, in no other posting, and a reversed posting's reversal entries
// undo exactly those entries; every allocation entry in the ledger
// belongs to a posting.
func checkAllocations(v *ledgerView, report func(Violation)) {
	byID := make(map[uint64]store.Entry, len(v.entries))
	for _, e := range v.entries {
		byID[e.ID] = e
	}
	owner := make(map[uint64]uint64) // allocation entry → its posting
	standing := make(map[string][]store.Posting)
	bad := func(p store.Posting, format string, args ...any) {
		x := Violation{Account: "allocation " + p.Rule + " " + p.Period}
		x.Problem = fmt.Sprintf("posting %d: ", p.ID) + fmt.Sprintf(format, args...)
		report(x)
	}
	for _, p := range v.postings {
		var sum billing.Money
		for _, s := range p.Shares {
			sum += s.Amount
			if s.Amount < 0 {
				bad(p, "share of %s is %s, below zero", s.Tenant, s.Amount)
			}
			switch {
			case s.Entry == 0 && s.Amount != 0:
				bad(p, "share of %s (%s) has no entry", s.Tenant, s.Amount)
			case s.Entry != 0:
				e, ok := byID[s.Entry]
				switch {
				case !ok:
					bad(p, "share of %s names entry %d, which is not in the ledger", s.Tenant, s.Entry)
				case e.Kind != store.Allocation || e.Account != s.Tenant || e.Amount != -s.Amount:
					bad(p, "share of %s (%s) names entry %d, a %s of %s to %s", s.Tenant, s.Amount, e.ID, e.Kind, e.Amount, e.Account)
				}
				if first, twice := owner[s.Entry]; twice {
					bad(p, "entry %d is also posting %d's", s.Entry, first)
				}
				owner[s.Entry] = p.ID
			}
		}
		if sum != p.Cost {
			bad(p, "shares add up to %s; the cost is %s", sum, p.Cost)
		}
		if r := p.Reversal; r != nil {
			undone := make(map[uint64]bool)
			for _, id := range r.Entries {
				e, ok := byID[id]
				if !ok || e.Kind != store.Reversal || owner[e.Reverses] != p.ID {
					bad(p, "reversal entry %d does not undo one of its entries", id)
					continue
				}
				undone[e.Reverses] = true
			}
			for _, s := range p.Shares {
				if s.Entry != 0 && !undone[s.Entry] {
					bad(p, "reversed, but entry %d of %s is not undone", s.Entry, s.Tenant)
				}
			}
			continue
		}
		key := p.Rule + "\x00" + p.From.UTC().Format(time.RFC3339)
		if id, ok := v.livePostings[key]; !ok || id != p.ID {
			bad(p, "stands, but the index of standing postings names %d for its rule and period", id)
		}
		for _, o := range standing[p.Rule] {
			if o.From.Before(p.To) && p.From.Before(o.To) {
				bad(p, "stands beside posting %d of the same rule over %s to %s", o.ID, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
			}
		}
		standing[p.Rule] = append(standing[p.Rule], p)
	}
	live := make(map[uint64]store.Posting)
	for _, ps := range standing {
		for _, p := range ps {
			live[p.ID] = p
		}
	}
	// Each key names the standing posting of its own rule and period: a
	// key of another period naming a posting would have PostAllocation
	// answer that period with it (posted, existing) and never post it.
	keys := make([]string, 0, len(v.livePostings))
	for key := range v.livePostings {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		id := v.livePostings[key]
		p, ok := live[id]
		switch {
		case !ok:
			report(Violation{Account: "allocation index", Problem: fmt.Sprintf("%q names posting %d, which does not stand", key, id)})
		case key != p.Rule+"\x00"+p.From.UTC().Format(time.RFC3339):
			report(Violation{Account: "allocation index", Problem: fmt.Sprintf("%q names posting %d, of rule %s from %s",
				key, id, p.Rule, p.From.UTC().Format(time.RFC3339))})
		}
	}
	// An allocation that is a credit is the debit rule's to report.
	for _, e := range v.entries {
		if e.Kind == store.Allocation && e.Amount <= 0 {
			if _, ok := owner[e.ID]; !ok {
				report(entryViolation(e, "allocation of %s belongs to no posting", e.Amount))
			}
		}
	}
}
