package verify

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/billing/counter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/enforce"
	"mallgrid/gateway/live"
	"mallgrid/gateway/pipeline"
	"mallgrid/store"
)

// damage is a ledger fault that exactly one verify rule finds.
type damage struct {
	rule string
	// build writes the faulty ledger into db; tamper, if set, then edits
	// the file behind the store's back.
	build  func(t *testing.T, db *store.DB)
	tamper func(tx *bolt.Tx) error
}

var vt0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// cleanMeter writes meter M-1's first reading at 1000 Wh and one charge
// 1000 → 2520 Wh at 1.00/kWh, with the state that ends there.
func cleanMeter(t *testing.T, db *store.DB) {
	t.Helper()
	commit(t, db, store.Cycle{
		Breaks:     []store.Break{{Meter: "M-1", Chain: 0, Kind: "baseline", At: vt0, NewStartWh: 1000}},
		Charges:    []store.Entry{meterCharge(1000, 2520, 0)},
		MeterState: map[string][]byte{"M-1": stateAt(2520, 0)},
	})
}

func meterCharge(from, to int64, chain int) store.Entry {
	return store.Entry{Account: "T-1", Kind: store.Charge, Amount: -billing.Money(to-from) * billing.Fen / 10, Time: vt0,
		Meter: "M-1", Chain: chain, FromWh: from, ToWh: to, Wh: to - from, UnitPrice: billing.Price(billing.Yuan)}
}

func stateAt(wh int64, chain int) []byte {
	return pipeline.EncodeState(&pipeline.MeterState{Counter: counter.State{Known: true, Chain: chain, Baseline: counter.Sample{Wh: wh, At: vt0}}})
}

func commit(t *testing.T, db *store.DB, c store.Cycle) {
	t.Helper()
	if _, err := db.CommitCycle(c); err != nil {
		t.Fatal(err)
	}
}

func topUp(t *testing.T, db *store.DB, account, ref string) store.Entry {
	t.Helper()
	e, _, err := db.PostTopUp(store.Entry{Account: account, Amount: 100 * billing.Yuan, Ref: ref, Channel: "cash", Time: vt0})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func post(t *testing.T, db *store.DB, e store.Entry) {
	t.Helper()
	if _, err := db.PostEntry(e); err != nil {
		t.Fatal(err)
	}
}

// editEntry rewrites entry id's JSON through edit.
func editEntry(id uint64, edit func(map[string]any)) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("entries"))
		key := binary.BigEndian.AppendUint64(nil, id)
		var e map[string]any
		if err := json.Unmarshal(b.Get(key), &e); err != nil {
			return err
		}
		edit(e)
		raw, _ := json.Marshal(e)
		return b.Put(key, raw)
	}
}

func correct(t *testing.T, db *store.DB, e store.Entry) store.Entry {
	t.Helper()
	stored, _, err := db.PostCorrection(e)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// reversedTopUp is T-1's top-up of 100.00 (entry 1) and its reversal (2).
func reversedTopUp(t *testing.T, db *store.DB) {
	topUp(t, db, "T-1", "P-1")
	correct(t, db, store.Entry{Account: "T-1", Kind: store.Reversal, Reverses: 1, Ref: "R-1", Note: "cheque bounced", Actor: "fay", Time: vt0})
}

// threeTopUps is T-1's top-ups 1..3, receipts 1..3.
func threeTopUps(t *testing.T, db *store.DB) {
	for _, ref := range []string{"P-1", "P-2", "P-3"} {
		topUp(t, db, "T-1", ref)
	}
}

func chain(edits ...func(tx *bolt.Tx) error) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		for _, edit := range edits {
			if err := edit(tx); err != nil {
				return err
			}
		}
		return nil
	}
}

// putEntry writes e behind the store's back, in its account's index.
func putEntry(e store.Entry) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		key := binary.BigEndian.AppendUint64(nil, e.ID)
		raw, _ := json.Marshal(e)
		if err := tx.Bucket([]byte("entries")).Put(key, raw); err != nil {
			return err
		}
		return tx.Bucket([]byte("by_account")).Bucket([]byte(e.Account)).Put(key, nil)
	}
}

func putAccount(a store.Account) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		raw, _ := json.Marshal(a)
		return tx.Bucket([]byte("accounts")).Put([]byte(a.ID), raw)
	}
}

func putIndex(bucket string, k, v uint64) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).Put(binary.BigEndian.AppendUint64(nil, k), binary.BigEndian.AppendUint64(nil, v))
	}
}

func deleteIndex(bucket string, k uint64) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).Delete(binary.BigEndian.AppendUint64(nil, k))
	}
}

// deleteRef and putRef edit the index of references (store topup_refs).
func deleteRef(ref string) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte("topup_refs")).Delete([]byte(ref)) }
}

func putRef(ref string, id uint64) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("topup_refs")).Put([]byte(ref), binary.BigEndian.AppendUint64(nil, id))
	}
}

func setSequence(bucket string, n uint64) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).SetSequence(n) }
}

// auditLog appends n records to db's audit log.
func auditLog(n int) func(t *testing.T, db *store.DB) {
	return func(t *testing.T, db *store.DB) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := db.AppendAudit(store.AuditRecord{Time: vt0.Add(time.Duration(i) * time.Minute), Actor: "user:ann", Role: "operator",
				Action: "POST /api/v1/accounts/{tenant}/topups", Target: "T-1", After: "100.00", Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// editAudit rewrites audit record seq's JSON through edit.
func editAudit(seq uint64, edit func(map[string]any)) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		key := binary.BigEndian.AppendUint64(nil, seq)
		var r map[string]any
		if err := json.Unmarshal(b.Get(key), &r); err != nil {
			return err
		}
		edit(r)
		raw, _ := json.Marshal(r)
		return b.Put(key, raw)
	}
}

// alarmLedger stores events that raise alarm 1 (meter_offline of M-1,
// cleared by event 2), alarm 2 (relay_fault of M-2, event 3, acknowledged
// by event 4) and alarm 3 (bus_down of a, event 5), the last two open.
func alarmLedger(t *testing.T, db *store.DB) {
	t.Helper()
	for i, e := range []store.Event{{Kind: "meter_offline", Meter: "M-1"}, {Kind: "meter_online", Meter: "M-1"}, {Kind: "relay_fault", Meter: "M-2"}} {
		e.Time = vt0.Add(time.Duration(i) * time.Minute)
		if _, err := db.PostEvents(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.AckAlarm(2, "electrician called", "user:ann", vt0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PostEvents(store.Event{Time: vt0.Add(6 * time.Minute), Kind: "bus_down", Bus: "a"}); err != nil {
		t.Fatal(err)
	}
}

// editAlarm rewrites alarm id's JSON through edit.
func editAlarm(id uint64, edit func(map[string]any)) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("alarms"))
		key := binary.BigEndian.AppendUint64(nil, id)
		var a map[string]any
		if err := json.Unmarshal(b.Get(key), &a); err != nil {
			return err
		}
		edit(a)
		raw, _ := json.Marshal(a)
		return b.Put(key, raw)
	}
}

func damages() []damage {
	return append(append(append(allocationDamages(), invoiceDamages()...), uplinkCommandDamages()...), []damage{
		// Entries under no reference: an entry whose id disagrees with its
		// key would also disagree with the index of references.
		{rule: "entry_order", build: func(t *testing.T, db *store.DB) {
			for _, account := range []string{"T-1", "T-2", "T-1", "T-1"} {
				post(t, db, store.Entry{Account: account, Kind: store.Adjustment, Amount: billing.Yuan, Time: vt0, Actor: "fay", Note: "goodwill"})
			}
		}, tamper: editEntry(3, func(e map[string]any) { e["id"] = 0 })}, // T-1's third entry claims an id before its first
		{rule: "balance_after", build: func(t *testing.T, db *store.DB) { topUp(t, db, "T-1", "P-1") },
			tamper: editEntry(1, func(e map[string]any) { e["balance_after"] = 5 })},
		{rule: "account_totals", build: func(t *testing.T, db *store.DB) { topUp(t, db, "T-1", "P-1") },
			tamper: func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("accounts")).Put([]byte("T-1"), []byte(`{"id":"T-1","balance":1,"entries":1,"last_entry":1}`))
			}},
		{rule: "topup", build: func(t *testing.T, db *store.DB) {
			topUp(t, db, "T-1", "P-1")
			topUp(t, db, "T-1", "P-2")
		}, tamper: chain(editEntry(2, func(e map[string]any) { e["ref"] = "P-1" }), deleteRef("P-2"))}, // credited twice
		{rule: "debit", build: func(t *testing.T, db *store.DB) {
			post(t, db, store.Entry{Account: "T-1", Kind: store.Allocation, Amount: billing.Yuan, Time: vt0})
		}},
		{rule: "charge_energy", build: func(t *testing.T, db *store.DB) {
			cleanMeter(t, db)
		}, tamper: editEntry(1, func(e map[string]any) { e["wh"] = 1521 })},
		{rule: "negative_span", build: func(t *testing.T, db *store.DB) {
			post(t, db, store.Entry{Account: "T-1", Kind: store.Charge, Amount: 0, Time: vt0, FromWh: 200, ToWh: 100, Wh: -100})
		}},
		// The store refuses these reversals; they are written behind its
		// back, balances and indexes kept consistent.
		{rule: "reversal", build: reversedTopUp, tamper: chain(
			editEntry(2, func(e map[string]any) { e["amount"], e["balance_after"] = -50*billing.Yuan, 50*billing.Yuan }),
			putAccount(store.Account{ID: "T-1", Balance: 50 * billing.Yuan, Entries: 2, LastEntry: 2, Updated: vt0}))},
		{rule: "reversal", build: reversedTopUp, tamper: chain( // the reversal reversed
			putEntry(store.Entry{ID: 3, Account: "T-1", Kind: store.Reversal, Amount: 100 * billing.Yuan, Balance: 100 * billing.Yuan, Reverses: 2, Time: vt0, Actor: "ann", Note: "undo"}),
			putIndex("reversed", 2, 3),
			putAccount(store.Account{ID: "T-1", Balance: 100 * billing.Yuan, Entries: 3, LastEntry: 3, Updated: vt0}))},
		{rule: "reversal", build: reversedTopUp, tamper: chain( // the top-up reversed twice
			putEntry(store.Entry{ID: 3, Account: "T-1", Kind: store.Reversal, Amount: -100 * billing.Yuan, Balance: -100 * billing.Yuan, Reverses: 1, Time: vt0, Actor: "ann", Note: "again"}),
			putAccount(store.Account{ID: "T-1", Balance: -100 * billing.Yuan, Entries: 3, LastEntry: 3, Updated: vt0}))},
		// A correction under a reference already used: a retry that was
		// taken for a second correction.
		{rule: "correction_ref", build: func(t *testing.T, db *store.DB) {
			topUp(t, db, "T-1", "P-1")
			correct(t, db, store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: billing.Yuan, Ref: "A-1", Note: "goodwill", Actor: "fay", Time: vt0})
		}, tamper: chain(editEntry(2, func(e map[string]any) { e["ref"] = "P-1" }), deleteRef("A-1"))},
		// Receipt numbers with a gap, and one given twice, their index
		// edited to agree.
		{rule: "receipt", build: threeTopUps, tamper: chain(
			editEntry(3, func(e map[string]any) { e["receipt"] = 4 }),
			deleteIndex("receipts", 3), putIndex("receipts", 4, 3), setSequence("receipts", 4))},
		{rule: "receipt", build: threeTopUps, tamper: chain(
			editEntry(3, func(e map[string]any) { e["receipt"] = 2 }),
			deleteIndex("receipts", 3), setSequence("receipts", 2))},
		{rule: "receipt", build: threeTopUps, tamper: chain( // a top-up without one
			editEntry(3, func(e map[string]any) { delete(e, "receipt") }),
			deleteIndex("receipts", 3), setSequence("receipts", 2))},
		{rule: "receipt", build: threeTopUps, tamper: chain( // a number on a charge
			putEntry(store.Entry{ID: 4, Account: "T-1", Kind: store.Charge, Amount: -billing.Yuan, Balance: 299 * billing.Yuan, Time: vt0, Receipt: 9}),
			putAccount(store.Account{ID: "T-1", Balance: 299 * billing.Yuan, Entries: 4, LastEntry: 4, Updated: vt0}))},
		// The indexes out of step with the entries: a number that would be
		// given again, a number lost, a reversal the store would allow again.
		{rule: "correction_index", build: threeTopUps, tamper: setSequence("receipts", 2)},
		{rule: "correction_index", build: threeTopUps, tamper: deleteIndex("receipts", 2)},
		{rule: "correction_index", build: reversedTopUp, tamper: deleteIndex("reversed", 1)},
		// The index of references out of step with the entries: a payment
		// the store would credit again on a retry, a correction's reference
		// naming the entry it corrected, a reference naming no entry.
		{rule: "ref_index", build: threeTopUps, tamper: deleteRef("P-2")},
		{rule: "ref_index", build: reversedTopUp, tamper: putRef("R-1", 1)},
		{rule: "ref_index", build: threeTopUps, tamper: putRef("P-9", 7)},
		{rule: "adjustment", build: func(t *testing.T, db *store.DB) {
			post(t, db, store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: billing.Yuan, Time: vt0})
		}},
		{rule: "kind", build: func(t *testing.T, db *store.DB) {
			post(t, db, store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: billing.Yuan, Time: vt0, Actor: "ann", Note: "x"})
		}, tamper: editEntry(1, func(e map[string]any) { e["kind"] = "bonus" })},
		{rule: "meter_state", build: func(t *testing.T, db *store.DB) {
			commit(t, db, store.Cycle{MeterState: map[string][]byte{"M-9": {99}}})
		}},
		{rule: "chain_breaks", build: func(t *testing.T, db *store.DB) {
			commit(t, db, store.Cycle{Breaks: []store.Break{
				{Meter: "M-9", Chain: 0, Kind: "baseline", At: vt0},
				{Meter: "M-9", Chain: 2, Kind: "reset", At: vt0}, // chain 1 never started
			}})
		}},
		{rule: "chain_cover", build: func(t *testing.T, db *store.DB) {
			cleanMeter(t, db)
			commit(t, db, store.Cycle{Charges: []store.Entry{meterCharge(1000, 2520, 0)}}) // the same span again
		}},
		{rule: "double_exchange", build: func(t *testing.T, db *store.DB) {
			commit(t, db, store.Cycle{Breaks: []store.Break{
				{Meter: "M-9", Chain: 0, Kind: "baseline", At: vt0, NewStartWh: 5_000_000},
				{Meter: "M-9", Chain: 0, Kind: "unbilled", At: vt0, OldEndWh: 5_000_000}, // a public meter
				{Meter: "M-9", Chain: 1, Kind: "exchanged", At: vt0, OldEndWh: 5_000_000},
				{Meter: "M-9", Chain: 2, Kind: "exchanged", At: vt0.Add(time.Hour), OldEndWh: 5_000_000},
			}, Events: []store.Event{{Time: vt0, Kind: "billing_stopped", Meter: "M-9", Text: "public"}}})
		}},
		{rule: "billing_marks", build: func(t *testing.T, db *store.DB) {
			// 2000 → 3000 Wh never charged, hidden behind marks made by hand.
			commit(t, db, store.Cycle{
				Breaks: []store.Break{
					{Meter: "M-1", Chain: 0, Kind: "baseline", At: vt0, NewStartWh: 1000},
					{Meter: "M-1", Chain: 0, Kind: "unbilled", At: vt0, OldEndWh: 2000},
					{Meter: "M-1", Chain: 0, Kind: "billed", At: vt0, NewStartWh: 3000},
				},
				Charges:    []store.Entry{meterCharge(1000, 2000, 0), meterCharge(3000, 4000, 0)},
				MeterState: map[string][]byte{"M-1": stateAt(4000, 0)},
			})
		}},
		// The audit log's chain, changed behind the gateway's back in each
		// way one could hope to hide a change.
		{rule: "audit_chain", build: auditLog(3), tamper: editAudit(2, func(r map[string]any) { r["actor"] = "user:bob" })},
		{rule: "audit_chain", build: auditLog(3), tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("audit")).Delete(binary.BigEndian.AppendUint64(nil, 2))
		}},
		{rule: "audit_chain", build: auditLog(3), tamper: func(tx *bolt.Tx) error { // the newest record removed
			return tx.Bucket([]byte("audit")).Delete(binary.BigEndian.AppendUint64(nil, 3))
		}},
		{rule: "audit_chain", build: auditLog(3), tamper: func(tx *bolt.Tx) error { // two records swapped
			b := tx.Bucket([]byte("audit"))
			k1, k2 := binary.BigEndian.AppendUint64(nil, 1), binary.BigEndian.AppendUint64(nil, 2)
			v1, v2 := append([]byte(nil), b.Get(k1)...), append([]byte(nil), b.Get(k2)...)
			if err := b.Put(k1, v2); err != nil {
				return err
			}
			return b.Put(k2, v1)
		}},
		{rule: "audit_chain", build: auditLog(3), tamper: func(tx *bolt.Tx) error { // edited, its own hash recomputed
			b := tx.Bucket([]byte("audit"))
			key := binary.BigEndian.AppendUint64(nil, 2)
			var r store.AuditRecord
			if err := json.Unmarshal(b.Get(key), &r); err != nil {
				return err
			}
			r.After = "1000.00"
			r.Hash = store.AuditHash(r)
			raw, _ := json.Marshal(r)
			return b.Put(key, raw)
		}},
		// Alarms changed behind the gateway's back to look handled, or
		// never to have been.
		{rule: "alarms", build: alarmLedger, tamper: editAlarm(2, func(a map[string]any) { a["kind"] = "bypass_suspected" })},
		{rule: "alarms", build: alarmLedger, tamper: editAlarm(2, func(a map[string]any) { a["severity"] = "warning" })},
		{rule: "alarms", build: alarmLedger, tamper: func(tx *bolt.Tx) error { // its raising event removed
			return tx.Bucket([]byte("events")).Delete(binary.BigEndian.AppendUint64(nil, 5))
		}},
		{rule: "alarms", build: alarmLedger, tamper: editAlarm(3, func(a map[string]any) { // cleared without its event
			a["cleared"], a["cleared_event"] = vt0.Add(time.Hour), 99
		})},
		{rule: "alarms", build: alarmLedger, tamper: editAlarm(1, func(a map[string]any) { a["cleared_event"] = 1 })}, // cleared before raised
		{rule: "alarms", build: alarmLedger, tamper: editAlarm(1, func(a map[string]any) { a["cleared_event"] = 3 })}, // by an event that does not clear it
		{rule: "alarms", build: alarmLedger, tamper: editAlarm(2, func(a map[string]any) { a["acknowledged_by"] = "" })},
		{rule: "alarms", build: alarmLedger, tamper: editAlarm(3, func(a map[string]any) { // acknowledged by hand, no event
			a["acknowledged"], a["acknowledged_by"], a["note"] = vt0.Add(time.Hour), "user:ann", "fixed"
		})},
		{rule: "alarms", build: alarmLedger, tamper: func(tx *bolt.Tx) error { // a second open alarm of one episode
			b := tx.Bucket([]byte("alarms"))
			var a map[string]any
			if err := json.Unmarshal(b.Get(binary.BigEndian.AppendUint64(nil, 2)), &a); err != nil {
				return err
			}
			a["id"] = 4
			raw, _ := json.Marshal(a)
			return b.Put(binary.BigEndian.AppendUint64(nil, 4), raw)
		}},
		{rule: "alarms", build: alarmLedger, tamper: func(tx *bolt.Tx) error { // an alarm removed with its index entry
			if err := tx.Bucket([]byte("alarms")).Delete(binary.BigEndian.AppendUint64(nil, 3)); err != nil {
				return err
			}
			return tx.Bucket([]byte("alarms_open")).Delete([]byte("bus_down\x00a"))
		}},
		{rule: "alarms", build: alarmLedger, tamper: func(tx *bolt.Tx) error { // the index names another alarm
			return tx.Bucket([]byte("alarms_open")).Put([]byte("relay_fault\x00M-2"), binary.BigEndian.AppendUint64(nil, 1))
		}},
		// A notice queued behind the gateway's back (in no index: never
		// sent), and an index entry naming no notice.
		{rule: "outbox", build: func(*testing.T, *store.DB) {}, tamper: func(tx *bolt.Tx) error {
			raw, _ := json.Marshal(store.Delivery{ID: "x-1", Seq: 1, State: store.DeliveryPending, Channel: "ops", Created: vt0, Due: vt0})
			return tx.Bucket([]byte("outbox")).Put(binary.BigEndian.AppendUint64(nil, 1), raw)
		}},
		{rule: "outbox", build: func(*testing.T, *store.DB) {}, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("outbox_due")).Put(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 5), 9), nil)
		}},
		// An uplink message rewritten under another seq; the last seq given
		// set back below the messages (their seqs would be given again); a
		// message removed without the counters; one that cannot be read.
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error {
			raw, _ := json.Marshal(store.UplinkMessage{Seq: 1, Kind: "event", Time: vt0, Data: json.RawMessage(`{}`)})
			return tx.Bucket([]byte("uplink_out")).Put(binary.BigEndian.AppendUint64(nil, 2), raw)
		}},
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("uplink_out")).SetSequence(1)
		}},
		// The feed's cursors: one not 8 bytes, the events and ledger ones
		// past what is stored (the news up to them would never go up), a
		// time cursor years ahead.
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("uplink_meta")).Put([]byte("cursor:events"), []byte{1})
		}},
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("uplink_meta")).Put([]byte("cursor:events"), binary.BigEndian.AppendUint64(nil, 3))
		}},
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("uplink_meta")).Put([]byte("cursor:ledger"), binary.BigEndian.AppendUint64(nil, 1))
		}},
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("uplink_meta")).Put([]byte("cursor:interval"), binary.BigEndian.AppendUint64(nil, uint64(vt0.AddDate(30, 0, 0).Unix())))
		}},
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error { // removed without the counters
			return tx.Bucket([]byte("uplink_out")).Delete(binary.BigEndian.AppendUint64(nil, 1))
		}},
		{rule: "uplink_outbox", build: uplinkOutbox, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("uplink_out")).Put(binary.BigEndian.AppendUint64(nil, 2), []byte(`{"seq":`))
		}},
		{rule: "charge_price", build: func(t *testing.T, db *store.DB) {
			c := meterCharge(1000, 2520, 0)
			c.Amount -= billing.Fen // a fen more than 1.52 kWh at 1.00
			commit(t, db, store.Cycle{
				Breaks:     []store.Break{{Meter: "M-1", Chain: 0, Kind: "baseline", At: vt0, NewStartWh: 1000}},
				Charges:    []store.Entry{c},
				MeterState: map[string][]byte{"M-1": stateAt(2520, 0)},
			})
		}},
	}...)
}

// uplinkOutbox queues two uplink messages and acknowledges none.
func uplinkOutbox(t *testing.T, db *store.DB) {
	t.Helper()
	ms := []store.UplinkMessage{{Kind: "event", Time: vt0, Data: json.RawMessage(`{"n":1}`)}, {Kind: "ledger", Time: vt0, Data: json.RawMessage(`{"n":2}`)}}
	// Cursors as gateway/upfeed keeps them: 8 bytes, at the last event
	// and entry stored (none here), times of the quarter and minute.
	cursors := map[string][]byte{"events": binary.BigEndian.AppendUint64(nil, 0), "ledger": binary.BigEndian.AppendUint64(nil, 0),
		"interval": binary.BigEndian.AppendUint64(nil, uint64(vt0.Unix())), "heartbeat": binary.BigEndian.AppendUint64(nil, uint64(vt0.Unix()))}
	if _, err := db.EnqueueUplink(ms, cursors); err != nil {
		t.Fatal(err)
	}
}

func buildDamaged(t *testing.T, d damage) *store.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.build(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if d.tamper != nil {
		b, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Update(d.tamper); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	db, err = store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Every rule of verify is needed: each damaged ledger below is found by
// verify, and by no rule but its own — so removing any one rule lets a
// damaged ledger pass, and this test fails.
func TestVerify_EveryRuleIsNeeded(t *testing.T) {
	covered := make(map[string]bool)
	for _, d := range damages() {
		t.Run(d.rule, func(t *testing.T) {
			db := buildDamaged(t, d)
			all, err := Check(db)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) == 0 {
				t.Fatalf("verify passed a ledger damaged for rule %s", d.rule)
			}
			var without []verifyRule
			for _, r := range verifyRules {
				if r.name != d.rule {
					without = append(without, r)
				}
			}
			if len(without) != len(verifyRules)-1 {
				t.Fatalf("no rule named %s", d.rule)
			}
			rest, err := verifyWith(db, without)
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) != 0 {
				var s []string
				for _, v := range rest {
					s = append(s, v.String())
				}
				t.Errorf("without rule %s verify still finds:\n%s\nwant the fault found by %s alone", d.rule, strings.Join(s, "\n"), d.rule)
			}
			covered[d.rule] = true
		})
	}
	for _, r := range verifyRules {
		if !covered[r.name] {
			t.Errorf("rule %s has no damaged ledger that only it finds", r.name)
		}
	}
}

// A clean ledger with chains broken by a reset and an exchange passes.
func TestVerify_AcceptsResetsAndExchanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	commit(t, db, store.Cycle{
		Breaks:  []store.Break{{Meter: "M-1", Chain: 0, Kind: "baseline", At: vt0, NewStartWh: 1000}},
		Charges: []store.Entry{meterCharge(1000, 2000, 0)},
	})
	// A reset with no energy since on the new counter: the chain starts and
	// ends at 50 Wh, and the old chain ends where its charges did.
	commit(t, db, store.Cycle{
		Breaks:     []store.Break{{Meter: "M-1", Chain: 1, Kind: "reset", At: vt0, OldEndWh: 2000, NewStartWh: 50}},
		MeterState: map[string][]byte{"M-1": stateAt(50, 1)},
	})
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("after a reset with no energy since: %v, %v; want clean", v, err)
	}
	// An exchange recorded later amends the reset: the old meter's last
	// energy on chain 0, the new one's first on chain 1.
	commit(t, db, store.Cycle{
		Breaks:     []store.Break{{Meter: "M-1", Chain: 1, Kind: "exchanged", At: vt0, OldEndWh: 2100, NewStartWh: 0, Amends: true}},
		Charges:    []store.Entry{meterCharge(2000, 2100, 0), meterCharge(0, 50, 1)},
		MeterState: map[string][]byte{"M-1": stateAt(50, 1)},
	})
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("after the exchange amending it: %v, %v; want clean", v, err)
	}
}

// A meter first read before breaks were recorded (a ledger upgraded from
// schema 2) has charges on chain 0 and no baseline break; its first reset
// after the upgrade starts chain 1, and verify accepts it.
func TestVerify_AcceptsAMeterFromBeforeBreaks(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	commit(t, db, store.Cycle{Charges: []store.Entry{meterCharge(1000, 2000, 0)}}) // from before the upgrade
	commit(t, db, store.Cycle{
		Breaks:     []store.Break{{Meter: "M-1", Chain: 1, Kind: "reset", At: vt0, OldEndWh: 2000, NewStartWh: 50}},
		Charges:    []store.Entry{meterCharge(50, 90, 1)},
		MeterState: map[string][]byte{"M-1": stateAt(90, 1)},
	})
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("Verify = %v, %v; want clean", v, err)
	}
}

// What the daemon loads at start and cannot read — a meter's state, a
// tenant's month, an enforcement record — is damage to verify too, and to
// the daemon store.ErrCorrupt (exit 3), not a passing ledger.
func TestVerify_ReadsWhatTheDaemonLoads(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, db *store.DB)
	}{
		{"meter state", func(t *testing.T, db *store.DB) {
			commit(t, db, store.Cycle{MeterState: map[string][]byte{"M-1": {99}}})
		}},
		{"tenant month", func(t *testing.T, db *store.DB) {
			commit(t, db, store.Cycle{MeterState: map[string][]byte{pipeline.TenantKeyPrefix + "T-1": []byte("{bad")}})
		}},
		{"relay control", func(t *testing.T, db *store.DB) {
			if _, err := db.PutControl(map[string][]byte{enforce.ControlMeterPrefix + "M-1": []byte("{bad")}); err != nil {
				t.Fatal(err)
			}
		}},
		{"account control", func(t *testing.T, db *store.DB) {
			if _, err := db.PutControl(map[string][]byte{enforce.ControlTenantPrefix + "T-1": []byte("[]")}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			tt.damage(t, db)
			if v, err := Check(db); err != nil || len(v) == 0 {
				t.Errorf("Verify = %v, %v; want the damaged record named", v, err)
			}
			cfg, err := config.Parse("t.yaml", []byte("site: {name: x, timezone: Asia/Shanghai}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
				"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}]\ntenants: [{id: T-1, name: One}]\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, perr := pipeline.New(db, cfg, live.New(cfg, "test", "", time.Now), nil, zerolog.Nop())
			_, eerr := enforce.New(cfg, db, live.New(cfg, "test", "", time.Now), nil, zerolog.Nop(), time.Now, enforce.Options{})
			if !errors.Is(perr, store.ErrCorrupt) && !errors.Is(eerr, store.ErrCorrupt) {
				t.Errorf("loading it: pipeline %v, enforcement %v; want store.ErrCorrupt", perr, eerr)
			}
		})
	}
}

// Alarms as the gateway keeps them pass: raised, cleared, acknowledged
// (database_unavailable cleared by its acknowledgement), raised again; and
// File counts them.
func TestVerify_AcceptsAlarms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alarmLedger(t, db)
	for _, e := range []store.Event{
		{Kind: "meter_offline", Meter: "M-1"}, {Kind: "meter_offline", Meter: "M-1"}, // a new episode, reported twice
		{Kind: "relay_closed", Meter: "M-2"},
		{Kind: "database_unavailable"},
		{Kind: "bus_down", Text: "Bus a is down: …"}, // the open episode, from its sentence
	} {
		e.Time = vt0.Add(time.Hour)
		if _, err := db.PostEvents(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.AckAlarm(5, "restored from the rescued copy", "user:ann", vt0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("Verify = %v, %v; want clean", v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := File(path)
	if err != nil || len(r.Violations) != 0 || r.Alarms != 5 || r.OpenAlarms != 2 {
		t.Errorf("File = %+v, %v; want 5 alarms, 2 open (meter_offline M-1, bus_down a), no violation", r, err)
	}
}

// Corrections as finance makes them pass: top-ups numbered 1..3, a top-up
// and a charge reversed, credit and debit adjustments, a retry answered
// with the first entry.
func TestVerify_AcceptsCorrections(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cleanMeter(t, db) // entry 1: T-1's charge
	threeTopUps(t, db)
	correct(t, db, store.Entry{Account: "T-1", Kind: store.Reversal, Reverses: 1, Ref: "R-1", Note: "meter misread", Actor: "fay", Time: vt0})
	correct(t, db, store.Entry{Account: "T-1", Kind: store.Reversal, Reverses: 3, Ref: "R-2", Note: "cheque bounced", Actor: "fay", Time: vt0})
	correct(t, db, store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: -1230 * billing.Fen, Ref: "A-1", Note: "repair", Actor: "fay", Time: vt0})
	correct(t, db, store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: 5 * billing.Yuan, Ref: "A-2", Note: "goodwill", Actor: "fay", Time: vt0})
	correct(t, db, store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: 5 * billing.Yuan, Ref: "A-2", Note: "goodwill", Actor: "fay", Time: vt0})
	topUp(t, db, "T-2", "P-4")
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("Verify = %v, %v; want clean", v, err)
	}
}

// A database upgraded from schema 7: its top-ups have no receipt number
// (their receipts were printed with their entry ids), the next ones are
// numbered from above its highest entry id, and verify passes it.
func TestVerify_AcceptsReceiptsFromBeforeNumbers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	threeTopUps(t, db)
	db.Close()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for id := uint64(1); id <= 3; id++ {
			if err := editEntry(id, func(e map[string]any) { delete(e, "receipt") })(tx); err != nil {
				return err
			}
		}
		for _, name := range []string{"receipts", "reversed"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint32(nil, 7))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if e := topUp(t, db, "T-2", "P-4"); e.Receipt != 4 {
		t.Errorf("first receipt after the upgrade = %d; want 4, above entry ids 1..3", e.Receipt)
	}
	topUp(t, db, "T-1", "P-5")
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("Verify = %v, %v; want clean", v, err)
	}
}

// An uplink outbox the store kept passes: messages queued, some
// acknowledged out of order, more queued after.
func TestVerify_AcceptsUplinkOutbox(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	uplinkOutbox(t, db)
	uplinkOutbox(t, db)
	if err := db.AckUplink(3, 1, 9); err != nil {
		t.Fatal(err)
	}
	uplinkOutbox(t, db)
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("Verify = %v, %v; want clean", v, err)
	}
}
