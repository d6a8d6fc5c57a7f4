//go:build e2e

package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mallgrid/gateway/web"
)

// TestE2E_TopUpWithInvoice: an operator tops up through the tenant page's
// form asking for a company's e-invoice. Without the tax id the gateway's
// reason is shown and nothing is credited; with it (typed in lower case)
// the receipt names the buyer and the upper-cased id (typed in groups, the
// spaces dropped), the ledger shows the request (to a viewer with the id
// masked), and the page raises no error (its script keeps to the CSP).
func TestE2E_TopUpWithInvoice(t *testing.T) {
	mall := e2eMall(t, 1)
	base, _ := mall.start(t)
	p := browser(t, base)
	p.open("/tenants/T-a1")
	p.login("ann", "ann-pw")
	p.do("the top-up form", chromedp.WaitVisible(`#topup input[name=invoice_title]`))
	p.do("a company's invoice without its tax id",
		chromedp.SendKeys(`#topup input[name=amount]`, "88.00"),
		chromedp.SendKeys(`#topup input[name=invoice_title]`, "上海某某贸易有限公司"),
		chromedp.Click(`#topup button[type=submit]`))
	p.until("the refusal", `(document.querySelector("#topup .problem") || {hidden: true}).hidden === false`, 10*time.Second)
	if msg := p.text(`#topup .problem`); !strings.Contains(msg, "tax_id") {
		t.Errorf("the form says %q; want the reason about tax_id", msg)
	}
	if a := account(t, base, "T-a1"); a.Balance != "0.00" {
		t.Fatalf("T-a1 = %s after the refusal; want 0.00", a.Balance)
	}
	p.do("with the tax id",
		chromedp.SendKeys(`#topup input[name=invoice_tax_id]`, "9131 0000 ma1f l0xx 0x"),
		chromedp.Click(`#topup button[type=submit]`))
	p.until("the receipt", `location.pathname.startsWith("/tenants/T-a1/receipts/") && !!document.querySelector("#receipt")`, 15*time.Second)
	if got, want := p.text(`#receipt-invoice`), "上海某某贸易有限公司 (91310000MA1FL0XX0X) · Invoice requested"; got != want {
		t.Errorf("the receipt's invoice %q; want %q", got, want)
	}
	var ledger []web.EntryView
	getJSON(t, base+"/api/v1/accounts/T-a1/ledger", &ledger)
	if len(ledger) != 1 || ledger[0].Amount != "88.00" || ledger[0].Invoice == nil || ledger[0].Invoice.TaxID != "9131**********XX0X" {
		t.Fatalf("ledger = %+v; want the one top-up of 88.00 with its invoice, the tax id masked for a viewer", ledger)
	}
	p.open("/tenants/T-a1")
	if got := p.text(`#entry-` + itoa(ledger[0].ID) + ` .invoice`); !strings.Contains(got, "Invoice requested") {
		t.Errorf("the ledger row's invoice %q; want Invoice requested", got)
	}
}
