package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/i18n"
)

// fakeStatements answers by token: "good" opens, "old" has expired,
// anything else was altered.
type fakeStatements struct{ lastLang i18n.Lang }

func (f *fakeStatements) List(tenant string) ([]StatementInfo, error) {
	if tenant != "T-1" {
		return nil, fmt.Errorf("%w: tenant %q", ErrNotFound, tenant)
	}
	return []StatementInfo{{Month: "2026-11", Link: "/s/good"}}, nil
}

func (f *fakeStatements) Statement(tenant, month, format string, lang i18n.Lang) (Document, error) {
	f.lastLang = lang
	return Document{Body: []byte("<p>" + tenant + " " + month + "</p>"), ContentType: statementTypes[format], CSP: "default-src 'none'", Filename: "s." + format}, nil
}

func (f *fakeStatements) Shared(token, format string, lang i18n.Lang) (Document, error) {
	switch token {
	case "good":
		return f.Statement("T-1", "2026-11", format, lang)
	case "old":
		return Document{}, fmt.Errorf("%w: 2026-12-01", ErrLinkExpired)
	}
	return Document{}, fmt.Errorf("%w: bad MAC", ErrNotFound)
}

func TestStatements_Endpoints(t *testing.T) {
	fake := &fakeStatements{}
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens(), Statements: fake})
	if err != nil {
		t.Fatal(err)
	}
	do := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		role, path string
		want       int
	}{
		{RoleViewer, "/api/v1/accounts/T-1/statements", http.StatusForbidden},
		{RoleOperator, "/api/v1/accounts/T-1/statements", http.StatusOK},
		{RoleFinance, "/api/v1/accounts/T-1/statements", http.StatusOK},
		{RoleAdmin, "/api/v1/accounts/T-1/statements", http.StatusOK},
		{RoleFinance, "/api/v1/accounts/T-9/statements", http.StatusNotFound},
		{RoleViewer, "/api/v1/accounts/T-1/statements/2026-11", http.StatusForbidden},
		{RoleFinance, "/api/v1/accounts/T-1/statements/2026-11?format=pdf", http.StatusOK},
		{RoleFinance, "/api/v1/accounts/T-1/statements/11-2026", http.StatusBadRequest},
		{RoleFinance, "/api/v1/accounts/T-1/statements/2026-11?format=xlsx", http.StatusBadRequest},
		{RoleFinance, "/api/v1/accounts/T-1/statements/2026-11?lang=de", http.StatusBadRequest},
	} {
		if w := do(as(httptest.NewRequest("GET", c.path, nil), c.role)); w.Code != c.want {
			t.Errorf("%s %s: %d %s; want %d", c.role, c.path, w.Code, w.Body, c.want)
		}
	}
	w := do(as(httptest.NewRequest("GET", "/api/v1/accounts/T-1/statements/2026-11?lang=zh-CN", nil), RoleFinance))
	if got := w.Header().Get("Content-Security-Policy"); got != "default-src 'none'" || fake.lastLang != i18n.ZhCN {
		t.Errorf("CSP %q, lang %s; want the document's own, zh-CN", got, fake.lastLang)
	}
	if w.Header().Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(w.Body.String(), "T-1 2026-11") {
		t.Errorf("the statement: %s %s", w.Header().Get("Content-Type"), w.Body)
	}

	// The tenant's link needs no token, and says why it does not open.
	link := func(path, lang string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Host = "localhost"
		r.Header.Set("Accept-Language", lang)
		return do(r)
	}
	if w := link("/s/good?format=pdf", "en"); w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/pdf" ||
		w.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("good link: %d %s, referrer %q", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Referrer-Policy"))
	}
	if w := link("/s/old", "zh-CN,zh;q=0.9"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "已过期") {
		t.Errorf("expired link: %d %s; want 403 saying so in Chinese", w.Code, w.Body)
	}
	if w := link("/s/altered", "en"); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "not valid") ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Errorf("altered link: %d %s; want 404 with a page saying so", w.Code, w.Body)
	}
}

// blockingStatements draws a PDF only when let go: the test holds
// pdfRenders of them at once.
type blockingStatements struct {
	fakeStatements
	started chan struct{}
	release chan struct{}
}

func (b *blockingStatements) Statement(tenant, month, format string, lang i18n.Lang) (Document, error) {
	if format == "pdf" {
		b.started <- struct{}{}
		<-b.release
	}
	return Document{Body: []byte(tenant + " " + month), ContentType: statementTypes[format], Filename: "s." + format}, nil
}

func (b *blockingStatements) Shared(token, format string, lang i18n.Lang) (Document, error) {
	return b.Statement("T-1", "2026-11", format, lang)
}

// At most pdfRenders PDFs are drawn at once, over staff and links alike;
// one more is refused at once with 503 and Retry-After; HTML is not held.
func TestStatements_PDFLimit(t *testing.T) {
	b := &blockingStatements{started: make(chan struct{}, 10), release: make(chan struct{})}
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens(), Statements: b})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	released := false
	defer func() {
		if !released {
			close(b.release)
		}
	}()
	client := &http.Client{Timeout: 3 * time.Second} // an unlimited server would hold the next one
	get := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		as(req, RoleFinance)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return nil, ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	codes := make(chan int, pdfRenders)
	for i := range pdfRenders {
		path := "/api/v1/accounts/T-1/statements/2026-11?format=pdf"
		if i%2 == 1 {
			path = "/s/good?format=pdf"
		}
		go func() {
			resp, _ := get(path)
			if resp != nil {
				codes <- resp.StatusCode
			} else {
				codes <- 0
			}
		}()
		<-b.started
	}
	for _, path := range []string{"/api/v1/accounts/T-1/statements/2026-11?format=pdf", "/s/good?format=pdf&lang=zh-CN"} {
		resp, body := get(path)
		if resp == nil {
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s while %d are drawn: %d, Retry-After %q; want 503 with Retry-After", path, pdfRenders, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if strings.HasPrefix(path, "/s/") && !strings.Contains(body, "请几秒钟后再试") {
			t.Errorf("the link's busy page: %s", body)
		}
	}
	if resp, _ := get("/api/v1/accounts/T-1/statements/2026-11?format=html"); resp != nil && resp.StatusCode != http.StatusOK {
		t.Errorf("HTML while PDFs are drawn: %d; want 200", resp.StatusCode)
	}
	close(b.release)
	released = true
	for range pdfRenders {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("a PDF drawn: %d; want 200", code)
		}
	}
	// The tokens are given back.
	if resp, _ := get("/s/good?format=pdf"); resp != nil && resp.StatusCode != http.StatusOK {
		t.Errorf("a PDF after the others: %d; want 200", resp.StatusCode)
	}
}

// panickingStatements panics while drawing every PDF until healed.
type panickingStatements struct {
	fakeStatements
	healed bool
}

func (p *panickingStatements) Statement(tenant, month, format string, lang i18n.Lang) (Document, error) {
	if format == "pdf" && !p.healed {
		panic("fpdf: something unexpected")
	}
	return p.fakeStatements.Statement(tenant, month, format, lang)
}

// A PDF whose drawing panics gives its slot back: after more panics than
// there are slots, the next PDF is still drawn.
func TestStatements_PDFSlotReleasedOnPanic(t *testing.T) {
	p := &panickingStatements{}
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens(), Statements: p})
	if err != nil {
		t.Fatal(err)
	}
	get := func() (code int) {
		defer func() {
			if recover() != nil {
				code = -1 // net/http recovers a handler's panic; here the test does
			}
		}()
		r := httptest.NewRequest("GET", "/api/v1/accounts/T-1/statements/2026-11?format=pdf", nil)
		as(r, RoleFinance)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	for range pdfRenders + 1 {
		if code := get(); code != -1 {
			t.Fatalf("a panicking draw answered %d", code)
		}
	}
	p.healed = true
	if code := get(); code != http.StatusOK {
		t.Errorf("after %d panics: %d; want 200 (slots given back)", pdfRenders+1, code)
	}
}
