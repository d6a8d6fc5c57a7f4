package verify

import (
	"encoding/json"
	"testing"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
	"mallgrid/store"
)

// invoicedTopUps are T-1's top-ups P-1 (entry 1, an e-invoice requested)
// and P-2 (entry 2, none), and T-2's P-3 (entry 3, none).
func invoicedTopUps(t *testing.T, db *store.DB) {
	t.Helper()
	inv := &store.Invoice{Title: "Acme Ltd", TaxID: "91310000MA1FL0XX0X"}
	if _, _, _, err := db.PostTopUpWith(store.Entry{Account: "T-1", Amount: 100 * billing.Yuan, Ref: "P-1", Channel: "wechat", Time: vt0},
		store.TopUpOptions{Invoice: inv}); err != nil {
		t.Fatal(err)
	}
	topUp(t, db, "T-1", "P-2")
	topUp(t, db, "T-2", "P-3")
}

// editInvoice rewrites the invoice under ref through edit.
func editInvoice(ref string, edit func(map[string]any)) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("invoices"))
		var inv map[string]any
		if err := json.Unmarshal(b.Get([]byte(ref)), &inv); err != nil {
			return err
		}
		edit(inv)
		raw, _ := json.Marshal(inv)
		return b.Put([]byte(ref), raw)
	}
}

// invoiceDamages are e-invoice requests only the invoice rule finds.
func invoiceDamages() []damage {
	d := func(edit func(map[string]any)) damage {
		return damage{rule: "invoice", build: invoicedTopUps, tamper: editInvoice("P-1", edit)}
	}
	return []damage{
		d(func(inv map[string]any) { inv["entry"] = 2 }),  // another top-up of the tenant
		d(func(inv map[string]any) { inv["entry"] = 99 }), // no such entry
		d(func(inv map[string]any) { inv["tenant"] = "T-2" }),
		d(func(inv map[string]any) { inv["status"] = "issued" }), // without a number
		d(func(inv map[string]any) { inv["status"] = "sent" }),
		d(func(inv map[string]any) { inv["status"], inv["reason"], inv["number"] = "failed", "x", "0440" }),
		d(func(inv map[string]any) { inv["title"] = "" }),
		{rule: "invoice", build: func(t *testing.T, db *store.DB) { // an invoice on a correction
			invoicedTopUps(t, db)
			post(t, db, store.Entry{Account: "T-1", Kind: store.Adjustment, Amount: billing.Yuan, Time: vt0, Actor: "fay", Note: "goodwill"})
		}, tamper: editInvoice("P-1", func(inv map[string]any) { inv["entry"] = 4 })},
		{rule: "invoice", build: invoicedTopUps, tamper: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("invoices")).Put([]byte("P-2"), []byte(`{"ref":`))
		}},
		{rule: "invoice", build: invoicedTopUps, tamper: func(tx *bolt.Tx) error { // a copy under another reference
			b := tx.Bucket([]byte("invoices"))
			return b.Put([]byte("P-2"), b.Get([]byte("P-1")))
		}},
	}
}

// Requests in every status the gateway writes pass.
func TestVerify_AcceptsInvoices(t *testing.T) {
	db := buildDamaged(t, damage{build: func(t *testing.T, db *store.DB) {
		invoicedTopUps(t, db)
		for _, ref := range []string{"P-4", "P-5"} {
			if _, _, _, err := db.PostTopUpWith(store.Entry{Account: "T-2", Amount: billing.Yuan, Ref: ref, Channel: "cash", Time: vt0},
				store.TopUpOptions{Invoice: &store.Invoice{Title: "张三", Email: "z@example.com"}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.SetInvoiceStatus("P-1", store.InvoiceIssued, "04400001", "https://inv.example/1", "", vt0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetInvoiceStatus("P-4", store.InvoiceFailed, "", "", "tax office down", vt0); err != nil {
			t.Fatal(err)
		}
	}})
	got, err := Check(db)
	if err != nil || len(got) != 0 {
		t.Errorf("Check = %v, %v; want no violation", got, err)
	}
}
