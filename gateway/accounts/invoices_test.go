package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/i18n"
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
		// An IME left in full width, or a code read out in groups, is the
		// same code.
		{"id in full width", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "９１３１００００ｍａ１ＦＬ０ＸＸ０Ｘ"},
			&store.Invoice{Title: "Acme Ltd", TaxID: "91310000MA1FL0XX0X"}},
		{"id in groups", web.InvoiceRequest{Title: "Acme Ltd", TaxID: "9131 0000 MA1F\u3000L0XX 0X"},
			&store.Invoice{Title: "Acme Ltd", TaxID: "91310000MA1FL0XX0X"}},
		{"an e-mail in capitals", web.InvoiceRequest{Title: "张三", Email: "AP@Acme.Example"}, &store.Invoice{Title: "张三", Email: "ap@acme.example"}},
		// Company words are words: a name that holds one inside another
		// word is not a company's.
		{"unlimited is not limited", web.InvoiceRequest{Title: "Unlimited Fitness 健身工作室"}, &store.Invoice{Title: "Unlimited Fitness 健身工作室"}},
		{"ltd inside a word", web.InvoiceRequest{Title: "Altdorf Bakery"}, &store.Invoice{Title: "Altdorf Bakery"}},
		{"inc. ending another word", web.InvoiceRequest{Title: "Zinc. Design Studio"}, &store.Invoice{Title: "Zinc. Design Studio"}},
		{"a company in capitals without its id", web.InvoiceRequest{Title: "ACME LIMITED"}, nil},
		{"a company, Co.,Ltd. without its id", web.InvoiceRequest{Title: "Acme Co.,Ltd."}, nil},
		{"a company's words beside Chinese", web.InvoiceRequest{Title: "深圳Acme Ltd"}, nil},
		// Paid upstream, the money is not refused over the guess: the
		// platform, which issues the invoice, refuses one it cannot.
		{"a company without its id, paid upstream", web.InvoiceRequest{Title: "Acme Trading Co., Ltd.", Upstream: true},
			&store.Invoice{Title: "Acme Trading Co., Ltd."}},
		{"a title with a right-to-left override", web.InvoiceRequest{Title: "Acme\u202eTrading"}, nil},
		{"a title with a line separator", web.InvoiceRequest{Title: "Acme\u2028Trading"}, nil},
		{"a title with a paragraph separator", web.InvoiceRequest{Title: "Acme\u2029Trading"}, nil},
		{"a title with a zero-width space", web.InvoiceRequest{Title: "张\u200b三"}, nil},
		{"a title with a soft hyphen", web.InvoiceRequest{Title: "Ac\u00adme"}, nil},
		{"an id with a zero-width space", web.InvoiceRequest{Title: "张三", TaxID: "91310000MA1FL0XX0X\u200b"}, nil},
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
	// A refusal is shown and logged: it does not quote the address or the
	// tax id it refuses (a person's is their national id number).
	for _, req := range []web.InvoiceRequest{{Title: "张三", Email: "zhang.san@home"}, {Title: "张三", TaxID: "11010119900307"}} {
		_, err := checkInvoice(&req)
		if err == nil || (req.Email != "" && strings.Contains(err.Error(), "zhang.san")) || (req.TaxID != "" && strings.Contains(err.Error(), "11010119900")) {
			t.Errorf("refusal of %+v: %v; want one that quotes neither", req, err)
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
	changed.Invoice = &web.InvoiceRequest{Title: "Acme Holdings Ltd", TaxID: "91310000MA1FL0XX0Y"}
	// At the till a changed request is a 409 for the operator; it comes
	// with the entry that credited the payment, so the uplink can answer
	// the money as existing and the invoice apart.
	got, existing, err := l.TopUp(ctx, "T-1", changed, "till")
	if !errors.Is(err, web.ErrConflict) || !errors.Is(err, store.ErrInvoiceConflict) || !existing || got.ID != e.ID || got.Invoice == nil || got.Invoice.Title != "Acme Ltd" {
		t.Errorf("changed request = %+v, %v, %v; want entry %d with its first request, existing, ErrConflict and ErrInvoiceConflict", got, existing, err, e.ID)
	}
	if err != nil && strings.Contains(err.Error(), "91310000MA1FL0XX0X") {
		t.Errorf("changed request: %q quotes the first request's tax id", err)
	}
	// A payment taken at the till without a request, asked for afterwards
	// under its reference: the same entry, and the request is kept.
	plain := web.TopUpRequest{Amount: "20.00", Ref: "P-3", Channel: "cash"}
	first, _, err := l.TopUp(ctx, "T-1", plain, "till")
	if err != nil {
		t.Fatal(err)
	}
	plain.Invoice = &web.InvoiceRequest{Title: "张三"}
	if got, existing, err := l.TopUp(ctx, "T-1", plain, "uplink:k1"); err != nil || !existing || got.ID != first.ID || got.Invoice == nil || got.Invoice.Title != "张三" {
		t.Errorf("request added to P-3 = %+v, %v, %v; want entry %d, existing, with the request", got, existing, err, first.ID)
	}
	bad := web.TopUpRequest{Amount: "5.00", Ref: "P-2", Channel: "cash", Invoice: &web.InvoiceRequest{Title: "Acme Ltd"}}
	if _, _, err := l.TopUp(ctx, "T-1", bad, "till"); !errors.Is(err, web.ErrInvalid) || !strings.Contains(err.Error(), "tax_id") {
		t.Errorf("company without a tax id: err = %v; want ErrInvalid naming tax_id", err)
	}
	if a, _ := l.DB.Account("T-1"); a.Entries != 2 {
		t.Errorf("account has %d entries; want 2", a.Entries)
	}
	page, err := l.Entries("T-1", 0, 10)
	if err != nil || len(page) != 2 || page[1].Invoice == nil || page[1].Invoice.Title != "Acme Ltd" {
		t.Errorf("ledger = %+v, %v; want the top-up with its invoice", page, err)
	}
	list, err := l.Invoices("T-1", 0, 10)
	if err != nil || len(list) != 2 || list[1].Email != "ap@acme.example" || list[1].Ref != "P-1" {
		t.Errorf("invoices = %+v, %v; want P-3's and P-1's with its e-mail", list, err)
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
		{"reason with a right-to-left override", "P-1", "failed", "", "", "tax id \u202eunknown"},
		{"reason with a line separator", "P-1", "failed", "", "", "tax id\u2028unknown"},
		{"reason with a zero-width space", "P-1", "failed", "", "", "tax\u200bid"},
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
		if ev.Kind != store.EventInvoiceIssued || ev.Tenant != "T-1" || ev.Args["tenant_name"] != "Shop" {
			t.Errorf("published %+v; want T-1's invoice_issued, naming the tenant Shop", ev)
		}
		// Told to the tenant in either language by their shop's name, as
		// a receipt is, not by the account's id.
		for lang, want := range map[i18n.Lang]string{i18n.En: "Shop: e-invoice 04400001 issued", i18n.ZhCN: "Shop："} {
			if got := i18n.New(lang, time.UTC).EventText(ev.Kind, ev.Args, ""); !strings.HasPrefix(got, want) {
				t.Errorf("%s: %q; want it to begin %q", lang, got, want)
			}
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

// Notes and reasons are one line shown as typed: a character that moves
// or hides text (bidi overrides, zero-width, line separators) is refused
// as a control character is.
func TestCheckText_InvisibleCharacters(t *testing.T) {
	for _, s := range []string{"refund\u202e01", "refund\u2028twice", "refund\u2029", "re\u200bfund", "re\u00adfund", "re\u2066fund", "re\ufefffund"} {
		if err := checkText("reason", s, true); !errors.Is(err, web.ErrInvalid) {
			t.Errorf("checkText(%q) = %v; want ErrInvalid", s, err)
		}
	}
	for _, s := range []string{"退款 refund — 12.5%", "meter M-1 misread"} {
		if err := checkText("reason", s, true); err != nil {
			t.Errorf("checkText(%q) = %v; want nil", s, err)
		}
	}
}
