//go:build e2e

package gateway

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Debian chromium (flags from the machine notes:
// no background networking, since this machine has no network).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not installed (apt-get install chromium): ", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestE2E_StatusPageShowsLiveMeters opens the status page in a real browser
// and checks that it lists every meter with values, and that a relay that
// opens on the bus shows as open without a reload.
func TestE2E_StatusPageShowsLiveMeters(t *testing.T) {
	mall := newTestMall(t, 3)
	for _, m := range mall.meters {
		m.SetLoad(4000)
	}
	base, _ := mall.start(t)
	ctx := browser(t)

	// The page sends a browser without a session to the login form, and
	// back to the page once logged in.
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#username`),
	)
	if err != nil {
		t.Fatalf("load the login page: %v", err)
	}
	if loc := run(t, ctx, chromedp.Location()); !strings.Contains(loc, "/login?next=%2F") {
		t.Errorf("the page without a login is at %s; want the login form with the page to return to", loc)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`#username`, "ann"),
		chromedp.SendKeys(`#password`, "ann-pw"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#meters`),
		// The first poll cycle lands within a second; the page refreshes every 2 s.
		chromedp.Poll[chromedp.Void](`(() => { const c = document.querySelector('#meter-M-a2 td.import'); return c && c.textContent !== '—'; })()`,
			chromedp.WithPollingTimeout(15*time.Second)),
	)
	if err != nil {
		t.Fatalf("load status page: %v", err)
	}
	if user := run(t, ctx, chromedp.Text(`#user`)); user != "ann" {
		t.Errorf("the page shows user %q; want ann, beside the logout button", user)
	}
	rows := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#meters tbody tr').length`))
	importText := run(t, ctx, chromedp.Text(`#meter-M-a2 td.import`))
	relayText := run(t, ctx, chromedp.Text(`#meter-M-a2 td.relay`))
	if rows != 6 {
		t.Errorf("status page lists %d meters; want 6", rows)
	}
	if !strings.Contains(importText, ".") || relayText != "closed" {
		t.Errorf("M-a2: import %q, relay %q; want a kWh value and closed", importText, relayText)
	}

	// An operator opens the tenant's relay (as a cut-off would): the page
	// must follow by itself. (Opened behind the gateway's back, the relay
	// would be closed again at once: enforcement wants it closed.)
	if code := call(t, "POST", base+"/api/v1/meters/M-a2/relay", "till-secret", `{"state":"off","reason":"e2e test"}`, nil); code != 200 {
		t.Fatalf("relay override = %d", code)
	}
	err = chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('#meter-M-a2 td.relay').textContent === 'open'`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		t.Fatalf("relay change never reached the page: %v", err)
	}
	if power := run(t, ctx, chromedp.Text(`#meter-M-a2 td.power`)); power != "0" {
		t.Errorf("M-a2 power after the relay opened = %q W; want 0", power)
	}

	// A top-up shows in the accounts table without a reload.
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", "till-secret", `{"amount":"42.00","ref":"E2E-1","channel":"cash"}`, nil); code != 201 {
		t.Fatalf("top-up = %d", code)
	}
	err = chromedp.Do(ctx, chromedp.Poll[chromedp.Void](
		`document.querySelector('#account-T-a1 td:nth-child(4)').textContent === '42.00'`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		t.Fatalf("the top-up never reached the accounts table: %v", err)
	}

	// A counter that falls raises an event, which the page shows as it
	// arrives (server-sent events), without a reload.
	mall.meters["M-a3"].SetImportWh(1)
	err = chromedp.Do(ctx, chromedp.Poll[chromedp.Void](
		`Array.from(document.querySelectorAll('#events tbody tr')).some(r => r.textContent.includes('counter_lower') && r.textContent.includes('M-a3'))`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		t.Fatalf("the counter_lower event never reached the page: %v", err)
	}
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
