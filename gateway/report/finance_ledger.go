package report

import (
	"fmt"
	"sort"
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// Ledger is the part of the store a finance report reads; *store.DB
// implements it.
type Ledger interface {
	// Accounts returns every account.
	Accounts() ([]store.Account, error)
	// Entries returns up to limit entries of account with ids below
	// before (0: from the newest), newest first.
	Entries(account string, before uint64, limit int) ([]store.Entry, error)
}

// entriesPage is how many entries one read of an account's ledger takes:
// a month of 15-minute charges of one meter is about 3,000.
const entriesPage = 1000

// accountSpan is what one account's ledger holds for a period.
type accountSpan struct {
	Opening, Closing billing.Money
	Entries          []store.Entry // posted in the period, in id order
}

// readSpan reads account's entries posted in [from, to) and its balances
// at from and at to, pageSize entries a read. It does not read the whole ledger: it finds the
// account's last entry before to by bisecting its ids (one entry read a
// step, some 25 steps for millions of entries; none when to is after its
// newest entry, the current month's case), then pages back from there to
// the first entry before from. A month's report costs the month's entries
// however long the ledger is. It relies on an account's entries being
// posted in time order, which the gateway's clock gives; an entry posted
// under a clock set back counts on the side of the bound its id falls on.
func readSpan(l Ledger, a store.Account, from, to time.Time, pageSize int) (accountSpan, error) {
	var s accountSpan
	// newestBefore is the account's newest entry with an id below x.
	newestBefore := func(x uint64) (*store.Entry, error) {
		es, err := l.Entries(a.ID, x, 1)
		if err != nil || len(es) == 0 {
			return nil, err
		}
		return &es[0], nil
	}
	// bound: every entry of the account with an id below it was posted
	// before to; the largest such.
	bound := a.LastEntry + 1
	if e, err := newestBefore(bound); err != nil {
		return s, fmt.Errorf("account %s: %w", a.ID, err)
	} else if e != nil && !e.Time.Before(to) {
		lo, hi := uint64(1), a.LastEntry // P(lo) holds, P(hi+1) does not
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			e, err := newestBefore(mid)
			if err != nil {
				return s, fmt.Errorf("account %s: %w", a.ID, err)
			}
			if e == nil || e.Time.Before(to) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		bound = lo
	}
	before := bound
	first := true
	for {
		page, err := l.Entries(a.ID, before, pageSize)
		if err != nil {
			return s, fmt.Errorf("account %s: %w", a.ID, err)
		}
		for _, e := range page {
			if first {
				s.Closing, first = e.Balance, false
			}
			if e.Time.Before(from) {
				s.Opening = e.Balance
				reverseEntries(s.Entries)
				return s, nil
			}
			s.Entries = append(s.Entries, e)
		}
		if len(page) < pageSize {
			break
		}
		before = page[len(page)-1].ID
	}
	reverseEntries(s.Entries)
	return s, nil
}

func reverseEntries(es []store.Entry) {
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
}

// byID sorts entries of several accounts into posting order.
func byID(es []store.Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].ID < es[j].ID })
}

// reversedKind is the kind of the entry reversal r undid: looked up among
// the period's entries of the account, else in its ledger (the entry was
// posted before the period); "" when the account has no entry of that id.
func reversedKind(l Ledger, period []store.Entry, r store.Entry) (store.Kind, error) {
	i := sort.Search(len(period), func(i int) bool { return period[i].ID >= r.Reverses })
	if i < len(period) && period[i].ID == r.Reverses {
		return period[i].Kind, nil
	}
	es, err := l.Entries(r.Account, r.Reverses+1, 1)
	if err != nil {
		return "", fmt.Errorf("account %s: %w", r.Account, err)
	}
	if len(es) == 1 && es[0].ID == r.Reverses {
		return es[0].Kind, nil
	}
	return "", nil
}
