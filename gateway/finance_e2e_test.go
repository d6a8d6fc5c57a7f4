//go:build e2e

package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mallgrid/gateway/web"
)

// TestE2E_FinancePage: finance opens /finance in a browser — the menu
// links it, the report links name last month, the preview of corridors
// over last month's days shows the posting's cost and each tenant's
// share, and a standing posting is reversed from its dialog (finance.js
// sends the reason with the dialog's CSRF token); the page then marks it
// reversed with the reason, and the API agrees. Any script refused by the
// Content-Security-Policy fails the test (the browser helper's listener).
func TestE2E_FinancePage(t *testing.T) {
	mall, from, _ := allocationMall(t)
	mall = withLogins(t, mall)
	base, _ := mall.start(t)
	var postings []web.AllocationPosting
	waitFor(t, 10*time.Second, "the month's two postings", func() bool {
		return call(t, "GET", base+"/api/v1/allocations", "books-secret", "", &postings) == 200 && len(postings) == 2
	})
	var corridors web.AllocationPosting
	for _, p := range postings {
		if p.Rule == "corridors" {
			corridors = p
		}
	}
	month := from.Format("2006-01")

	p := browser(t, base)
	p.open("/finance")
	p.login("fay", "fay-pw")
	p.until("the finance page", `location.pathname === "/finance" && !!document.querySelector("#preview-form")`, 15*time.Second)
	if href := js[string](p, `document.querySelector("header nav a[href='/finance']") ? "linked" : ""`); href != "linked" {
		t.Error("the menu does not link the finance page")
	}
	if got := js[string](p, `document.querySelector("#report-xlsx").getAttribute("href")`); got != "/api/v1/reports/finance?month="+month+"&format=xlsx" {
		t.Errorf("the XLSX link is %q; want last month's, %s", got, month)
	}

	// The mall has no main meter: the balance lists the public meters'
	// 200 kWh and no per cent of the mains.
	if got := p.text(`#balance`); !strings.Contains(got, "200.000") || !strings.Contains(got, "—") {
		t.Errorf("the month's balance reads %q; want the public meters' 200.000 kWh and no per cent", got)
	}
	p.do("preview corridors over last month",
		chromedp.SetValue(`#preview-form select[name=rule]`, "corridors"),
		chromedp.Click(`#preview-form button[type=submit]`))
	p.until("the preview's shares", `!!document.querySelector("#preview-shares tbody tr")`, 15*time.Second)
	if got := p.text(`#preview-result`); !strings.Contains(got, "100.00") || !strings.Contains(got, "100.000") {
		t.Errorf("the preview shows %q; want the cost ¥100.00 and 100.000 kWh", got)
	}
	shares := p.text(`#preview-shares tbody`)
	for _, want := range []string{"T-a1", "consumption 3.000 kWh of 4.000 kWh = 75% of the cost", "75.00", "T-a2", "25.00"} {
		if !strings.Contains(shares, want) {
			t.Errorf("the preview's shares %q lack %q", shares, want)
		}
	}

	row := fmt.Sprintf("#posting-%d", corridors.ID)
	p.do("open the reversal dialog", chromedp.Click(row+` button.reverse-posting`), chromedp.WaitVisible(`dialog#reverse-posting`))
	p.do("send the reversal",
		chromedp.SendKeys(`dialog#reverse-posting input[name=reason]`, "meter M-b2 was misread"),
		chromedp.Click(`dialog#reverse-posting button.yes`))
	p.until("the posting marked reversed", `(() => { const r = document.querySelector("`+row+`"); return !!r && r.classList.contains("reversed"); })()`, 15*time.Second)
	if got := p.text(row); !strings.Contains(got, "meter M-b2 was misread") || !strings.Contains(got, "user:fay") {
		t.Errorf("the reversed posting reads %q; want who reversed it and why", got)
	}
	if n := js[int](p, `document.querySelectorAll("`+row+` button.reverse-posting").length`); n != 0 {
		t.Error("a reversed posting still offers a reversal")
	}
	waitFor(t, 5*time.Second, "the API to list the reversal", func() bool {
		call(t, "GET", base+"/api/v1/allocations", "books-secret", "", &postings)
		for _, p := range postings {
			if p.ID == corridors.ID {
				return p.Reversal != nil && p.Reversal.Reason == "meter M-b2 was misread"
			}
		}
		return false
	})
}
