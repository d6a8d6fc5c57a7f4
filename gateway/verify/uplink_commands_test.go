package verify

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/store"
)

// finishCommand records command id as handled at vt0 with result.
func finishCommand(t *testing.T, db *store.DB, id, result string) {
	t.Helper()
	if _, _, err := db.FinishUplinkCommand(id, [32]byte{1}, vt0.Add(time.Hour),
		store.UplinkMessage{Kind: store.KindCommandResult, Time: vt0, Data: json.RawMessage(result)}); err != nil {
		t.Fatal(err)
	}
}

// uplinkCommands is what the uplink records: c-1 credited P-1 (entry 1)
// anew, c-2 the same payment again (existing), c-3 refused by the ledger,
// c-4 an invoice status of P-1, c-5 the same payment again with another
// invoice request (existing, invoice conflict).
func uplinkCommands(t *testing.T, db *store.DB) {
	t.Helper()
	if _, _, _, err := db.PostTopUpWith(store.Entry{Account: "T-1", Amount: 100 * billing.Yuan, Ref: "P-1", Channel: "wechat", Time: vt0, Actor: "uplink:k1"},
		store.TopUpOptions{Invoice: &store.Invoice{Title: "Acme Ltd"}}); err != nil {
		t.Fatal(err)
	}
	// c-1's record keeps the payment its command named.
	if _, _, err := db.FinishUplinkCommandRecord(store.UplinkCommand{ID: "c-1", PayloadSHA256: strings.Repeat("01", 32), Expires: vt0.Add(time.Hour),
		Ref: "P-1", Tenant: "T-1", Amount: "100.00"},
		store.UplinkMessage{Kind: store.KindCommandResult, Time: vt0, Data: json.RawMessage(`{"id":"c-1","status":"ok","entry":1,"receipt":"R00000001","balance":"100.00","existing":false}`)}); err != nil {
		t.Fatal(err)
	}
	finishCommand(t, db, "c-2", `{"id":"c-2","status":"ok","entry":1,"receipt":"R00000001","balance":"100.00","existing":true}`)
	finishCommand(t, db, "c-3", `{"id":"c-3","status":"refused","reason":"ref_conflict","detail":"x"}`)
	finishCommand(t, db, "c-4", `{"id":"c-4","status":"ok","ref":"P-1","invoice_status":"requested"}`)
	finishCommand(t, db, "c-5", `{"id":"c-5","status":"ok","entry":1,"receipt":"R00000001","balance":"100.00","existing":true,"invoice":"conflict"}`)
}

// editCommand rewrites command id's record through edit (the result as a
// map under "result").
func editCommand(id string, edit func(rec map[string]any, result map[string]any)) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("uplink_commands"))
		var rec, res map[string]any
		if err := json.Unmarshal(b.Get([]byte(id)), &rec); err != nil {
			return err
		}
		raw, _ := json.Marshal(rec["result"])
		if err := json.Unmarshal(raw, &res); err != nil {
			return err
		}
		edit(rec, res)
		rec["result"] = res
		out, _ := json.Marshal(rec)
		return b.Put([]byte(id), out)
	}
}

// uplinkCommandDamages are command records only the uplink_commands rule
// finds.
func uplinkCommandDamages() []damage {
	d := func(id string, edit func(rec, res map[string]any)) damage {
		return damage{rule: "uplink_commands", build: uplinkCommands, tamper: editCommand(id, edit)}
	}
	return []damage{
		{rule: "uplink_commands", build: uplinkCommands, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("uplink_commands")).Put([]byte("c-9"), []byte(`{"id":`))
		}},
		d("c-1", func(rec, _ map[string]any) { rec["tenant"] = "T-2" }),           // the entry is another tenant's
		d("c-1", func(rec, _ map[string]any) { rec["amount"] = "1.00" }),          // the entry is another amount
		d("c-1", func(rec, _ map[string]any) { rec["ref"] = "P-9" }),              // the entry is another payment
		d("c-1", func(_, res map[string]any) { res["entry"] = 7 }),                // no such entry
		d("c-1", func(_, res map[string]any) { res["receipt"] = "R00000002" }),    // another receipt
		d("c-1", func(_, res map[string]any) { res["balance"] = "1000.00" }),      // another balance
		d("c-2", func(_, res map[string]any) { res["existing"] = false }),         // P-1 is credited by the uplink once: c-1
		d("c-1", func(_, res map[string]any) { res["id"] = "c-2" }),               // another command's result
		d("c-1", func(_, res map[string]any) { res["duplicate"] = true }),         // not the first result
		d("c-3", func(_, res map[string]any) { res["reason"] = "bad_signature" }), // never recorded
		d("c-4", func(_, res map[string]any) { res["ref"] = "P-9" }),              // no such invoice request
		d("c-1", func(_, res map[string]any) { res["invoice"] = "conflict" }),     // a conflict with its own, new request
		d("c-5", func(_, res map[string]any) { res["invoice"] = "kept" }),         // not a value the gateway writes
		d("c-1", func(rec, _ map[string]any) { rec["handled"] = vt0.Add(2 * time.Hour) }),
		d("c-1", func(_, res map[string]any) { res["status"] = "done" }),
		d("c-1", func(_, res map[string]any) { delete(res, "existing") }),
		{rule: "uplink_commands", build: func(t *testing.T, db *store.DB) {
			uplinkCommands(t, db)
			// A top-up entered at the till, which a command says it
			// credited anew.
			if _, _, err := db.PostTopUp(store.Entry{Account: "T-1", Amount: billing.Yuan, Ref: "P-2", Channel: "cash", Time: vt0, Actor: "till"}); err != nil {
				t.Fatal(err)
			}
			finishCommand(t, db, "c-6", `{"id":"c-6","status":"ok","entry":2,"receipt":"R00000002","balance":"101.00","existing":false}`)
		}},
	}
}

// The records the uplink writes pass.
func TestVerify_AcceptsUplinkCommands(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	uplinkCommands(t, db)
	if v, err := Check(db); err != nil || len(v) != 0 {
		t.Errorf("Verify = %v, %v; want clean", v, err)
	}
}
