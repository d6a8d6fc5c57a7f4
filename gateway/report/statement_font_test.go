package report

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestFontGlyphs_Droid(t *testing.T) {
	g, err := fontGlyphs(cjkFont)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range "中书店电费对账单（）。，" {
		if !g.has(c) {
			t.Errorf("%q: not in the CJK font", c)
		}
	}
	// The font has no Latin letters: they are Helvetica's.
	for _, c := range "AZaz09€" {
		if g.has(c) {
			t.Errorf("%q: in the CJK font", c)
		}
	}
}

// A damaged font is refused, never a panic.
func TestFontGlyphs_Damaged(t *testing.T) {
	if _, err := fontGlyphs(nil); !errors.Is(err, errCmap) {
		t.Errorf("empty: %v", err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		b := slices.Clone(cjkFont[:rng.IntN(len(cjkFont))])
		for range 8 {
			if len(b) > 0 {
				b[rng.IntN(min(len(b), 4096))] ^= byte(rng.UintN(255) + 1)
			}
		}
		_, _ = fontGlyphs(b) // must return
	}
}

func TestPDFRuns(t *testing.T) {
	_, r := stmtIssue(t, "T-101")
	p := &pdfDoc{glyphs: r.glyphs}
	got := p.runs("Łódź — “书店” 🍜\x07€")
	want := []run{{false, "?ód? — “"}, {true, "书店"}, {false, "” ? €"}}
	if !slices.Equal(got, want) {
		t.Errorf("runs = %+v; want %+v", got, want)
	}
}
