package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"mallgrid/billing"
)

func invoiceRequest(title, taxID string) *Invoice {
	return &Invoice{Title: title, TaxID: taxID, Email: "ap@acme.example"}
}

func postInvoiced(db *DB, e Entry, inv *Invoice) (Entry, bool, error) {
	stored, _, existing, err := db.PostTopUpWith(e, TopUpOptions{Invoice: inv})
	return stored, existing, err
}

// eventKinds lists the kinds of every stored event, in id order.
func eventKinds(t *testing.T, db *DB) []string {
	t.Helper()
	evs, err := db.EventsAfter(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

func TestPostTopUpWith_StoresInvoiceRequest(t *testing.T) {
	db, _ := openTemp(t)
	// What the caller sets beyond the request is the store's to fill in.
	req := &Invoice{Title: "Acme Trading Co., Ltd.", TaxID: "91310000MA1FL0XX0X", Email: "ap@acme.example",
		Status: InvoiceIssued, Number: "forged", Tenant: "T-9", Entry: 99}
	e, existing, err := postInvoiced(db, topUp("T-1", "PAY-1", 100*billing.Yuan), req)
	if err != nil || existing {
		t.Fatalf("top-up = %v, existing %v", err, existing)
	}
	got, err := db.Invoices([]string{"PAY-1", "PAY-none"})
	if err != nil {
		t.Fatal(err)
	}
	want := Invoice{Ref: "PAY-1", Entry: e.ID, Tenant: "T-1", Title: req.Title, TaxID: req.TaxID, Email: req.Email,
		Status: InvoiceRequested, Updated: t0}
	if len(got) != 1 || !reflect.DeepEqual(got["PAY-1"], want) {
		t.Errorf("Invoices = %+v; want only PAY-1: %+v", got, want)
	}
	// A top-up without a request stores none.
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-2", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Invoices([]string{"PAY-2"}); len(got) != 0 {
		t.Errorf("a top-up without a request: Invoices = %+v; want none", got)
	}
	if _, _, err := postInvoiced(db, topUp("T-1", "PAY-3", billing.Yuan), &Invoice{TaxID: "91310000MA1FL0XX0X"}); !errors.Is(err, ErrBadEntry) {
		t.Errorf("a request without a title: err = %v; want ErrBadEntry", err)
	}
	if a, _ := db.Account("T-1"); a.Entries != 2 {
		t.Errorf("account has %d entries; want 2 (the request without a title credits nothing)", a.Entries)
	}
}

// A top-up the ledger refuses inside its transaction stores no request.
func TestPostTopUpWith_RefusedTopUpStoresNoInvoice(t *testing.T) {
	db, _ := openTemp(t)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.MaxMoney)); err != nil {
		t.Fatal(err)
	}
	// The balance would pass billing.MaxMoney: appendEntry refuses it,
	// after the receipt number was taken in the same transaction.
	_, _, err := postInvoiced(db, topUp("T-1", "PAY-2", billing.Yuan), invoiceRequest("Acme", ""))
	if !errors.Is(err, ErrBadEntry) {
		t.Fatalf("top-up past the largest balance: err = %v; want ErrBadEntry", err)
	}
	if got, err := db.Invoices([]string{"PAY-2"}); err != nil || len(got) != 0 {
		t.Errorf("refused top-up: Invoices = %+v, %v; want none", got, err)
	}
	all, bad, err := db.AllInvoices()
	if err != nil || len(all) != 0 || len(bad) != 0 {
		t.Errorf("AllInvoices = %+v, %v, %v; want nothing stored", all, bad, err)
	}
}

func TestPostTopUpWith_RepeatedReference(t *testing.T) {
	db, _ := openTemp(t)
	req := invoiceRequest("Acme", "91310000MA1FL0XX0X")
	first, _, err := postInvoiced(db, topUp("T-1", "PAY-1", 100*billing.Yuan), req)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := db.PostTopUp(topUp("T-1", "PAY-2", 50*billing.Yuan))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := db.Invoices([]string{"PAY-1"})
	same := *req
	if again, existing, err := postInvoiced(db, topUp("T-1", "PAY-1", 100*billing.Yuan), &same); err != nil || !existing || again.ID != first.ID {
		t.Errorf("same request again = %+v, existing %v, %v; want the first entry", again, existing, err)
	}
	// A retry that leaves the request out loses nothing: the first stands.
	if again, existing, err := postInvoiced(db, topUp("T-1", "PAY-1", 100*billing.Yuan), nil); err != nil || !existing || again.ID != first.ID {
		t.Errorf("again without the request = %+v, existing %v, %v; want the first entry", again, existing, err)
	}
	for name, inv := range map[string]*Invoice{
		"another title":  invoiceRequest("Acme Holdings", req.TaxID),
		"another tax id": invoiceRequest("Acme", "91310000MA1FL0XX0Y"),
		"another e-mail": {Title: "Acme", TaxID: req.TaxID, Email: "boss@acme.example"},
	} {
		// The money was credited: the answer is that entry, existing; the
		// request it came with stands, and the caller is told it differs.
		again, existing, err := postInvoiced(db, topUp("T-1", "PAY-1", 100*billing.Yuan), inv)
		if !errors.Is(err, ErrInvoiceConflict) || errors.Is(err, ErrRefConflict) || !existing || again.ID != first.ID {
			t.Errorf("%s: %+v, existing %v, err = %v; want entry %d, existing, ErrInvoiceConflict (not ErrRefConflict)", name, again, existing, err, first.ID)
		}
		// The first request is the tenant's: its tax id (a person's is
		// their national id number) and e-mail are not quoted to whoever
		// sent another.
		if err != nil && (strings.Contains(err.Error(), req.TaxID) || strings.Contains(err.Error(), req.Email) || !strings.Contains(err.Error(), fmt.Sprintf("entry %d", first.ID))) {
			t.Errorf("%s: err = %q; want neither %q nor %q, and the entry named", name, err, req.TaxID, req.Email)
		}
	}
	// The same address in other case is the same request (a retry typed
	// again), not another.
	upper := *req
	upper.Email = "AP@Acme.Example"
	if again, existing, err := postInvoiced(db, topUp("T-1", "PAY-1", 100*billing.Yuan), &upper); err != nil || !existing || again.ID != first.ID {
		t.Errorf("same request, the e-mail in upper case = %+v, existing %v, %v; want the first entry", again, existing, err)
	}
	after, _ := db.Invoices([]string{"PAY-1", "PAY-2"})
	if !reflect.DeepEqual(after, before) {
		t.Errorf("after the conflicts Invoices = %+v; want unchanged %+v", after, before)
	}
	// PAY-2 was credited without one (at the till, say, before the
	// platform's command came with the request): the money is that entry,
	// and the request is stored then, in the retry's transaction.
	later := topUp("T-1", "PAY-2", 50*billing.Yuan)
	later.Time = t0.Add(time.Hour)
	if again, existing, err := postInvoiced(db, later, req); err != nil || !existing || again.ID != second.ID {
		t.Errorf("request added on a retry = %+v, existing %v, %v; want entry %d, existing", again, existing, err, second.ID)
	}
	added, _ := db.Invoices([]string{"PAY-2"})
	want := Invoice{Ref: "PAY-2", Entry: second.ID, Tenant: "T-1", Title: req.Title, TaxID: req.TaxID, Email: req.Email,
		Status: InvoiceRequested, Updated: later.Time}
	if !reflect.DeepEqual(added["PAY-2"], want) {
		t.Errorf("added request = %+v; want %+v", added["PAY-2"], want)
	}
	if a, _ := db.Account("T-1"); a.Entries != 2 || a.Balance != 150*billing.Yuan {
		t.Errorf("account = %+v; want 2 entries, 150.00", a)
	}
}

// The request is written in the top-up's own transaction: a failure after
// it in that transaction leaves neither, and a request that cannot be
// written credits no money.
func TestPostTopUpWith_OneTransaction(t *testing.T) {
	db, _ := openTemp(t)
	// A receipt event that cannot be stored (its time is past what JSON
	// can hold) fails the transaction after the request was put.
	_, _, _, err := db.PostTopUpWith(topUp("T-1", "PAY-1", 100*billing.Yuan), TopUpOptions{Invoice: invoiceRequest("Acme", ""),
		Receipt: func(e Entry) Event {
			return Event{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Kind: "topup_receipt", Tenant: e.Account}
		}})
	if err == nil {
		t.Fatal("a receipt that cannot be stored: the top-up succeeded")
	}
	if got, _ := db.Invoices([]string{"PAY-1"}); len(got) != 0 {
		t.Errorf("the failed top-up left its invoice request: %+v", got)
	}
	if a, err := db.Account("T-1"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("the failed top-up left its entry: account %+v, %v", a, err)
	}
	// A request that cannot be written (its key holds a bucket, which a
	// Put refuses) fails the whole top-up.
	if err := db.update(func(tx *bolt.Tx) error {
		_, err := tx.Bucket(bucketInvoices).CreateBucket([]byte("PAY-2"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := postInvoiced(db, topUp("T-1", "PAY-2", 100*billing.Yuan), invoiceRequest("Acme", "")); err == nil {
		t.Fatal("a request that cannot be written: the top-up succeeded")
	}
	if a, err := db.Account("T-1"); !errors.Is(err, ErrNoAccount) {
		t.Errorf("the top-up whose request failed was credited: account %+v, %v", a, err)
	}
}

// shopName names T-1 as the configuration would.
func shopName(tenant string) string {
	if tenant == "T-1" {
		return "Acme Shop"
	}
	return ""
}

func TestSetInvoiceStatus_Transitions(t *testing.T) {
	t1 := t0.Add(time.Hour)
	type step struct {
		status, number, url, reason string
		err                         error
		event                       string // kind of the event stored; "" none
	}
	cases := []struct {
		name  string
		steps []step
		want  Invoice // Status, Number, URL, Reason at the end
	}{
		{"issued", []step{{InvoiceIssued, "04400001", "https://inv.example/1", "", nil, EventInvoiceIssued}},
			Invoice{Status: InvoiceIssued, Number: "04400001", URL: "https://inv.example/1"}},
		{"failed", []step{{InvoiceFailed, "", "", "tax id unknown", nil, EventInvoiceFailed}},
			Invoice{Status: InvoiceFailed, Reason: "tax id unknown"}},
		{"failed then re-issued", []step{
			{InvoiceFailed, "", "", "platform down", nil, EventInvoiceFailed},
			{InvoiceIssued, "04400002", "", "", nil, EventInvoiceIssued}},
			Invoice{Status: InvoiceIssued, Number: "04400002"}},
		{"failed twice, same reason once", []step{
			{InvoiceFailed, "", "", "platform down", nil, EventInvoiceFailed},
			{InvoiceFailed, "", "", "platform down", nil, ""},
			{InvoiceFailed, "", "", "tax id unknown", nil, EventInvoiceFailed}},
			Invoice{Status: InvoiceFailed, Reason: "tax id unknown"}},
		{"issued twice with its number", []step{
			{InvoiceIssued, "04400001", "https://inv.example/1", "", nil, EventInvoiceIssued},
			{InvoiceIssued, "04400001", "https://inv.example/1", "", nil, ""}},
			Invoice{Status: InvoiceIssued, Number: "04400001", URL: "https://inv.example/1"}},
		{"issued, then another number", []step{
			{InvoiceIssued, "04400001", "", "", nil, EventInvoiceIssued},
			{InvoiceIssued, "04400009", "", "", ErrInvoiceIssued, ""}},
			Invoice{Status: InvoiceIssued, Number: "04400001"}},
		{"issued, then failed", []step{
			{InvoiceIssued, "04400001", "", "", nil, EventInvoiceIssued},
			{InvoiceFailed, "", "", "late error", ErrInvoiceIssued, ""}},
			Invoice{Status: InvoiceIssued, Number: "04400001"}},
		// The link of an issued invoice may come after its number: stored
		// once, and the tenant told; another link is not the invoice's.
		{"issued, then its link", []step{
			{InvoiceIssued, "04400001", "", "", nil, EventInvoiceIssued},
			{InvoiceIssued, "04400001", "https://inv.example/1", "", nil, EventInvoiceIssued},
			{InvoiceIssued, "04400001", "https://inv.example/1", "", nil, ""}},
			Invoice{Status: InvoiceIssued, Number: "04400001", URL: "https://inv.example/1"}},
		{"issued with a link, then another link", []step{
			{InvoiceIssued, "04400001", "https://inv.example/1", "", nil, EventInvoiceIssued},
			{InvoiceIssued, "04400001", "https://evil.example/1", "", ErrInvoiceIssued, ""}},
			Invoice{Status: InvoiceIssued, Number: "04400001", URL: "https://inv.example/1"}},
		{"issued with a link, then without", []step{
			{InvoiceIssued, "04400001", "https://inv.example/1", "", nil, EventInvoiceIssued},
			{InvoiceIssued, "04400001", "", "", nil, ""}},
			Invoice{Status: InvoiceIssued, Number: "04400001", URL: "https://inv.example/1"}},
		{"bad status", []step{{InvoiceRequested, "", "", "", ErrBadInvoice, ""}}, Invoice{Status: InvoiceRequested}},
		{"issued without number", []step{{InvoiceIssued, "", "", "", ErrBadInvoice, ""}}, Invoice{Status: InvoiceRequested}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, _ := openTemp(t)
			e, _, err := postInvoiced(db, topUp("T-1", "PAY-1", 100*billing.Yuan), invoiceRequest("Acme", ""))
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range c.steps {
				kinds := len(eventKinds(t, db))
				inv, ev, err := db.SetInvoiceStatusWithEvent("PAY-1", s.status, s.number, s.url, s.reason, t1, shopName)
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d: err = %v; want %v", i, err, s.err)
				}
				if err == nil && (inv.Ref != "PAY-1" || inv.Entry != e.ID || inv.Tenant != "T-1") {
					t.Errorf("step %d: invoice = %+v; want PAY-1 of entry %d, T-1", i, inv, e.ID)
				}
				switch got := eventKinds(t, db); {
				case s.event == "" && (ev != nil || len(got) != kinds):
					t.Errorf("step %d: event %+v stored (%v); want none", i, ev, got)
				case s.event != "" && (ev == nil || ev.Kind != s.event || ev.ID == 0 || len(got) != kinds+1 || got[len(got)-1] != s.event):
					t.Errorf("step %d: event %+v, stored %v; want one %s", i, ev, got, s.event)
				case ev != nil && (ev.Tenant != "T-1" || ev.Args["ref"] != "PAY-1" || ev.Args["number"] != s.number || ev.Args["url"] != s.url || ev.Args["reason"] != s.reason || !ev.Time.Equal(t1)):
					t.Errorf("step %d: event %+v; want T-1's, ref PAY-1, number %q, url %q, reason %q, at %v", i, ev, s.number, s.url, s.reason, t1)
				case ev != nil && (ev.Args["tenant_name"] != "Acme Shop" || ev.Args["tenant"] != "T-1" || !strings.HasPrefix(ev.Text, "Acme Shop: ")):
					// The tenant reads it: their shop's name, as on a receipt.
					t.Errorf("step %d: event %+v; want it to name the tenant Acme Shop (tenant_name, and in its text)", i, ev)
				}
			}
			got, _ := db.Invoices([]string{"PAY-1"})
			inv := got["PAY-1"]
			if inv.Status != c.want.Status || inv.Number != c.want.Number || inv.URL != c.want.URL || inv.Reason != c.want.Reason {
				t.Errorf("invoice = %+v; want status %q number %q url %q reason %q", inv, c.want.Status, c.want.Number, c.want.URL, c.want.Reason)
			}
		})
	}
}

func TestSetInvoiceStatus_NoRequest(t *testing.T) {
	db, _ := openTemp(t)
	if _, _, err := db.PostTopUp(topUp("T-1", "PAY-1", billing.Yuan)); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"PAY-1", "PAY-never"} {
		if _, err := db.SetInvoiceStatus(ref, InvoiceIssued, "1", "", "", t0); !errors.Is(err, ErrNoInvoice) {
			t.Errorf("SetInvoiceStatus(%s): err = %v; want ErrNoInvoice", ref, err)
		}
	}
	if got := eventKinds(t, db); len(got) != 0 {
		t.Errorf("events %v stored; want none", got)
	}
}

func TestTenantInvoices_NewestFirst(t *testing.T) {
	db, _ := openTemp(t)
	for _, p := range []struct{ tenant, ref string }{{"T-1", "A"}, {"T-2", "B"}, {"T-1", "C"}, {"T-1", "D"}} {
		if _, _, err := postInvoiced(db, topUp(p.tenant, p.ref, billing.Yuan), invoiceRequest("Acme", "")); err != nil {
			t.Fatal(err)
		}
	}
	refs := func(invs []Invoice) (out []string) {
		for _, inv := range invs {
			out = append(out, inv.Ref)
		}
		return out
	}
	page, err := db.TenantInvoices("T-1", 0, 2)
	if err != nil || !reflect.DeepEqual(refs(page), []string{"D", "C"}) {
		t.Fatalf("first page = %v, %v; want D, C", refs(page), err)
	}
	page, err = db.TenantInvoices("T-1", page[1].Entry, 2)
	if err != nil || !reflect.DeepEqual(refs(page), []string{"A"}) {
		t.Errorf("second page = %v, %v; want A", refs(page), err)
	}
}
