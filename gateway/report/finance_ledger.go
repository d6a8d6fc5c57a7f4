package report

import (
	"context"
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

// spanSlack bounds how far an account's entries are dated out of the order
// they were posted in (their ids). The gateway dates a top-up, a
// correction or an allocation by its clock when it posts it, but a charge
// by its slot's last reading, and posts the charge at the end of the first
// bus cycle after its 15-minute slot has ended — so an entry can be dated
// before one posted ahead of it by a poll interval and a cycle: seconds,
// a minute or two. An hour is ample. It is exceeded only when a charge's
// posting is held up (the gateway stopped with a slot open posts it when
// it starts again) or the clock is stepped back; readSpan checks the
// bound where it reads and reads the account whole when it does not hold.
const spanSlack = time.Hour

// checkEntries is how many entries readSpan reads on either side of the
// ones it needs, to check that spanSlack holds there.
const checkEntries = 64

// accountSpan is what one account's ledger holds for a period.
type accountSpan struct {
	// Opening and Closing are Σ of the account's entries dated before the
	// period's start and before its end: so one period's closing is the
	// next one's opening whatever order the entries were posted in.
	Opening, Closing billing.Money
	Entries          []store.Entry // dated in the period, in id order
}

// readSpan reads account's entries dated in [from, to) and its balances
// at from and at to (Σ of the entries dated before each), pageSize entries
// a read. An entry counts by its Time alone, never by where its id falls:
// ids are in posting order, and posting order is not time order (see
// spanSlack). It reads from the account's newest entry down to the first
// entry dated before from−spanSlack, whose balance holds every entry
// posted before it (all dated before from), and checkEntries entries
// below: a report of the current month costs the month's entries, an older
// one every entry posted since it began. (Finding the period's end by
// bisecting ids would miss a charge held up across a stop and posted
// behind more of the account's entries than any check reads.) If two
// entries it read are further out of order than spanSlack, the bound did
// not hold and it reads the account whole (readSpanWhole). It stops with
// ctx's error when ctx ends, checked before each read.
func readSpan(ctx context.Context, l Ledger, a store.Account, from, to time.Time, pageSize int) (accountSpan, error) {
	s, ok, err := readSpanNear(ctx, l, a, from, to, pageSize)
	if err != nil || ok {
		return s, err
	}
	return readSpanWhole(ctx, l, a, from, to, pageSize)
}

// readSpanNear is readSpan trusting spanSlack; ok is false when two of the
// entries it read are further out of order than that.
func readSpanNear(ctx context.Context, l Ledger, a store.Account, from, to time.Time, pageSize int) (s accountSpan, ok bool, err error) {
	// From the newest entry down: a charge held up across a stop may be
	// posted after any number of the account's later entries, so no id
	// above the period can be skipped.
	before := a.LastEntry + 1
	floor := from.Add(-spanSlack)
	var (
		earliest           time.Time // the earliest date among the entries read
		opening, closing   billing.Money
		base               billing.Money // the balance after the entry dated before floor
		found, read        bool
		oldest             store.Entry // the last read before found
		checkLeft, pageLen = checkEntries, pageSize
	)
	for {
		if err := ctx.Err(); err != nil {
			return s, false, err
		}
		asked := pageLen
		page, err := l.Entries(a.ID, before, asked)
		if err != nil {
			return s, false, fmt.Errorf("account %s: %w", a.ID, err)
		}
		for _, e := range page {
			// Every entry posted after e is dated after e.Time−spanSlack.
			if read && e.Time.After(earliest.Add(spanSlack)) {
				return accountSpan{}, false, nil
			}
			if !read || e.Time.Before(earliest) {
				earliest, read = e.Time, true
			}
			if !found {
				oldest = e
			}
			switch {
			case found:
				checkLeft--
			case e.Time.Before(floor):
				base, found = e.Balance, true
				pageLen = checkEntries
			case e.Time.Before(from):
				opening += e.Amount
				closing += e.Amount
			case e.Time.Before(to):
				closing += e.Amount
				s.Entries = append(s.Entries, e)
			}
			if found && checkLeft == 0 {
				break
			}
		}
		if len(page) < asked || (found && checkLeft == 0) {
			break
		}
		before = page[len(page)-1].ID
	}
	if !found && read {
		// The ledger's first entry was reached: what it started from.
		base = oldest.Balance - oldest.Amount
	}
	s.Opening, s.Closing = base+opening, base+closing
	reverseEntries(s.Entries)
	return s, true, nil
}

// readSpanWhole is readSpan reading every entry of the account: exact
// whatever order its entries were dated in.
func readSpanWhole(ctx context.Context, l Ledger, a store.Account, from, to time.Time, pageSize int) (accountSpan, error) {
	var s accountSpan
	var base billing.Money
	before := uint64(0)
	for {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		page, err := l.Entries(a.ID, before, pageSize)
		if err != nil {
			return s, fmt.Errorf("account %s: %w", a.ID, err)
		}
		for _, e := range page {
			base = e.Balance - e.Amount // the oldest read's: the balance before the ledger's first entry
			switch {
			case e.Time.Before(from):
				s.Opening += e.Amount
				s.Closing += e.Amount
			case e.Time.Before(to):
				s.Closing += e.Amount
				s.Entries = append(s.Entries, e)
			}
		}
		if len(page) < pageSize {
			break
		}
		before = page[len(page)-1].ID
	}
	s.Opening += base
	s.Closing += base
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
