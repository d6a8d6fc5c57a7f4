package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// balanceReports answers the month's energy balance and remembers the
// span it was asked for.
type balanceReports struct {
	emptyReports
	mu       sync.Mutex
	from, to time.Time
}

func (b *balanceReports) EnergyBalance(_ context.Context, from, to time.Time) (BalanceView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.from, b.to = from, to
	pct := "4.17"
	return BalanceView{Total: BalanceRow{Period: "total", MainKWh: "1200.000", TenantKWh: "1000.000", PublicKWh: "150.000",
		MeteredKWh: "1150.000", UnmeteredKWh: "50.000", UnmeteredPct: &pct}}, nil
}

// pageAllocations has two postings of rule corridors, the older reversed,
// and previews corridors alone, remembering the span asked.
type pageAllocations struct {
	mu       sync.Mutex
	from, to time.Time
}

func (a *pageAllocations) Preview(rule string, from, to time.Time) (AllocationPreview, error) {
	if rule != "corridors" {
		return AllocationPreview{}, fmt.Errorf("%w: no allocation rule %q", ErrNotFound, rule)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.from, a.to = from, to
	return AllocationPreview{Rule: rule, From: from, To: to, Basis: "area", Tariff: "standard", PublicKWh: "321.500", Cost: "192.90",
		Shares: []AllocationShare{{Tenant: "T-101", Basis: "area 120.00 m² of 200.00 m² = 60%", Amount: "115.74"},
			{Tenant: "T-102", Basis: "area 80.00 m² of 200.00 m² = 40%", Amount: "77.16"}}}, nil
}

func (a *pageAllocations) Postings() ([]AllocationPosting, error) {
	at := time.Date(2026, 11, 2, 0, 10, 0, 0, time.UTC)
	return []AllocationPosting{
		{ID: 8, Period: "2026-11-01", AllocationPreview: AllocationPreview{Rule: "corridors", PublicKWh: "10.000", Cost: "6.00"}, Time: at.Add(24 * time.Hour), Actor: "system"},
		{ID: 7, Period: "2026-10-31", AllocationPreview: AllocationPreview{Rule: "corridors", PublicKWh: "11.000", Cost: "6.60"}, Time: at, Actor: "system",
			Reversal: &AllocationUndo{Time: at.Add(time.Hour), Actor: "user:finance", Reason: "meter swapped"}},
	}, nil
}

func (a *pageAllocations) Post(context.Context, string, time.Time, string) (AllocationPosting, bool, error) {
	return AllocationPosting{}, false, fmt.Errorf("%w: not in this test", ErrInvalid)
}

func (a *pageAllocations) Reverse(context.Context, uint64, string, string) (AllocationPosting, error) {
	return AllocationPosting{}, fmt.Errorf("%w: not in this test", ErrInvalid)
}

func (a *pageAllocations) Rules() []AllocationRuleInfo {
	return []AllocationRuleInfo{{Name: "corridors", Basis: "area", Tariff: "standard", Period: "day", Meters: []string{"M-PUB-2F"}, Tenants: []string{"T-101", "T-102"}},
		{Name: "chillers", Basis: "consumption", Tariff: "standard", Period: "month", Meters: []string{"M-AC"}}}
}

// tenantStatements lists one statement for T-101.
type tenantStatements struct{ fakeStatements }

func (*tenantStatements) List(tenant string) ([]StatementInfo, error) {
	if tenant != "T-101" {
		return nil, nil
	}
	return []StatementInfo{{Month: "2026-10", Generated: time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC), Opening: "10.00", Closing: "25.50",
		HTML: "/api/v1/accounts/T-101/statements/2026-10?format=html", PDF: "/api/v1/accounts/T-101/statements/2026-10?format=pdf",
		Link: "/s/tok-2026-10", LinkExpires: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)}}, nil
}

func financeRig(t *testing.T) (*rig, *balanceReports, *pageAllocations) {
	t.Helper()
	rep, al := &balanceReports{}, &pageAllocations{}
	rg := newRig(t, func(o *Options) { o.Reports, o.Allocations, o.Statements = rep, al, &tenantStatements{} })
	return rg, rep, al
}

// TestFinancePage_BothLanguagesForBooks: finance and admin, in English
// and in Chinese, get the page whole — the nav link, the last month's
// report links (the rig's clock is 1 December), its balance, the rules,
// the postings with a Reverse button on the standing one only, and the
// reverse dialog's form carrying the session's CSRF token.
func TestFinancePage_BothLanguagesForBooks(t *testing.T) {
	rg, rep, _ := financeRig(t)
	for _, role := range []string{RoleFinance, RoleAdmin} {
		for _, lang := range []struct{ accept, tag, word string }{
			{"en-GB,en;q=0.9", "en", ">Finance</a>"},
			{"zh-CN,zh;q=0.9", "zh-CN", ">财务</a>"},
		} {
			c := client(t)
			csrf := rg.login(t, c, role, role+"-pw")
			code, body := rg.page(t, c, "/finance", map[string]string{"Accept-Language": lang.accept})
			if code != 200 {
				t.Fatalf("/finance as %s in %s = %d; want 200: %.300s", role, lang.tag, code, body)
			}
			for _, want := range []string{
				`<html lang="` + lang.tag + `">`, lang.word,
				`href="/api/v1/reports/finance?month=2026-11&amp;format=xlsx"`,
				`href="/api/v1/reports/finance?month=2026-11&amp;format=csv"`,
				`<input type="month" name="month" value="2026-11"`,
				"1,200.000", "50.000", "4.17 %", // mains, unmetered, per cent
				"M-PUB-2F", `<option value="chillers">`,
				`<tr id="posting-8">`, `data-posting="8"`, "meter swapped",
				`<script src="/static/finance.js" defer></script>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("/finance as %s in %s lacks %q", role, lang.tag, want)
				}
			}
			// The reverse dialog's own form carries the token (the language
			// switch's form in the header has it too).
			_, dialog, _ := strings.Cut(body, `<dialog id="reverse-posting"`)
			dialog, _, _ = strings.Cut(dialog, "</dialog>")
			if !strings.Contains(dialog, `<input type="hidden" name="csrf" value="`+csrf+`">`) {
				t.Errorf("/finance as %s: the reverse dialog's form lacks the session's CSRF token", role)
			}
			if strings.Contains(body, `data-posting="7"`) {
				t.Errorf("/finance as %s offers to reverse posting 7, reversed already", role)
			}
			if m := messageID.FindString(body); m != "" {
				t.Errorf("/finance as %s in %s shows the message id %s instead of its words", role, lang.tag, m)
			}
			if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Errorf("/finance loads something from the internet")
			}
		}
	}
	rep.mu.Lock()
	from, to := rep.from, rep.to
	rep.mu.Unlock()
	if want := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC); !from.Equal(want) || to.Before(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) || !to.Before(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the balance was asked for %s … %s; want the days of November 2026", from, to)
	}
}

// TestFinancePage_RefusedToViewerAndOperator: the page is the books' —
// 403 for the others, and their menu does not link to it.
func TestFinancePage_RefusedToViewerAndOperator(t *testing.T) {
	rg, _, _ := financeRig(t)
	for _, role := range []string{RoleViewer, RoleOperator, RoleFinance, RoleAdmin} {
		c := client(t)
		rg.login(t, c, role, role+"-pw")
		code, _ := rg.page(t, c, "/finance", nil)
		_, home := rg.page(t, c, "/", nil)
		linked := strings.Contains(home, `href="/finance"`)
		books := role == RoleFinance || role == RoleAdmin
		if books && (code != 200 || !linked) {
			t.Errorf("%s: /finance = %d, linked %v; want 200 and linked", role, code, linked)
		}
		if !books && (code != http.StatusForbidden || linked) {
			t.Errorf("%s: /finance = %d, linked %v; want 403 and no link", role, code, linked)
		}
		if strings.Contains(home, "finance.js") {
			t.Errorf("%s: the dashboard loads finance.js; it is the finance page's alone", role)
		}
	}
}

// TestFinancePage_MonthAndPreview: the month asked carries into the
// links and the balance; the preview's dates are whole days of the site's
// calendar, to included; its shares are listed; an unknown rule says why.
func TestFinancePage_MonthAndPreview(t *testing.T) {
	rg, rep, al := financeRig(t)
	hdr := map[string]string{"Authorization": "Bearer finance-secret"}
	c := client(t)
	code, body := rg.page(t, c, "/finance?month=2026-09&rule=corridors&from=2026-11-01&to=2026-11-30", hdr)
	if code != 200 {
		t.Fatalf("/finance = %d: %.300s", code, body)
	}
	for _, want := range []string{"month=2026-09&amp;format=xlsx", "month=2026-09&amp;format=csv", `<option value="corridors" selected>`,
		`id="preview-shares"`, `<a href="/tenants/T-102">T-102</a>`, "area 80.00 m² of 200.00 m² = 40%", "77.16", "115.74", "192.90", "321.500"} {
		if !strings.Contains(body, want) {
			t.Errorf("/finance?month=2026-09&rule=corridors… lacks %q", want)
		}
	}
	if want := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC); !rep.from.Equal(want) {
		t.Errorf("balance from %s; want %s", rep.from, want)
	}
	if wf, wt := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !al.from.Equal(wf) || !al.to.Equal(wt) {
		t.Errorf("preview asked for %s … %s; want %s … %s", al.from, al.to, wf, wt)
	}
	for path, want := range map[string]string{
		"/finance?rule=lifts&from=2026-11-01&to=2026-11-30":     `no allocation rule &#34;lifts&#34;`,
		"/finance?rule=corridors&from=2026-11-30&to=2026-11-01": "The last day is before the first",
		"/finance?rule=corridors&from=yesterday&to=2026-11-01":  "Give the first and the last day as dates",
		"/finance?month=2026-13":                                "month=2026-11&amp;format=csv", // a bad month: the default
	} {
		code, body := rg.page(t, c, path, hdr)
		if code != 200 || !strings.Contains(body, want) || (strings.Contains(path, "rule=") && strings.Contains(body, `id="preview-shares"`)) {
			t.Errorf("%s = %d; want 200 with %q and no shares", path, code, want)
		}
	}
}

// TestTenantPage_Statements: the roles that read statements see the
// tenant's issued ones with their files and the whole signed link; a
// viewer sees none.
func TestTenantPage_Statements(t *testing.T) {
	rg, _, _ := financeRig(t)
	for role, want := range map[string]bool{RoleViewer: false, RoleOperator: true, RoleFinance: true, RoleAdmin: true} {
		for _, accept := range []string{"en", "zh-CN"} {
			c := client(t)
			code, body := rg.page(t, c, "/tenants/T-101", map[string]string{"Authorization": "Bearer " + role + "-secret", "Accept-Language": accept})
			if code != 200 {
				t.Fatalf("/tenants/T-101 as %s = %d", role, code)
			}
			shown := strings.Contains(body, `id="statements"`)
			if shown != want {
				t.Errorf("%s: statements shown %v; want %v", role, shown, want)
			}
			if !want {
				continue
			}
			for _, w := range []string{`value="` + rg.url + `/s/tok-2026-10"`, `href="/api/v1/accounts/T-101/statements/2026-10?format=pdf"`, "25.50"} {
				if !strings.Contains(body, w) {
					t.Errorf("%s in %s: the statements lack %q", role, accept, w)
				}
			}
			if m := messageID.FindString(body); m != "" {
				t.Errorf("%s in %s: the tenant page shows the message id %s", role, accept, m)
			}
		}
	}
}

// TestDayStart_SkippedMidnight: America/Santiago skips 6 September 2026's
// midnight; the day starts at 01:00 that day, not at 23:00 on the 5th.
func TestDayStart_SkippedMidnight(t *testing.T) {
	loc, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Skip(err)
	}
	got := dayStart(2026, 9, 6, loc)
	if got.Format("2006-01-02 15:04") != "2026-09-06 01:00" {
		t.Errorf("dayStart(2026-09-06, Santiago) = %s; want 2026-09-06 01:00", got)
	}
	if got := dayStart(2026, 9, 7, loc); got.Format("2006-01-02 15:04") != "2026-09-07 00:00" {
		t.Errorf("dayStart(2026-09-07, Santiago) = %s; want midnight", got)
	}
	if got := dayStart(2026, 13, 1, time.UTC); !got.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("dayStart(2026-13-01) = %s; want 2027-01-01", got)
	}
}

// blockingPreview holds each preview until released.
type blockingPreview struct {
	pageAllocations
	started chan struct{}
	release chan struct{}
	inside  atomic.Int32
}

func (b *blockingPreview) Preview(rule string, from, to time.Time) (AllocationPreview, error) {
	// A second one while the first is held is answered at once: without
	// the server's limit the test sees its 200, rather than hanging.
	if b.inside.Add(1) > 1 {
		b.inside.Add(-1)
		return b.pageAllocations.Preview(rule, from, to)
	}
	defer b.inside.Add(-1)
	b.started <- struct{}{}
	<-b.release
	return b.pageAllocations.Preview(rule, from, to)
}

// One allocation preview is computed at a time: another, through the API
// or the finance page, is refused at once (503 and Retry-After; the page
// says why) and the next after it goes through.
func TestAllocations_OnePreviewAtATime(t *testing.T) {
	b := &blockingPreview{started: make(chan struct{}, 2), release: make(chan struct{})}
	s, err := New(newFake(), Options{Tokens: testTokens(), Allocations: b})
	if err != nil {
		t.Fatal(err)
	}
	preview := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/api/v1/allocations/preview?rule=corridors&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", nil)
		as(r, RoleFinance)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	first := make(chan int, 1)
	go func() { first <- preview().Code }()
	<-b.started
	if w := preview(); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("a second preview while one is computed: %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	var d financeView
	d.Rule, d.From, d.To = "corridors", "2026-11-01", "2026-11-01"
	s.financePreview(&d, time.UTC)
	if d.Preview != nil || !strings.Contains(d.PreviewProblem, "another allocation preview") {
		t.Errorf("the page's preview while one is computed: %+v, %q; want it refused", d.Preview, d.PreviewProblem)
	}
	close(b.release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("the first preview: %d", code)
	}
	if w := preview(); w.Code != http.StatusOK {
		t.Errorf("a preview after it: %d; want 200", w.Code)
	}
}
