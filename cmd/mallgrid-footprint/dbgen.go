package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// bigDB returns the cached database of at least o.bigDB bytes for this mall,
// making it first if there is none (a few minutes; then the description of
// how long it took).
func bigDB(o options) (path, made string, err error) {
	// A directory of its own: the store refuses to start a database beside
	// another gateway's (store.ErrNotHere).
	dir := filepath.Join(o.cache, fmt.Sprintf("%dx%d-%d", o.buses, o.perBus, o.bigDB))
	path = filepath.Join(dir, "mallgrid.db")
	if st, err := os.Stat(path); err == nil && st.Size() >= o.bigDB {
		return path, "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	os.Remove(path)
	os.Remove(store.MarkerPath(path))
	t := time.Now()
	if err := prepareDB(path, o.buses, o.perBus, o.bigDB); err != nil {
		os.Remove(path)
		os.Remove(store.MarkerPath(path))
		return "", "", err
	}
	return path, time.Since(t).Round(time.Second).String(), nil
}

// prepareDB makes the gateway's database at path as the gateway would (its
// marker beside it), credits every tenant ¥100,000 so that none is cut off
// during a run, and, for history > 0, writes the history of a mall that
// has run for days until the file reaches history bytes: per meter and
// 15-minute slot the interval's energy, one charge and 15 one-minute power
// samples, committed one bus cycle (125 meters) per transaction as the
// pipeline does, from 30 days ago onwards.
func prepareDB(path string, buses, perBus int, history int64) error {
	db, err := store.Open(path, store.Options{Marker: true})
	if err != nil {
		return err
	}
	now := time.Now()
	for b := 1; b <= buses; b++ {
		for a := 1; a <= perBus; a++ {
			_, _, err := db.PostTopUp(store.Entry{Time: now.Add(-31 * 24 * time.Hour), Account: tenantID(b, a), Kind: store.TopUp,
				Amount: 100_000 * billing.Yuan, Ref: "FOOTPRINT-" + tenantID(b, a), Channel: "bank", Actor: "footprint"})
			if err != nil {
				db.Close()
				return fmt.Errorf("top-up of %s: %w", tenantID(b, a), err)
			}
		}
	}
	if history > 0 {
		if err := writeHistory(db, path, buses, perBus, history, now); err != nil {
			db.Close()
			return err
		}
	}
	return db.Close()
}

func writeHistory(db *store.DB, path string, buses, perBus int, history int64, now time.Time) error {
	price, err := billing.ParsePrice("1.00")
	if err != nil {
		return err
	}
	const slotWh = 1250 // 5 kW for 15 minutes
	counter := map[string]int64{}
	for slot := now.Add(-30 * 24 * time.Hour).Truncate(store.IntervalLength); slot.Add(store.IntervalLength).Before(now); slot = slot.Add(store.IntervalLength) {
		end := slot.Add(store.IntervalLength)
		for b := 1; b <= buses; b++ {
			var c store.Cycle
			for a := 1; a <= perBus; a++ {
				m, ten := meterID(b, a), tenantID(b, a)
				from := counter[m]
				to := from + slotWh
				counter[m] = to
				c.Energy = append(c.Energy, store.IntervalEnergy{Meter: m, Time: slot, Wh: slotWh})
				for i := range 15 {
					c.Samples = append(c.Samples, store.Sample{Meter: m, Minute: slot.Add(time.Duration(i) * time.Minute),
						Readings: 2, AvgW: 5000 + int64(a%7), MinW: 4900, MaxW: 5100 + int64(i), ImportWh: from + int64(i)*slotWh/15})
				}
				s, e := slot, end
				c.Charges = append(c.Charges, store.Entry{Time: end, Account: ten, Kind: store.Charge,
					Amount: -billing.Money(slotWh) * billing.Fen / 10, // ¥1.00/kWh: 1,250 Wh is ¥1.25
					Meter:  m, FromWh: from, ToWh: to, Wh: slotWh, From: &s, To: &e, Window: "flat", UnitPrice: price})
			}
			if _, err := db.CommitCycle(c); err != nil {
				return fmt.Errorf("history at %s: %w", slot.Format(time.RFC3339), err)
			}
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.Size() >= history {
			return nil
		}
	}
	return nil
}
