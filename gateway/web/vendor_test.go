package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// The vendored charting library is what `make vendor-js` fetched: its
// checksums hold, and it is embedded (served with the other static files).
func TestVendoredUPlot(t *testing.T) {
	const dir = "assets/static/vendor/uplot/"
	sums, err := fs.ReadFile(assets, dir+"SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		b, err := fs.ReadFile(assets, dir+name)
		if err != nil {
			t.Fatalf("%s is not embedded: %v", name, err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s; want %s (run make vendor-js)", name, got, want)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d vendored files checked; want uPlot's script and style", n)
	}
	if _, err := fs.Stat(assets, dir+"LICENSE"); err != nil {
		t.Errorf("uPlot's licence is not shipped with it: %v", err)
	}
}

// The static files are served one by one; their directories are not listed.
func TestStatic_NoListing(t *testing.T) {
	s, err := New(newFake(), Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want int
	}{
		{"/static/", http.StatusNotFound},
		{"/static/vendor/uplot/", http.StatusNotFound},
		{"/static/vendor/uplot/uPlot.min.css", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", c.path, nil)
		req.Host = "localhost"
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("GET %s = %d; want %d", c.path, rec.Code, c.want)
		}
	}
}
