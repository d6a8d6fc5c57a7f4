package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"mallgrid/billing"
	"mallgrid/store"
)

// maxEntriesPerScrape bounds the ledger entries one scrape reads: a day
// of a 2,000-meter mall's charges is about 200,000 entries; after a long
// pause the counters catch up over several scrapes instead of one taking
// seconds.
const maxEntriesPerScrape = 20_000

// entriesPage is how many entries one read transaction returns.
const entriesPage = 1_000

// ledgerTally sums the ledger entries posted since the process started,
// in integer money; only their output is a float.
type ledgerTally struct {
	// limit is the most entries one catchUp reads; 0 means
	// maxEntriesPerScrape (tests set less).
	limit    int
	started  bool
	after    uint64 // the last entry counted (or the base)
	credited map[store.Kind]billing.Money
	debited  map[store.Kind]billing.Money
	wh       int64
}

// start takes the last entry posted as the base: what came before is not
// counted. The last entry is the highest of the accounts' last entries
// (every entry is an account's), read from the accounts, not the ledger.
func (t *ledgerTally) start(db *store.DB) error {
	accts, err := db.Accounts()
	if err != nil {
		return err
	}
	for _, a := range accts {
		t.after = max(t.after, a.LastEntry)
	}
	t.credited = make(map[store.Kind]billing.Money)
	t.debited = make(map[store.Kind]billing.Money)
	for _, k := range []store.Kind{store.TopUp, store.Adjustment, store.Reversal} {
		t.credited[k] = 0
	}
	for _, k := range []store.Kind{store.Charge, store.Allocation, store.Adjustment, store.Reversal} {
		t.debited[k] = 0
	}
	t.started = true
	return nil
}

// catchUp counts the entries posted since the last call, up to
// maxEntriesPerScrape of them.
func (t *ledgerTally) catchUp(db *store.DB) error {
	if !t.started {
		if err := t.start(db); err != nil {
			return err
		}
	}
	limit := t.limit
	if limit <= 0 {
		limit = maxEntriesPerScrape
	}
	for read := 0; read < limit; {
		page := min(entriesPage, limit-read)
		es, err := db.EntriesAfter(t.after, page)
		if err != nil {
			return err
		}
		for _, e := range es {
			switch {
			case e.Amount > 0:
				t.credited[e.Kind] += e.Amount
			case e.Amount < 0:
				t.debited[e.Kind] -= e.Amount
			}
			if e.Kind == store.Charge {
				t.wh += e.Wh
			}
			t.after = e.ID
		}
		read += len(es)
		if len(es) < page {
			break
		}
	}
	return nil
}

// yuan is m in yuan, for a graph.
func yuan(m billing.Money) float64 { return float64(m) / float64(billing.Yuan) }

// collectLedger reports the balances' sum (read from the accounts: 100
// records for 100 tenants) and the entries' tallies.
func (c *collector) collectLedger(ch chan<- prometheus.Metric) {
	accts, err := c.db.Accounts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descBalance, err)
	} else {
		var sum billing.Money
		for _, a := range accts {
			sum += a.Balance
		}
		ch <- prometheus.MustNewConstMetric(descBalance, prometheus.GaugeValue, yuan(sum))
		ch <- prometheus.MustNewConstMetric(descAccounts, prometheus.GaugeValue, float64(len(accts)))
	}
	if err := c.ledger.catchUp(c.db); err != nil {
		// The counters are left out rather than shown short: a sum that
		// stopped would read as no money coming in.
		ch <- prometheus.NewInvalidMetric(descCredited, fmt.Errorf("read the ledger: %w", err))
		return
	}
	for k, m := range c.ledger.credited {
		ch <- prometheus.MustNewConstMetric(descCredited, prometheus.CounterValue, yuan(m), string(k))
	}
	for k, m := range c.ledger.debited {
		ch <- prometheus.MustNewConstMetric(descDebited, prometheus.CounterValue, yuan(m), string(k))
	}
	ch <- prometheus.MustNewConstMetric(descChargedWh, prometheus.CounterValue, float64(c.ledger.wh))
}
