package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// GET /metrics is a viewer's and every higher role's, by bearer token
// (or login); without one it is 401 for the scraper to see, never a
// redirect to the login page; a wrong token is 401 too.
func TestMetrics_ViewerAndUp(t *testing.T) {
	scrape := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, "mallgrid_up 1\n")
	})
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens(), Metrics: scrape})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{RoleViewer, RoleOperator, RoleFinance, RoleAdmin} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, as(httptest.NewRequest(http.MethodGet, "/metrics", nil), role))
		if rec.Code != http.StatusOK || rec.Body.String() != "mallgrid_up 1\n" {
			t.Errorf("GET /metrics as %s = %d %q; want 200 and the scrape", role, rec.Code, rec.Body.String())
		}
	}
	for name, auth := range map[string]string{"no token": "", "a wrong token": "Bearer guess"} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Host = "localhost"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") || strings.Contains(rec.Body.String(), "mallgrid_up") {
			t.Errorf("GET /metrics with %s = %d %q (WWW-Authenticate %q); want 401 asking for a bearer token", name, rec.Code, rec.Body.String(),
				rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// Without Options.Metrics there is no /metrics.
func TestMetrics_NoneWithoutHandler(t *testing.T) {
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, s.Handler(), "/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without a handler = %d; want 404", resp.StatusCode)
	}
}
