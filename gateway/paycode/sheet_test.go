package paycode

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"mallgrid/gateway/report"
)

// testSheet has n stickers whose links differ by tenant.
func testSheet(t testing.TB, n int) Sheet {
	t.Helper()
	sh := Sheet{Mall: "滨江广场 Riverside Plaza"}
	for i := range n {
		id := fmt.Sprintf("B1-%02d", i+1)
		c, err := Encode("https://pay.example.com/mall/riverside-plaza/shop/" + id + "?k=q1&s=e301a2Nr1a8fNtHTsEvqhw")
		if err != nil {
			t.Fatal(err)
		}
		sh.Stickers = append(sh.Stickers, Sticker{Tenant: id, Name: fmt.Sprintf("茶馆 Tea House %d", i+1), Code: c})
	}
	return sh
}

func loadCJK(t testing.TB) *report.CJK {
	t.Helper()
	c, err := report.LoadCJK()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var pdfFill = regexp.MustCompile(`(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re f\n`)

// TestSheet_PDF draws the rectangles the PDF fills (its page stream, read
// from the file) and decodes each sticker's cell: every code is its
// tenant's exact link, in the grid's order; every text lies inside its
// sticker.
func TestSheet_PDF(t *testing.T) {
	sh := testSheet(t, Cols*Rows)
	var b bytes.Buffer
	var texts []string
	hooks := pdfHooks{text: func(page int, x, y, w float64, s string) {
		i := len(texts) / 4 // four texts a sticker
		_, cx, cy := cell(i)
		if page != 0 || x < cx+textInset-0.01 || x+w > cx+cellW-textInset+0.01 || y < cy || y > cy+cellH-3.5 {
			t.Errorf("text %q of sticker %d at (%.1f, %.1f) w %.1f: outside its sticker (%.1f, %.1f)", s, i, x, y, w, cx, cy)
		}
		texts = append(texts, s)
	}}
	if err := sh.pdf(&b, loadCJK(t), hooks, true); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(b.String(), "/Type /Page\n"); got != 1 {
		t.Errorf("%d pages; want 1 for %d stickers", got, Cols*Rows)
	}
	if len(texts) != 4*Cols*Rows || texts[1] != Caption || texts[2] != "茶馆 Tea House 1" || texts[3] != "B1-01" || texts[0] != sh.Mall {
		t.Errorf("texts %q…; want mall, caption, name and id a sticker", texts[:min(8, len(texts))])
	}
	// The page at 4 pixels a point: a module (44 mm / 45) is 8 pixels.
	const scale = 4.0
	const ptMM = 72 / 25.4
	pageWpt, pageHpt := pageW*ptMM, pageH*ptMM
	img := image.NewGray(image.Rect(0, 0, int(pageWpt*scale), int(pageHpt*scale)))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	fills := pdfFill.FindAllStringSubmatch(b.String(), -1)
	if len(fills) < 100 {
		t.Fatalf("%d filled rectangles in the PDF; want a code's modules", len(fills))
	}
	for _, f := range fills {
		x, _ := strconv.ParseFloat(f[1], 64)
		y, _ := strconv.ParseFloat(f[2], 64)
		w, _ := strconv.ParseFloat(f[3], 64)
		h, _ := strconv.ParseFloat(f[4], 64)
		// h is negative: the rectangle runs down the page. A pixel is
		// dark when its centre is in the rectangle, give or take the
		// PDF's rounding to 0.01 pt (a reader's anti-aliasing closes such
		// a gap; a pixel test would show it as a white hairline).
		const eps = 0.011
		top, bottom := pageHpt-y-eps, pageHpt-y-h+eps
		in := func(p int, lo, hi float64) bool { c := (float64(p) + 0.5) / scale; return c >= lo && c <= hi }
		for py := int(top * scale); py <= int(bottom*scale); py++ {
			for px := int((x - eps) * scale); px <= int((x+w+eps)*scale); px++ {
				if in(py, top, bottom) && in(px, x-eps, x+w+eps) {
					img.SetGray(px, py, color.Gray{})
				}
			}
		}
	}
	for i, st := range sh.Stickers {
		_, cx, cy := cell(i)
		r := image.Rect(int(cx*ptMM*scale), int(cy*ptMM*scale), int((cx+cellW)*ptMM*scale), int((cy+cellH)*ptMM*scale))
		// The decoder takes an image whose corner is (0, 0).
		one := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
		draw.Draw(one, one.Bounds(), img, r.Min, draw.Src)
		if text, level := decode(t, one); text != st.Code.Text() || level != "Q" {
			t.Errorf("sticker %d decodes to %q at %s; want %q at Q", i, text, level, st.Code.Text())
		}
	}
}

// A thirteenth sticker starts a second page; none makes one empty page.
func TestSheet_PDFPages(t *testing.T) {
	for _, tc := range []struct{ n, pages int }{{13, 2}, {0, 1}, {24, 2}} {
		var b bytes.Buffer
		if err := testSheet(t, tc.n).pdf(&b, loadCJK(t), pdfHooks{}, true); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(b.String(), "/Type /Page\n"); got != tc.pages {
			t.Errorf("%d stickers: %d pages; want %d", tc.n, got, tc.pages)
		}
	}
}

// A name too long for a sticker is cut with an ellipsis, not run over
// the next one.
func TestSheet_PDFLongName(t *testing.T) {
	sh := testSheet(t, 1)
	sh.Stickers[0].Name = strings.Repeat("国际名品折扣购物中心 ", 10)
	var got []string
	hooks := pdfHooks{text: func(_ int, x, _, w float64, s string) {
		if x < margin+textInset-0.01 || x+w > margin+cellW-textInset+0.01 {
			t.Errorf("text %q spans %.1f..%.1f mm; want it inside the sticker", s, x, x+w)
		}
		got = append(got, s)
	}}
	if err := sh.pdf(&bytes.Buffer{}, loadCJK(t), hooks, true); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got[2], "…") || !strings.HasPrefix(got[2], "国际名品") {
		t.Errorf("long name drawn as %q; want it cut with an ellipsis", got[2])
	}
}

var (
	svgGroup = regexp.MustCompile(`<g data-tenant="([^"]*)">`)
	svgCode  = regexp.MustCompile(`<path fill="#000" shape-rendering="crispEdges" transform="translate\(([\d.]+) ([\d.]+)\) scale\(([\d.]+)\)" d="([^"]*)"/>`)
)

// TestSheet_SVG reads each sticker's code back from the one SVG: its
// modules are its tenant's code, placed inside its sticker, and drawn
// they decode to the exact link; pages run one under another.
func TestSheet_SVG(t *testing.T) {
	sh := testSheet(t, Cols*Rows+1)
	sh.Stickers[0].Name = `Tom & "Jerry" <b>`
	var b bytes.Buffer
	if err := sh.SVG(&b); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	if !strings.Contains(svg, `height="594mm"`) {
		t.Errorf("13 stickers: want two pages, 594 mm")
	}
	if !strings.Contains(svg, ">Tom &amp; &quot;Jerry&quot; &lt;b&gt;</text>") {
		t.Errorf("the name is not escaped")
	}
	groups, codes := svgGroup.FindAllStringSubmatch(svg, -1), svgCode.FindAllStringSubmatch(svg, -1)
	if len(groups) != len(sh.Stickers) || len(codes) != len(sh.Stickers) {
		t.Fatalf("%d stickers, %d codes in the SVG; want %d", len(groups), len(codes), len(sh.Stickers))
	}
	for i, st := range sh.Stickers {
		if groups[i][1] != st.Tenant {
			t.Errorf("sticker %d is %s; want %s", i, groups[i][1], st.Tenant)
		}
		page, cx, cy := cell(i)
		cy += float64(page) * pageH
		x, _ := strconv.ParseFloat(codes[i][1], 64)
		y, _ := strconv.ParseFloat(codes[i][2], 64)
		m, _ := strconv.ParseFloat(codes[i][3], 64)
		n := st.Code.Size() + 2*QuietZone
		if x < cx || y < cy || x+float64(n)*m > cx+cellW+0.001 || y+float64(n)*m > cy+cellH {
			t.Errorf("sticker %d's code at (%.1f, %.1f), %.1f mm: outside its sticker at (%.1f, %.1f)", i, x, y, float64(n)*m, cx, cy)
		}
		mods := parsePath(t, codes[i][4], n)
		if err := mods.equal(st.Code); err != nil {
			t.Errorf("sticker %d: %v", i, err)
		}
		if text, _ := decode(t, mods.image(4)); text != st.Code.Text() {
			t.Errorf("sticker %d decodes to %q; want %q", i, text, st.Code.Text())
		}
	}
}
