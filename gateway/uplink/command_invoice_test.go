package uplink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/web"
	"mallgrid/store"
)

// A payment entered at the till first is answered as the entry that
// credited it whatever invoice request comes down with it: a request the
// entry had none of is stored then; another than the entry's is told
// apart ("invoice":"conflict") and changes nothing — never a
// ref_conflict, which the platform would take for a payment to refund.
func TestCommands_TopUpAtTheTillFirst(t *testing.T) {
	h := newHarness(t, t.TempDir())
	hub := &heard{}
	h.cmds.Events = hub
	key, schema := vectorKey(t), resultSchema(t)
	ctx := context.Background()
	issued, expires := vectorNow.Add(-time.Minute), vectorNow.Add(time.Hour)
	topUp := func(id, ref, invoice string) Result {
		t.Helper()
		body := fmt.Sprintf(`"tenant":"T-101","amount":"10.00","ref":%q,"channel":"wechat"`, ref)
		if invoice != "" {
			body += `,"invoice":` + invoice
		}
		data, err := h.handle(signed(key, "k1", vectorCommand(id, vectorSite, body, issued, expires)))
		if err != nil {
			t.Fatalf("%s: Handle = %v", id, err)
		}
		if err := validResult(schema, data); err != nil {
			t.Errorf("%s: result %s: %v", id, data, err)
		}
		return decodeResult(t, data)
	}
	till := func(ref string, inv *web.InvoiceRequest) web.EntryView {
		t.Helper()
		e, _, err := h.ledger.TopUp(ctx, "T-101", web.TopUpRequest{Amount: "10.00", Ref: ref, Channel: "cash", Invoice: inv}, "token:till")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	invoiceOf := func(ref string) store.Invoice {
		t.Helper()
		invs, err := h.db.Invoices([]string{ref})
		if err != nil {
			t.Fatal(err)
		}
		return invs[ref]
	}

	// At the till without a request; the platform's command brings one.
	e := till("P-1", nil)
	r := topUp("c-1", "P-1", `{"title":"张三"}`)
	if r.Status != StatusOK || r.Existing == nil || !*r.Existing || r.Entry != e.ID || r.Invoice != "" {
		t.Errorf("request added: %+v; want ok, existing entry %d, no invoice conflict", r, e.ID)
	}
	if inv := invoiceOf("P-1"); inv.Title != "张三" || inv.Entry != e.ID || inv.Status != store.InvoiceRequested {
		t.Errorf("request added: stored %+v; want 张三's, requested, of entry %d", inv, e.ID)
	}

	// At the till with one request; the command asks for another.
	e = till("P-2", &web.InvoiceRequest{Title: "李四", TaxID: "110101199003071234", Email: "li@home.example"})
	r = topUp("c-2", "P-2", `{"title":"王五"}`)
	if r.Status != StatusOK || r.Existing == nil || !*r.Existing || r.Entry != e.ID || r.Invoice != InvoiceConflict || r.Reason != "" {
		t.Errorf("another request: %+v; want ok, existing entry %d, invoice conflict", r, e.ID)
	}
	if inv := invoiceOf("P-2"); inv.Title != "李四" {
		t.Errorf("another request: stored %+v; want the first, 李四's", inv)
	}
	// The same request is no conflict.
	if r := topUp("c-3", "P-2", `{"title":"李四","tax_id":"110101199003071234","email":"LI@home.example"}`); r.Status != StatusOK || !*r.Existing || r.Invoice != "" {
		t.Errorf("same request: %+v; want ok, existing, no conflict", r)
	}
	if a, _ := h.db.Account("T-101"); a.Entries != 2 || a.Balance.String() != "20.00" {
		t.Errorf("account = %+v; want the two payments of the till, 20.00", a)
	}

	// A company's name without its tax id, paid upstream: the money is
	// credited and the request kept; the platform fails the invoice.
	for i, title := range []string{"Unlimited Fitness 健身工作室", "Tea House Co., Ltd."} {
		ref := fmt.Sprintf("P-%d", 10+i)
		if r := topUp(fmt.Sprintf("c-%d", 10+i), ref, fmt.Sprintf(`{"title":%q}`, title)); r.Status != StatusOK || *r.Existing {
			t.Errorf("%s: %+v; want credited", title, r)
		}
		if inv := invoiceOf(ref); inv.Title != title {
			t.Errorf("%s: stored %+v", title, inv)
		}
	}

	// A refusal's detail goes into the result, the control room's event
	// and the log: it does not quote the address it refuses.
	r = topUp("c-20", "P-20", `{"title":"张三","email":"zhang.san@home"}`)
	if r.Reason != ReasonInvalid || strings.Contains(r.Detail, "zhang.san") {
		t.Errorf("bad e-mail: %+v; want invalid, the address not quoted", r)
	}
	for _, ev := range hub.evs {
		if strings.Contains(ev.Text, "zhang.san") || strings.Contains(ev.Args["detail"], "zhang.san") ||
			strings.Contains(ev.Text, "110101199003071234") || strings.Contains(ev.Args["detail"], "li@home") {
			t.Errorf("event %+v quotes the tenant's invoice request", ev)
		}
	}
	if len(hub.evs) != 1 {
		t.Errorf("events %+v; want only the bad e-mail's refusal", hub.evs)
	}
}
