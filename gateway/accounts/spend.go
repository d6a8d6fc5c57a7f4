package accounts

import (
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

// spendTTL is how long a reckoning of every account's spend is reused:
// the dashboard is opened often and the ledger's last day changes slowly.
const spendTTL = time.Minute

// spendCache keeps the last reckoning of each account's spend.
type spendCache struct {
	mu   sync.Mutex
	at   time.Time
	by   map[string]billing.Money
	busy sync.Mutex // one reckoning at a time
}

// spend24h returns what tenant was charged for energy used over the last
// spendWindow before now.
func (l *Ledger) spend24h(tenant string, now time.Time) (billing.Money, error) {
	since := now.Add(-spendWindow)
	stop := since.Add(-spendLate)
	var sum billing.Money
	var before uint64
	for {
		page, err := l.DB.Entries(tenant, before, usagePage)
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
		if len(page) < usagePage || older == len(page) {
			return sum, nil
		}
		before = page[len(page)-1].ID
	}
}

// usagePage is how many entries one read of the ledger takes.
const usagePage = 500

// spends returns every listed tenant's spend over the last day, reckoned
// at most once per spendTTL.
func (l *Ledger) spends(tenants []string) map[string]billing.Money {
	now := l.Now()
	c := &l.spendCache
	c.busy.Lock()
	defer c.busy.Unlock()
	c.mu.Lock()
	fresh := c.by != nil && now.Sub(c.at) >= 0 && now.Sub(c.at) < spendTTL
	by := c.by
	c.mu.Unlock()
	if fresh {
		return by
	}
	by = make(map[string]billing.Money, len(tenants))
	for _, t := range tenants {
		m, err := l.spend24h(t, now)
		if err != nil {
			l.Log.Error().Err(err).Str("tenant", t).Msg("reckon the last day's spend")
			continue
		}
		by[t] = m
	}
	c.mu.Lock()
	c.at, c.by = now, by
	c.mu.Unlock()
	return by
}

// withCredit adds the last day's spend and the time the credit lasts at
// it to v.
func withCredit(v web.AccountView, spend billing.Money) web.AccountView {
	if spend <= 0 {
		return v
	}
	v.Spend24h = spend.String()
	balance, err1 := billing.ParseMoney(v.Balance)
	accrued, err2 := billing.ParseMoney(v.Accrued)
	if err1 != nil || err2 != nil {
		return v
	}
	left := int64(0)
	if rest := balance - accrued; rest > 0 {
		// rest × a day ÷ spend, in big integers: a large balance times the
		// seconds of a day overflows int64.
		q := new(big.Int).Mul(big.NewInt(int64(rest)), big.NewInt(int64(spendWindow/time.Second)))
		q.Quo(q, big.NewInt(int64(spend)))
		if q.IsInt64() {
			left = q.Int64()
		} else {
			left = 1 << 62
		}
	}
	v.CreditLeft = &left
	return v
}
