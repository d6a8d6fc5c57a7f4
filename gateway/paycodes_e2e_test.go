//go:build e2e

package gateway

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// TestE2E_PaycodeSheet: the admin opens the QR sticker page in a real
// browser, sees a preview of every tenant's code, filters to one tenant,
// and downloads its sheet as SVG and as PDF with the page's buttons; the
// files hold that tenant's sticker alone. The page raises no error (its
// Content-Security-Policy allows no inline script).
func TestE2E_PaycodeSheet(t *testing.T) {
	mall := e2eMall(t, 2, qrYAML)
	base, _ := mall.start(t)
	p := browser(t, base)

	p.open("/paycodes")
	p.login("ada", "ada-pw")
	p.do("the sticker page", chromedp.WaitVisible(`#paycodes`))
	p.until("every preview drawn", `(() => { const imgs = [...document.querySelectorAll("img.paycode")];
		return imgs.length === 4 && imgs.every(i => i.complete && i.naturalWidth > 0); })()`, 15*time.Second)
	if n := p.text(`#paycode-count`); n != "4 of 4 tenants" {
		t.Errorf("the page counts %q; want 4 of 4 tenants", n)
	}

	p.do("filter to T-b2",
		chromedp.SetValue(`#paycode-filter`, "b2"),
		chromedp.Submit(`#paycode-filter`),
		chromedp.WaitReady(`body`))
	p.until("the filtered list", `document.querySelectorAll("#paycodes tr[data-tenant]").length === 1 &&
		document.querySelector("#paycodes tr[data-tenant]").dataset.tenant === "T-b2"`, 10*time.Second)

	dir := t.TempDir()
	svg := download(t, p, dir, "#sheet-svg")
	if !bytes.Contains(svg, []byte(`data-tenant="T-b2"`)) || bytes.Count(svg, []byte(`data-tenant=`)) != 1 {
		t.Errorf("the SVG sheet downloaded holds %d stickers; want T-b2's alone", bytes.Count(svg, []byte(`data-tenant=`)))
	}
	pdf := download(t, p, dir, "#sheet-pdf")
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("%%EOF")) {
		t.Errorf("the PDF sheet downloaded (%d bytes) is not a whole PDF", len(pdf))
	}
}

// download clicks the link sel on the page and returns the file the
// browser saved into dir.
func download(t *testing.T, p *pages, dir, sel string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	yes := true
	p.do("click "+sel,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &yes})
			return err
		}),
		chromedp.Click(chromedp.CSS(sel)))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download %s: %v", sel, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return b
		case cdpbrowser.DownloadProgressStateCanceled:
			t.Fatalf("download %s: canceled", sel)
		}
	}
	t.Fatalf("download %s: no file within 30 s", sel)
	return nil
}
