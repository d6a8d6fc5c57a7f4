package accounts

import (
	"context"
	"math/big"
	"sync"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// spendWindow is the recent consumption an account's time left is
// reckoned from: a whole day, so that a shop's quiet night and busy noon
// both count, as they will until its credit runs out.
const spendWindow = 24 * time.Hour

// spendLate bounds how long after its energy was used a charge is posted
// (a meter back from a short outage): reading the ledger newest first stops
// at entries committed this long before the window began.
const spendLate = 2 * time.Hour

// spendEvery is how often RunSpend reckons every account's last day: the
// ledger's last day changes slowly, and at 2,000 tenants a reckoning
// reads a few hundred thousand entries, which no page should wait for.
const spendEvery = time.Minute

// spendPage is how many entries one read of the ledger takes: about a
// day of a meter's quarter-hour charges.
const spendPage = 100

// spendCache is the last reckoning of every account's spend.
type spendCache struct {
	mu sync.Mutex
	by map[string]billing.Money // nil until the first reckoning
}

// spend24h returns what tenant was charged for energy used over the last
// spendWindow before now.
func (l *Ledger) spend24h(tenant string, now time.Time) (billing.Money, error) {
	since := now.Add(-spendWindow)
	stop := since.Add(-spendLate)
	var sum billing.Money
	var before uint64
	for {
		page, err := l.DB.Entries(tenant, before, spendPage)
		if err != nil {
			return 0, err
		}
		older := 0
		for _, e := range page {
			if e.Time.Before(stop) {
				older++
			}
			if e.Kind != store.Charge {
				continue
			}
			used := e.Time
			if e.From != nil {
				used = *e.From
			}
			if !used.Before(since) && !used.After(now) {
				sum -= e.Amount // a charge is a debit
			}
		}
		if len(page) < spendPage || older == len(page) {
			return sum, nil
		}
		before = page[len(page)-1].ID
	}
}

// RunSpend reckons every configured account's last day now and then every
// spendEvery until ctx ends, for Accounts to read without waiting.
func (l *Ledger) RunSpend(ctx context.Context) {
	tick := time.NewTicker(spendEvery)
	defer tick.Stop()
	for {
		l.reckonSpends(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reckonSpends reads every configured tenant's last day and keeps it.
func (l *Ledger) reckonSpends(ctx context.Context) {
	now := l.Now()
	by := make(map[string]billing.Money, len(l.Config.Tenants))
	for _, t := range l.Config.Tenants {
		if ctx.Err() != nil {
			return
		}
		m, err := l.spend24h(t.ID, now)
		if err != nil {
			l.Log.Error().Err(err).Str("tenant", t.ID).Msg("reckon the last day's spend")
			continue
		}
		by[t.ID] = m
	}
	l.spendCache.mu.Lock()
	l.spendCache.by = by
	l.spendCache.mu.Unlock()
}

// spends returns the last reckoning of every account's spend; nil before
// the first (or without RunSpend): the list then shows no time left.
func (l *Ledger) spends() map[string]billing.Money {
	l.spendCache.mu.Lock()
	defer l.spendCache.mu.Unlock()
	return l.spendCache.by
}

// withCredit adds the last day's spend to v and, for a tenant the policy
// can cut off, the time until it would be: until the balance less the
// accrued charges reaches the rating's overdraft limit at that spending,
// plus the rating's grace time (protected hours, which may hold a cut-off
// longer, are not counted: the figure is the earliest power may go off).
func (l *Ledger) withCredit(v web.AccountView, spend billing.Money) web.AccountView {
	if spend <= 0 {
		return v
	}
	v.Spend24h = spend.String()
	rating, ok := l.Config.RatingOf(v.Tenant)
	if !ok {
		return v // no credit rating: never cut off by the policy
	}
	balance, err1 := billing.ParseMoney(v.Balance)
	accrued, err2 := billing.ParseMoney(v.Accrued)
	if err1 != nil || err2 != nil {
		return v
	}
	left := int64(0)
	if rest := balance - accrued + rating.Overdraft(); rest > 0 {
		// rest × a day ÷ spend, in big integers: a large balance times the
		// seconds of a day overflows int64.
		q := new(big.Int).Mul(big.NewInt(int64(rest)), big.NewInt(int64(spendWindow/time.Second)))
		q.Quo(q, big.NewInt(int64(spend)))
		if q.IsInt64() {
			left = q.Int64()
		} else {
			left = 1 << 40
		}
	}
	left += int64(rating.Grace() / time.Second)
	v.CreditLeft = &left
	return v
}
