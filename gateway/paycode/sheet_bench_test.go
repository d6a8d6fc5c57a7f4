package paycode

import (
	"bytes"
	"testing"
)

// BenchmarkSheet_PDF200 draws a mall's 200 stickers (17 pages) as a PDF:
// what the admin's PDF button and `mallgrid qr` cost.
func BenchmarkSheet_PDF200(b *testing.B) {
	sh, cjk := testSheet(b, 200), loadCJK(b)
	var n int
	for b.Loop() {
		var buf bytes.Buffer
		if err := sh.PDF(&buf, cjk); err != nil {
			b.Fatal(err)
		}
		n = buf.Len()
	}
	b.ReportMetric(float64(n), "bytes")
}

// BenchmarkSheet_SVG200 is the same sheet as one SVG.
func BenchmarkSheet_SVG200(b *testing.B) {
	sh := testSheet(b, 200)
	var n int
	for b.Loop() {
		var buf bytes.Buffer
		if err := sh.SVG(&buf); err != nil {
			b.Fatal(err)
		}
		n = buf.Len()
	}
	b.ReportMetric(float64(n), "bytes")
}
