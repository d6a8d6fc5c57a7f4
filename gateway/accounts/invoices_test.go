package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mallgrid/gateway/live"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

func TestCheckInvoice(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  web.InvoiceRequest
		want *store.Invoice // nil: refused
	}{
		{"a person", web.InvoiceRequest{Title: "张三"}, &store.Invoice{Title: "张三"}},
		{"a company with its code, lower-case, spaces", web.InvoiceRequest{Title: " 上海某某贸易有限公司 ", TaxID: " 91310000ma1fl0xx0x ", Email: "ap@acme.example"},
			&store.Invoice{Title: "上海某某贸易有限公司", TaxID: "91310000MA1FL0XX0X", Email: "ap@acme.example"}},
		{"an old 15-character id", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "310101123456789"}, &store.Invoice{Title: "Acme Ltd", TaxID: "310101123456789"}},
		{"a 20-character id", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "31010119800101123401"}, &store.Invoice{Title: "Acme Ltd", TaxID: "31010119800101123401"}},
		{"a person with an id", web.InvoiceRequest{Title: "Li Lei", TaxID: "110101199003071234"}, &store.Invoice{Title: "Li Lei", TaxID: "110101199003071234"}},
		{"no title", web.InvoiceRequest{TaxID: "91310000MA1FL0XX0X"}, nil},
		{"blank title", web.InvoiceRequest{Title: "  "}, nil},
		{"a title of two lines", web.InvoiceRequest{Title: "Acme\nTrading"}, nil},
		{"a title too long", web.InvoiceRequest{Title: strings.Repeat("长", 101)}, nil},
		{"a company without its id", web.InvoiceRequest{Title: "上海某某贸易有限公司"}, nil},
		{"a company in English without its id", web.InvoiceRequest{Title: "Acme Trading Co., Ltd."}, nil},
		{"id too short", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "91310000MA1FL0"}, nil},
		{"id too long", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "91310000MA1FL0XX0X123"}, nil},
		{"id with a dash", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "91310000-MA1FL0XX0X"}, nil},
		{"id with full-width digits", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "９１310000MA1FL0XX0X"}, nil},
		{"e-mail without @", web.InvoiceRequest{Title: "张三", Email: "ap.acme.example"}, nil},
		{"e-mail with a name", web.InvoiceRequest{Title: "张三", Email: "AP <ap@acme.example>"}, nil},
		{"e-mail without a domain's dot", web.InvoiceRequest{Title: "张三", Email: "ap@localhost"}, nil},
		{"two e-mails", web.InvoiceRequest{Title: "张三", Email: "a@acme.example, b@acme.example"}, nil},
	} {
		got, err := checkInvoice(&tt.req)
		switch {
		case tt.want == nil && !errors.Is(err, web.ErrInvalid):
			t.Errorf("%s: %+v, %v; want ErrInvalid", tt.name, got, err)
		case tt.want != nil && (err != nil || *got != *tt.want):
			t.Errorf("%s: %+v, %v; want %+v", tt.name, got, err, *tt.want)
		}
	}
	if got, err := checkInvoice(nil); got != nil || err != nil {
		t.Errorf("no request: %+v, %v; want nil, nil", got, err)
	}
}

// A top-up stores its checked request and shows it; a malformed request
// credits nothing; a changed one on the same reference is a conflict.
func TestLedger_TopUpWithInvoice(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	req := web.TopUpRequest{Amount: "100.00", Ref: "P-1", Channel: "wechat",
		Invoice: &web.InvoiceRequest{Title: "Acme Ltd", TaxID: "91310000ma1fl0xx0x", Email: "ap@acme.example"}}
	e, existing, err := l.TopUp(ctx, "T-1", req, "till")
	if err != nil || existing {
		t.Fatalf("top-up = %v, %v", err, existing)
	}
	if e.Invoice == nil || e.Invoice.Status != "requested" || e.Invoice.TaxID != "91310000MA1FL0XX0X" || e.Invoice.Entry != e.ID || e.Invoice.Email != "" {
		t.Errorf("entry's invoice = %+v; want requested, the tax id upper-cased, of entry %d, no e-mail on the ledger", e.Invoice, e.ID)
	}
	again, existing, err := l.TopUp(ctx, "T-1", req, "till")
	if err != nil || !existing || again.ID != e.ID || again.Invoice == nil {
		t.Errorf("same again = %+v, %v, %v; want entry %d with its invoice", again, existing, err, e.ID)
	}
	changed := req
	changed.Invoice = &web.InvoiceRequest{Title: "Acme Holdings Ltd", TaxID: "91310000MA1FL0XX0X"}
	if _, _, err := l.TopUp(ctx, "T-1", changed, "till"); !errors.Is(err, web.ErrConflict) {
		t.Errorf("changed request: err = %v; want ErrConflict", err)
	}
	bad := web.TopUpRequest{Amount: "5.00", Ref: "P-2", Channel: "cash", Invoice: &web.InvoiceRequest{Title: "Acme Ltd"}}
	if _, _, err := l.TopUp(ctx, "T-1", bad, "till"); !errors.Is(err, web.ErrInvalid) || !strings.Contains(err.Error(), "tax_id") {
		t.Errorf("company without a tax id: err = %v; want ErrInvalid naming tax_id", err)
	}
	if a, _ := l.DB.Account("T-1"); a.Entries != 1 {
		t.Errorf("account has %d entries; want 1", a.Entries)
	}
	page, err := l.Entries("T-1", 0, 10)
	if err != nil || len(page) != 1 || page[0].Invoice == nil || page[0].Invoice.Title != "Acme Ltd" {
		t.Errorf("ledger = %+v, %v; want the top-up with its invoice", page, err)
	}
	list, err := l.Invoices("T-1", 0, 10)
	if err != nil || len(list) != 1 || list[0].Email != "ap@acme.example" || list[0].Ref != "P-1" {
		t.Errorf("invoices = %+v, %v; want P-1's with its e-mail", list, err)
	}
}

func TestLedger_InvoiceStatus(t *testing.T) {
	l := newLedger(t)
	hub := live.NewHub(l.DB, l.Config)
	l.Events = hub
	events, stop := hub.Subscribe()
	defer stop()
	ctx := context.Background()
	if _, _, err := l.TopUp(ctx, "T-1", web.TopUpRequest{Amount: "100.00", Ref: "P-1", Channel: "wechat",
		Invoice: &web.InvoiceRequest{Title: "张三"}}, "uplink:k1"); err != nil {
		t.Fatal(err)
	}
	for len(events) > 0 { // the receipt
		<-events
	}
	long := strings.Repeat("x", 201)
	for _, tt := range []struct {
		name                             string
		ref, status, number, url, reason string
	}{
		{"unknown status", "P-1", "requested", "", "", ""},
		{"issued without number", "P-1", "issued", "", "", ""},
		{"number with a space", "P-1", "issued", "044 001", "", ""},
		{"number too long", "P-1", "issued", strings.Repeat("1", 65), "", ""},
		{"http link", "P-1", "issued", "1", "http://inv.example/1", ""},
		{"script link", "P-1", "issued", "1", "javascript:alert(1)", ""},
		{"relative link", "P-1", "issued", "1", "/inv/1", ""},
		{"reason too long", "P-1", "failed", "", "", long},
		{"failed with a number", "P-1", "failed", "1", "", "no"},
		{"no ref", "", "issued", "1", "", ""},
	} {
		if _, err := l.InvoiceStatus(ctx, tt.ref, tt.status, tt.number, tt.url, tt.reason); !errors.Is(err, web.ErrInvalid) {
			t.Errorf("%s: err = %v; want ErrInvalid", tt.name, err)
		}
	}
	if _, err := l.InvoiceStatus(ctx, "P-none", "issued", "1", "", ""); !errors.Is(err, store.ErrNoInvoice) || !errors.Is(err, web.ErrNotFound) {
		t.Errorf("unknown ref: err = %v; want ErrNoInvoice and ErrNotFound", err)
	}
	if invs, _ := l.DB.Invoices([]string{"P-1"}); invs["P-1"].Status != store.InvoiceRequested {
		t.Fatalf("after the refusals: %+v; want still requested", invs["P-1"])
	}
	inv, err := l.InvoiceStatus(ctx, "P-1", "issued", "04400001", "https://inv.example/1", "")
	if err != nil || inv.Status != "issued" || inv.Number != "04400001" || !inv.Updated.Equal(l.Now()) {
		t.Fatalf("issued = %+v, %v", inv, err)
	}
	select {
	case ev := <-events:
		if ev.Kind != store.EventInvoiceIssued || ev.Tenant != "T-1" {
			t.Errorf("published %+v; want T-1's invoice_issued", ev)
		}
	default:
		t.Error("no event published")
	}
	if _, err := l.InvoiceStatus(ctx, "P-1", "issued", "04400001", "https://inv.example/1", ""); err != nil {
		t.Errorf("issued again under its number: %v; want the invoice", err)
	}
	if len(events) != 0 {
		t.Errorf("an event published for the same answer again")
	}
	if _, err := l.InvoiceStatus(ctx, "P-1", "issued", "04400002", "", ""); !errors.Is(err, web.ErrConflict) || !errors.Is(err, store.ErrInvoiceIssued) {
		t.Errorf("another number: err = %v; want ErrConflict, ErrInvoiceIssued", err)
	}
}
