package verify

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/billing/counter"
	"mallgrid/gateway/pipeline"
	"mallgrid/store"
)

func TestVerify_CleanLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	db := ledgerFixture(t, path)
	defer db.Close()
	v, err := Check(db)
	if err != nil || len(v) != 0 {
		t.Errorf("Verify of a clean ledger = %v, %v; want no violation", v, err)
	}
}

// Verify finds an entry whose amount no longer matches the balances, and a
// stored account balance that disagrees with its entries: changes made
// behind the ledger's back.
func TestVerify_FindsTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	ledgerFixture(t, path).Close()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		entries := tx.Bucket([]byte("entries"))
		key := binary.BigEndian.AppendUint64(nil, 2)
		var e map[string]any
		if err := json.Unmarshal(entries.Get(key), &e); err != nil {
			return err
		}
		e["amount"] = -1 // a charge made smaller after the fact
		raw, _ := json.Marshal(e)
		return entries.Put(key, raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := Check(db)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, x := range v {
		all = append(all, x.String())
	}
	text := strings.Join(all, "\n")
	if !strings.Contains(text, "entry 2: balance after") || !strings.Contains(text, "account T-1: stored balance") {
		t.Errorf("violations:\n%s\nwant the tampered entry and the account's balance named", text)
	}
}

// ledgerFixture writes a small valid ledger: a top-up, a charge in a bus
// cycle, an adjustment, and a reversed top-up.
func ledgerFixture(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	if _, _, err := db.PostTopUp(store.Entry{Account: "T-1", Amount: 100 * billing.Yuan, Ref: "PAY-1", Channel: "cash", Time: t0}); err != nil {
		t.Fatal(err)
	}
	charge := store.Entry{Account: "T-1", Kind: store.Charge, Amount: -152 * billing.Fen, Time: t0, Meter: "M-1", FromWh: 1000, ToWh: 2520, Wh: 1520, UnitPrice: billing.Price(billing.Yuan)}
	if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{charge}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PostEntry(store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: 5 * billing.Yuan, Time: t0, Actor: "ann", Note: "goodwill"}); err != nil {
		t.Fatal(err)
	}
	top, _, err := db.PostTopUp(store.Entry{Account: "T-2", Amount: 30 * billing.Yuan, Ref: "PAY-2", Channel: "wechat", Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PostEntry(store.Entry{Account: "T-2", Kind: store.Reversal, Amount: -top.Amount, Reverses: top.ID, Time: t0, Actor: "ann", Note: "refunded"}); err != nil {
		t.Fatal(err)
	}
	return db
}

// The same counter span charged twice is found (it once passed as a reset).
func TestVerify_FindsADoubleCharge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	charge := store.Entry{Account: "T-1", Kind: store.Charge, Amount: -10 * billing.Fen, Time: t0, Meter: "M-1", FromWh: 100, ToWh: 200, Wh: 100}
	state := pipeline.EncodeState(&pipeline.MeterState{Counter: counter.State{Known: true, Baseline: counter.Sample{Wh: 200, At: t0}}})
	for i := 0; i < 2; i++ {
		if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{charge}, MeterState: map[string][]byte{"M-1": state}}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := Check(db)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 || !strings.Contains(v[0].String(), "charged twice") {
		t.Errorf("violations = %v; want the span 100→200 Wh charged twice", v)
	}
}

// File checks the audit log beside the ledger: a whole chain is no
// violation, and the report gives its length and newest hash (the anchor
// to copy outside the gateway); an edited record is a violation naming it.
func TestFile_AuditLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	db := ledgerFixture(t, path)
	auditLog(3)(t, db)
	newest, err := db.AuditRecords(store.AuditFilter{Limit: 1})
	if err != nil || len(newest) != 1 {
		t.Fatal(newest, err)
	}
	db.Close()
	r, err := File(path)
	if err != nil || len(r.Violations) != 0 {
		t.Fatalf("File = %+v, %v; want no violation", r, err)
	}
	if r.AuditRecords != 3 || r.AuditLast != newest[0].Hash {
		t.Errorf("report: %d audit records, last %q; want 3, %q", r.AuditRecords, r.AuditLast, newest[0].Hash)
	}
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(editAudit(1, func(r map[string]any) { r["reason"] = "nothing happened" })); err != nil {
		t.Fatal(err)
	}
	b.Close()
	r, err = File(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Violations) != 1 || !strings.Contains(r.Violations[0].String(), "audit record 1: its content hashes to") || r.AuditLast != "" {
		t.Errorf("after an edit: %+v; want one violation naming audit record 1, and no last hash to trust", r)
	}
}
