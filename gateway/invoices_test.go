package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// TestInvoicesAPI: a top-up through the local API may carry an e-invoice
// request; every malformed request is a 4xx with a reason and credits
// nothing; the same payment again with the same request is the first
// entry, with a changed or added one a 409 that changes nothing. The
// ledger and the tenant page show the request and, once upstream answered
// (SetInvoiceStatus, as the uplink's command does), its number and link;
// finance lists a tenant's requests.
func TestInvoicesAPI(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	api := base + "/api/v1/accounts"
	const till, books = "till-secret", "books-secret"
	company := `"invoice":{"title":"上海某某贸易有限公司","tax_id":"91310000ma1fl0xx0x","email":"ap@acme.example"}`

	var first web.EntryView
	if code := call(t, "POST", api+"/T-a1/topups", till, `{"amount":"100.00","ref":"PAY-1","channel":"cash",`+company+`}`, &first); code != 201 {
		t.Fatalf("top-up with an invoice = %d; want 201", code)
	}
	if inv := first.Invoice; inv == nil || inv.Status != "requested" || inv.TaxID != "91310000MA1FL0XX0X" || inv.Entry != first.ID || inv.Email != "" {
		t.Errorf("the entry's invoice = %+v; want requested, its tax id upper-cased, no e-mail", first.Invoice)
	}
	var again web.EntryView
	if code := call(t, "POST", api+"/T-a1/topups", till, `{"amount":"100.00","ref":"PAY-1","channel":"cash",`+company+`}`, &again); code != 200 || again.ID != first.ID {
		t.Errorf("the same payment and request again = %d %+v; want 200 and entry %d", code, again, first.ID)
	}
	if code := call(t, "POST", api+"/T-a1/topups", till, `{"amount":"20.00","ref":"PAY-2","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up without an invoice = %d; want 201", code)
	}

	refused := []struct {
		name, body string
		code       int
		reason     string
	}{
		{"changed title", `{"amount":"100.00","ref":"PAY-1","channel":"cash","invoice":{"title":"Acme Ltd","tax_id":"91310000MA1FL0XX0X"}}`, 409, "with another invoice request (entry 1)"},
		{"unknown field", `{"amount":"5.00","ref":"PAY-3","channel":"cash","invoice":{"title":"张三","bank":"x"}}`, 400, "unknown field"},
		{"invoice not an object", `{"amount":"5.00","ref":"PAY-3","channel":"cash","invoice":"张三"}`, 400, "body"},
		{"no title", `{"amount":"5.00","ref":"PAY-3","channel":"cash","invoice":{"tax_id":"91310000MA1FL0XX0X"}}`, 400, "title"},
		{"company without tax id", `{"amount":"5.00","ref":"PAY-3","channel":"cash","invoice":{"title":"Acme Trading Co., Ltd."}}`, 400, "tax_id"},
		{"short tax id", `{"amount":"5.00","ref":"PAY-3","channel":"cash","invoice":{"title":"张三","tax_id":"1234"}}`, 400, "tax_id"},
		{"bad e-mail", `{"amount":"5.00","ref":"PAY-3","channel":"cash","invoice":{"title":"张三","email":"not an address"}}`, 400, "email"},
	}
	for _, tt := range refused {
		var e map[string]string
		if code := call(t, "POST", api+"/T-a1/topups", till, tt.body, &e); code != tt.code || !strings.Contains(e["error"], tt.reason) {
			t.Errorf("%s: %d %q; want %d with a reason about %q", tt.name, code, e["error"], tt.code, tt.reason)
		}
		// A refusal does not quote the first request's tax id or e-mail.
		if strings.Contains(e["error"], "91310000MA1FL0XX0X") || strings.Contains(e["error"], "ap@acme.example") || strings.Contains(e["error"], "not an address") {
			t.Errorf("%s: %q quotes a tax id or an address", tt.name, e["error"])
		}
	}
	// PAY-2 was taken without a request; the tenant asks for one after:
	// the same payment, and the request is kept with it.
	var added web.EntryView
	if code := call(t, "POST", api+"/T-a1/topups", till, `{"amount":"20.00","ref":"PAY-2","channel":"cash","invoice":{"title":"张三"}}`, &added); code != 200 ||
		added.Ref != "PAY-2" || added.Invoice == nil || added.Invoice.Title != "张三" {
		t.Errorf("request added on a retry = %d %+v; want 200, PAY-2's entry with the request", code, added)
	}
	var a web.AccountView
	if getJSON(t, api+"/T-a1", &a); a.Balance != "120.00" || a.Entries != 2 {
		t.Errorf("T-a1 = %s in %d entries; want 120.00 in 2: no refusal credited anything", a.Balance, a.Entries)
	}

	// Finance lists the requests; a viewer may not (the buyer's e-mail).
	var list []web.InvoiceView
	if code := call(t, "GET", api+"/T-a1/invoices", books, "", &list); code != 200 || len(list) != 2 || list[1].Ref != "PAY-1" || list[1].Email != "ap@acme.example" {
		t.Errorf("GET invoices = %d %+v; want PAY-2's and PAY-1's, with its e-mail", code, list)
	}
	if code := call(t, "GET", api+"/T-a1/invoices", "screen-secret", "", nil); code != 403 {
		t.Errorf("GET invoices as a viewer = %d; want 403", code)
	}
	if code := call(t, "GET", api+"/T-zz/invoices", books, "", nil); code != 404 {
		t.Errorf("GET invoices of an unknown tenant = %d; want 404", code)
	}

	// Upstream issues it (the uplink's invoice_status command writes it so).
	stop()
	db, err := store.Open(mall.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetInvoiceStatus("PAY-1", store.InvoiceIssued, "24312000000012345678", "https://fapiao.example/i/24312000000012345678", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	base, stop = mall.start(t)
	// A viewer reads the tax id masked (a person's is their national id
	// number); the operator at the till and finance read it whole.
	for token, want := range map[string]string{"screen-secret": "9131**********XX0X", till: "91310000MA1FL0XX0X", books: "91310000MA1FL0XX0X"} {
		var ledger []web.EntryView
		if code := call(t, "GET", base+"/api/v1/accounts/T-a1/ledger", token, "", &ledger); code != 200 {
			t.Fatalf("ledger as %s = %d", token, code)
		}
		for _, e := range ledger {
			switch {
			case e.Ref == "PAY-1" && (e.Invoice == nil || e.Invoice.Status != "issued" || e.Invoice.Number != "24312000000012345678"):
				t.Errorf("PAY-1 on the ledger = %+v; want its invoice issued", e.Invoice)
			case e.Ref == "PAY-1" && e.Invoice.TaxID != want:
				t.Errorf("PAY-1 on the ledger as %s: tax id %q; want %q", token, e.Invoice.TaxID, want)
			case e.Ref == "PAY-2" && (e.Invoice == nil || e.Invoice.Title != "张三"):
				t.Errorf("PAY-2 on the ledger has invoice %+v; want 张三's, added on the retry", e.Invoice)
			}
		}
	}
	// The operator's page: the top-up form with its invoice fields.
	req, err := http.NewRequest("GET", base+"/tenants/T-a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+till)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`class="invoice invoice-issued"`, "Invoice 24312000000012345678", `href="https://fapiao.example/i/24312000000012345678"`,
		`name="invoice_tax_id"`, `title="上海某某贸易有限公司 · 91310000MA1FL0XX0X"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("tenant page holds no %q", want)
		}
	}
	if n := strings.Count(string(page), `class="invoice invoice-`); n != 2 {
		t.Errorf("tenant page shows %d invoices; want 2", n)
	}
	resp, err = viewerGet(base + "/tenants/T-a1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), "91310000MA1FL0XX0X") || !strings.Contains(string(page), `title="上海某某贸易有限公司 · 9131**********XX0X"`) {
		t.Errorf("a viewer's tenant page shows the tax id unmasked, or not masked as 9131**********XX0X")
	}
	// The receipt names the invoice's buyer and where it stands, with the
	// issued invoice's link; a viewer's with the tax id masked.
	receipt := func(token string, id uint64) string {
		t.Helper()
		_, body := fetch(t, base+"/tenants/T-a1/receipts/"+strconv.FormatUint(id, 10), token)
		return string(body)
	}
	link := ` · <a id="receipt-invoice-url" href="https://fapiao.example/i/24312000000012345678" rel="noopener noreferrer" target="_blank">https://fapiao.example/i/24312000000012345678</a>`
	if want := `<td id="receipt-invoice">上海某某贸易有限公司 (9131**********XX0X) · Invoice 24312000000012345678` + link + `</td>`; !strings.Contains(receipt("screen-secret", first.ID), want) {
		t.Errorf("a viewer's receipt holds no %q", want)
	}
	if want := `<td id="receipt-invoice">上海某某贸易有限公司 (91310000MA1FL0XX0X) · Invoice 24312000000012345678` + link + `</td>`; !strings.Contains(receipt(till, first.ID), want) {
		t.Errorf("the till's receipt holds no %q", want)
	}
	// A failed invoice's receipt says why.
	stop()
	db, err = store.Open(mall.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetInvoiceStatus("PAY-2", store.InvoiceFailed, "", "", "buyer unknown to the tax office", time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	base, _ = mall.start(t)
	if want := `<td id="receipt-invoice">张三 · Invoice failed: buyer unknown to the tax office</td>`; !strings.Contains(receipt(till, added.ID), want) {
		t.Errorf("the failed invoice's receipt holds no %q", want)
	}
}

// A notification route may name the invoice events, and a channel's
// template may fill them with the facts they carry — and no other.
func TestInvoiceEvents_NotifyRoutes(t *testing.T) {
	t.Parallel()
	head := "site: {name: M}\nbuses: [{name: b1, port: /dev/ttyUSB0}]\nnotify:\n" +
		"  channels: [{name: sms, kind: sms, provider: aliyun, key_id: k, key_secret: s, sign_name: 商场,\n" +
		"     templates: {invoice_issued: {id: SMS_9, params: [%s]}, invoice_failed: {id: SMS_8, params: [tenant_name, ref, reason]}}}]\n" +
		"  routes: [{events: [invoice_issued, invoice_failed], to: tenant, channels: [sms]}]\n"
	if _, err := config.Parse("t.yaml", []byte(fmt.Sprintf(head, "tenant_name, ref, number, url")), nil); err != nil {
		t.Errorf("a route of the invoice events: %v", err)
	}
	_, err := config.Parse("t.yaml", []byte(fmt.Sprintf(head, "tenant_name, amount")), nil)
	if err == nil || !strings.Contains(err.Error(), `invoice_issued events have no "amount"`) {
		t.Errorf("a template param the event has not: %v; want it refused", err)
	}
}
