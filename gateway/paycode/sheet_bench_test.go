package paycode

import (
	"bytes"
	"fmt"
	"testing"

	"mallgrid/gateway/config"
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

// BenchmarkService_Sheet200 is what the admin's PDF button costs end to
// end for 200 tenants: each link signed and encoded, then the sheet
// drawn — the work one request may ask for, the configuration's tenants
// at most (web refuses more names than there are tenants).
func BenchmarkService_Sheet200(b *testing.B) {
	var tenants []config.Tenant
	for i := range 200 {
		tenants = append(tenants, config.Tenant{ID: fmt.Sprintf("B1-%03d", i+1), Name: fmt.Sprintf("茶馆 Tea House %d", i+1)})
	}
	svc, err := NewService("滨江广场 Riverside Plaza", "riverside-plaza", testQR, tenants)
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for b.Loop() {
		doc, err := svc.Sheet(nil, "pdf")
		if err != nil {
			b.Fatal(err)
		}
		n = len(doc.Body)
	}
	b.ReportMetric(float64(n), "bytes")
}
