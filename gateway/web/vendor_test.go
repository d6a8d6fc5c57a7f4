package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"
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
