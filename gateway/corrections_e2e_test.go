//go:build e2e

package gateway

import (
	"context"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mallgrid/drivers/sim"
)

// TestE2E_FinanceCorrections: finance tops a tenant up with a note (the
// receipt shows its number and the note), reverses the top-up from the
// ledger — a dialog asks the reason, the page marks the top-up reversed —
// and posts a debit adjustment from its form; the account's balance is
// what the three make. The tenant's id has a space, a slash and Chinese
// characters, as a mall may name its tenants: the page's references for
// the corrections must still be ones the server takes.
func TestE2E_FinanceCorrections(t *testing.T) {
	const tenant = "T 二楼/a2"
	mall := withLogins(t, buildMall(t, 2, sim.WireTiming{}, map[string]string{"T-a2": renamed + tenant},
		"tariffs: [{name: standard, kind: flat, price: '100.00'}]\n",
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 0s, restore: '1.00'}]\n"))
	base, _ := mall.start(t)
	waitRead(t, base)
	tenantPath := "/tenants/" + url.PathEscape(tenant)

	p := browser(t, base)
	p.open(tenantPath)
	p.login("fay", "fay-pw")
	p.do("the top-up and adjustment forms", chromedp.WaitVisible(`#topup`), chromedp.WaitVisible(`#adjust`))
	p.do("send a top-up with a note",
		chromedp.SendKeys(`#topup input[name=amount]`, "200.00"),
		chromedp.SetValue(`#topup select[name=channel]`, "bank"),
		chromedp.SendKeys(`#topup input[name=note]`, "December, by transfer"),
		chromedp.Click(`#topup button[type=submit]`))
	p.until("the receipt", `location.pathname.startsWith("`+tenantPath+`/receipts/") && !!document.querySelector("#receipt")`, 15*time.Second)
	no := p.text(`#receipt-no`)
	if !regexp.MustCompile(`^R\d{8}$`).MatchString(no) {
		t.Errorf("receipt number %q; want R and eight digits", no)
	}
	if note := p.text(`#receipt-note`); note != "December, by transfer" {
		t.Errorf("receipt note %q; want the top-up's", note)
	}
	entry := path.Base(js[string](p, `location.pathname`))

	p.open(tenantPath)
	row := `#entry-` + entry
	if got := p.text(row + ` a.receipt-no`); got != no {
		t.Errorf("the ledger shows receipt %q for the top-up; want %s", got, no)
	}
	p.do("open the reversal dialog", chromedp.Click(row+` button.reverse`), chromedp.WaitVisible(`dialog#reverse`))
	if title := p.text(`dialog#reverse .title`); title != "Reverse entry "+entry {
		t.Errorf("the dialog's title is %q; want Reverse entry %s", title, entry)
	}
	p.do("send the reversal",
		chromedp.SendKeys(`dialog#reverse input[name=reason]`, "transfer returned by the bank"),
		chromedp.Click(`dialog#reverse button.yes`))
	p.until("the top-up marked reversed", `(() => { const r = document.querySelector("`+row+`"); return !!r && r.classList.contains("reversed"); })()`, 15*time.Second)
	if by := p.text(row + ` a.reversed-by`); !strings.HasPrefix(by, "Reversed by entry ") {
		t.Errorf("the reversed top-up says %q; want Reversed by entry N", by)
	}
	if n := js[int](p, `document.querySelectorAll("`+row+` button.reverse").length`); n != 0 {
		t.Error("a reversed top-up still offers a reversal")
	}

	// The reversal reloads the page (location.reload): chromedp can still
	// hold the old document's nodes for a moment after the new one shows
	// the reversal, and a step on them fails with "Could not find node".
	// Nothing was sent then; the form is filled again on the new page.
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		err := chromedp.Do(ctx,
			chromedp.WaitVisible(`#adjust input[name=amount]`),
			chromedp.SetValue(`#adjust input[name=amount]`, "-12.30"),
			chromedp.SetValue(`#adjust input[name=reason]`, "breaker repair"),
			chromedp.Click(`#adjust button[type=submit]`))
		cancel()
		if err == nil {
			break
		}
		if try == 3 || !strings.Contains(err.Error(), "Could not find node") {
			t.Fatalf("send a debit adjustment: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.until("the adjustment on the ledger", `[...document.querySelectorAll("#ledger tr.entry-adjustment")].some(r => r.textContent.includes("breaker repair"))`, 15*time.Second)

	a := account(t, base, url.PathEscape(tenant))
	var ledger []struct {
		Kind, Amount string
	}
	getJSON(t, base+"/api/v1/accounts/"+url.PathEscape(tenant)+"/ledger", &ledger)
	var corrections []string
	for _, e := range ledger {
		if e.Kind != "charge" {
			corrections = append(corrections, e.Kind+" "+e.Amount)
		}
	}
	if got := strings.Join(corrections, ", "); got != "adjustment -12.30, reversal -200.00, topup 200.00" {
		t.Errorf("%s's ledger besides charges: %s; want the adjustment, the reversal and the top-up (balance %s)", tenant, got, a.Balance)
	}
}
