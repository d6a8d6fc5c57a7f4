package paycode

import (
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/go-pdf/fpdf"

	"mallgrid/gateway/report"
)

// Caption is the line under every code, in both of the mall's languages:
// a sticker is read by whoever stands in front of it.
const Caption = "扫码充值 Scan to top up"

// Sticker is one tenant's sticker.
type Sticker struct {
	Tenant string // the tenant's id, printed small under the name
	Name   string // the tenant's name
	Code   *Code  // the tenant's link
}

// Sheet is the stickers of a mall, laid out on A4 pages of Cols × Rows
// with dashed cutting lines between them.
type Sheet struct {
	Mall     string // printed on top of every sticker
	Stickers []Sticker
}

// The layout, in millimetres: a sticker is a cell of the page's grid.
const (
	Cols      = 3
	Rows      = 4
	pageW     = 210.0
	pageH     = 297.0
	margin    = 10.0 // what a printer leaves white anyway
	cellW     = (pageW - 2*margin) / Cols
	cellH     = (pageH - 2*margin) / Rows
	codeSize  = 44.0 // the code with its quiet zone
	codeTop   = 9.5
	mallTop   = 3.5
	capTop    = codeTop + codeSize + 1
	nameTop   = capTop + 5.5
	idTop     = nameTop + 5
	textInset = 3.0 // no text closer than this to the cutting line
)

// Pages is how many pages the sheet takes (at least one).
func (s Sheet) Pages() int { return max(1, (len(s.Stickers)+Cols*Rows-1)/(Cols*Rows)) }

// cell is the top left corner of sticker i, and its page (from 0).
func cell(i int) (page int, x, y float64) {
	page, i = i/(Cols*Rows), i%(Cols*Rows)
	return page, margin + float64(i%Cols)*cellW, margin + float64(i/Cols)*cellH
}

// pdfHooks let tests see what was drawn where.
type pdfHooks struct {
	text func(page int, x, y, w float64, s string)
}

// PDF writes the sheet as an A4 PDF; cjk sets the Chinese (the caption,
// Chinese names): the statements' font, embedded as far as it is used.
func (s Sheet) PDF(w io.Writer, cjk *report.CJK) error { return s.pdf(w, cjk, pdfHooks{}, false) }

func (s Sheet) pdf(w io.Writer, cjk *report.CJK, hooks pdfHooks, plain bool) error {
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCompression(!plain)
	f.SetMargins(0, 0, 0)
	f.SetAutoPageBreak(false, 0)
	f.AddUTF8FontFromBytes("droid", "", cjk.Font())
	f.SetTitle(s.Mall+" — "+Caption, true)
	f.SetCreator("mallgrid", false)
	d := &sheetPDF{f: f, cjk: cjk, latin: f.UnicodeTranslatorFromDescriptor(""), hooks: hooks}
	for i, st := range s.Stickers {
		page, x, y := cell(i)
		if i%(Cols*Rows) == 0 {
			f.AddPage()
		}
		d.page = page
		d.sticker(s.Mall, st, x, y)
	}
	if len(s.Stickers) == 0 {
		f.AddPage()
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("paycode: PDF sheet: %w", err)
	}
	if err := f.Output(w); err != nil {
		return fmt.Errorf("paycode: PDF sheet: %w", err)
	}
	return nil
}

type sheetPDF struct {
	f     *fpdf.Fpdf
	cjk   *report.CJK
	latin func(string) string
	hooks pdfHooks
	page  int
}

func (d *sheetPDF) sticker(mall string, st Sticker, x, y float64) {
	f := d.f
	f.SetDrawColor(170, 170, 170)
	f.SetLineWidth(0.2)
	f.SetDashPattern([]float64{2, 1.5}, 0)
	f.Rect(x, y, cellW, cellH, "D")
	f.SetDashPattern(nil, 0)

	f.SetTextColor(0, 0, 0)
	d.text(x, y+mallTop, 9, 5, mall)
	// The code: each run of dark modules a filled rectangle, on white.
	n := st.Code.Size() + 2*QuietZone
	m := codeSize / float64(n)
	cx := x + (cellW-codeSize)/2
	f.SetFillColor(0, 0, 0)
	for my := range st.Code.Size() {
		for mx := 0; mx < st.Code.Size(); {
			if !st.Code.Dark(mx, my) {
				mx++
				continue
			}
			run := 1
			for st.Code.Dark(mx+run, my) {
				run++
			}
			f.Rect(cx+float64(mx+QuietZone)*m, y+codeTop+float64(my+QuietZone)*m, float64(run)*m, m, "F")
			mx += run
		}
	}
	d.text(x, y+capTop, 10, 5, Caption)
	d.text(x, y+nameTop, 11, 5, st.Name)
	f.SetTextColor(90, 90, 90)
	d.text(x, y+idTop, 8, 3.5, st.Tenant)
}

// text centres s in the cell at (x, y), cut with an ellipsis to fit.
func (d *sheetPDF) text(x, y, size, h float64, s string) {
	s = fit(s, cellW-2*textInset, func(t string) float64 { return d.width(t, size) })
	tw := d.width(s, size)
	start := x + (cellW-tw)/2
	if d.hooks.text != nil {
		d.hooks.text(d.page, start, y, tw, s)
	}
	d.f.SetXY(start, y)
	for _, r := range d.cjk.Runs(s) {
		t := d.font(r, size)
		d.f.CellFormat(d.f.GetStringWidth(t), h, t, "", 0, "L", false, 0, "")
	}
}

// font selects r's font and returns its text as that font takes it.
func (d *sheetPDF) font(r report.TextRun, size float64) string {
	if r.CJK {
		d.f.SetFont("droid", "", size)
		return r.Text
	}
	d.f.SetFont("Helvetica", "", size)
	return d.latin(r.Text)
}

func (d *sheetPDF) width(s string, size float64) float64 {
	var w float64
	for _, r := range d.cjk.Runs(s) {
		t := d.font(r, size)
		w += d.f.GetStringWidth(t)
	}
	return w
}

// fit cuts s, ending it with "…", until width says it is no wider than w.
func fit(s string, w float64, width func(string) float64) string {
	if width(s) <= w {
		return s
	}
	rs := []rune(s)
	for len(rs) > 0 && width(string(rs)+"…") > w {
		rs = rs[:len(rs)-1]
	}
	return strings.TrimSpace(string(rs)) + "…"
}

// SVG writes the sheet as one SVG: its pages one under another, in
// millimetres, each sticker a group (data-tenant) with its cutting line,
// texts and code.
func (s Sheet) SVG(w io.Writer) error {
	var b strings.Builder
	h := float64(s.Pages()) * pageH
	f := svgNum
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%smm" height="%smm" viewBox="0 0 %s %s" font-family="'Noto Sans CJK SC','Droid Sans Fallback','Microsoft YaHei',sans-serif">`+"\n",
		f(pageW), f(h), f(pageW), f(h))
	b.WriteString("<title>" + xmlText(s.Mall+" — "+Caption) + "</title>\n")
	fmt.Fprintf(&b, `<rect width="%s" height="%s" fill="#fff"/>`+"\n", f(pageW), f(h))
	for i, st := range s.Stickers {
		page, x, y := cell(i)
		y += float64(page) * pageH
		n := st.Code.Size() + 2*QuietZone
		m := codeSize / float64(n)
		cx := x + (cellW-codeSize)/2
		text := func(top, size float64, fill, t string) {
			// A font's size in mm (1 pt = 0.3528 mm); the baseline sits
			// where the PDF's does. The viewer's font is not known: a
			// tenth of the width is kept spare.
			mm := size * 0.3528
			t = fit(t, 0.9*(cellW-2*textInset), func(s string) float64 { return estimate(s) * mm })
			fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="%s" text-anchor="middle" fill="%s">%s</text>`+"\n",
				f(x+cellW/2), f(round2(top+mm*0.95)), f(round2(mm)), fill, xmlText(t))
		}
		fmt.Fprintf(&b, `<g data-tenant="%s">`+"\n", xmlText(st.Tenant))
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#aaa" stroke-width="0.2" stroke-dasharray="2 1.5"/>`+"\n",
			f(round2(x)), f(round2(y)), f(round2(cellW)), f(round2(cellH)))
		text(y+mallTop, 9, "#000", s.Mall)
		// In modules, scaled: a path in whole numbers is a fifth as long.
		fmt.Fprintf(&b, `<path fill="#000" shape-rendering="crispEdges" transform="translate(%s %s) scale(%s)" d="%s"/>`+"\n",
			f(cx), f(y+codeTop), f(m), st.Code.svgPath(QuietZone, QuietZone, 1))
		text(y+capTop, 10, "#000", Caption)
		text(y+nameTop, 11, "#000", st.Name)
		text(y+idTop, 8, "#5a5a5a", st.Tenant)
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("paycode: write SVG sheet: %w", err)
	}
	return nil
}

// estimate is s's width in ems without the font at hand (the SVG is drawn
// by the viewer's): a Chinese character one, a Latin one about a half.
func estimate(s string) float64 {
	var w float64
	for _, r := range s {
		if r > 0x2E7F || unicode.Is(unicode.Han, r) {
			w++
		} else {
			w += 0.56
		}
	}
	return w
}

func round2(v float64) float64 {
	return float64(int64(v*100+0.5)) / 100
}
