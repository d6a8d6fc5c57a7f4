package report

import (
	_ "embed"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/go-pdf/fpdf"

	"mallgrid/gateway/i18n"
)

// cjkFont is Droid Sans Fallback (Apache-2.0, fonts/LICENSE-Apache-2.0.txt;
// Debian's fonts-droid-fallback): the Chinese of a statement. It has no
// Latin letters or digits (a space is its only ASCII glyph), so those are
// set in the PDF's built-in Helvetica, which every reader has and which
// costs the file nothing. fpdf embeds only the glyphs a statement uses.
//
//go:embed fonts/DroidSansFallbackFull.ttf
var cjkFont []byte

const (
	pdfCJK   = "droid"
	pdfLatin = "Helvetica"
	pdfLeft  = 14.0 // mm
	pdfWidth = 210.0 - 2*pdfLeft
	pdfLine  = 5.0 // a table row's height, mm
)

// PDFOptions tune the PDF; the zero value is what the gateway serves.
type PDFOptions struct {
	// NoCompression leaves the page streams readable (tests look for the
	// text in them).
	NoCompression bool
	// onText, when set, is told of each piece of text drawn: its page,
	// box and width (tests check nothing runs past the margins).
	onText func(t drawnText)
}

// drawnText is one piece of text as pdfDoc.text placed it, in mm.
type drawnText struct {
	page       int
	x, y, w, h float64 // x and w: the text's own extent
	footer     bool
	text       string
}

// pdfMaxCellLines caps a table cell's lines: rows are never split, and a
// row taller than a page would run over the footer. 50 lines of 4 mm fit
// under a page's top margin and a table header with room to spare.
const pdfMaxCellLines = 50

// PDF writes the statement as an A4 PDF with the Chinese font embedded.
func (r *StatementRenderer) PDF(w io.Writer, is Issue, lang i18n.Lang, o PDFOptions) error {
	if _, ok := r.html[lang]; !ok {
		lang = i18n.En
	}
	p := &pdfDoc{f: fpdf.New("P", "mm", "A4", ""), l: i18n.New(lang, r.loc), glyphs: r.glyphs, onText: o.onText}
	p.f.SetCompression(!o.NoCompression)
	p.f.SetMargins(pdfLeft, 14, pdfLeft)
	p.f.SetAutoPageBreak(false, 0) // rows are placed by pdfDoc.room, which repeats a table's header
	p.f.AddUTF8FontFromBytes(pdfCJK, "", cjkFont)
	p.latin = p.f.UnicodeTranslatorFromDescriptor("") // cp1252: ¥, ², · and the Latin-1 letters
	s := is.Statement
	p.f.SetTitle(s.Name+" "+s.Month, true)
	p.f.SetCreator("mallgrid", false)
	p.f.SetFooterFunc(func() {
		p.footer = true
		p.f.SetY(-12)
		p.text(8, pdfWidth, 4, s.Site+" · "+s.Tenant+" · "+s.Month+" · "+p.l.T("statement.page", "n", p.f.PageNo()), "C")
		p.footer = false
	})
	p.f.AddPage()
	p.statement(is)
	if err := p.f.Error(); err != nil {
		return fmt.Errorf("report: PDF statement of %s %s: %w", s.Tenant, s.Month, err)
	}
	return p.f.Output(w)
}

// pdfDoc draws one statement.
type pdfDoc struct {
	f      *fpdf.Fpdf
	l      i18n.Localizer
	latin  func(string) string
	glyphs *glyphSet // what cjkFont draws
	onText func(drawnText)
	footer bool // drawing the footer
}

// run is a stretch of text in one font.
type run struct {
	cjk  bool
	text string
}

// runs splits s where it changes between what Helvetica sets (Latin-1
// and cp1252's dashes, quotes and euro) and what the CJK font has. A
// character neither has — an emoji beyond the Basic Multilingual Plane
// (fpdf indexes glyphs by 16-bit codes and fails on anything above), a
// letter of another script — is set as "?", a control character as a space.
func (p *pdfDoc) runs(s string) []run { return p.glyphs.runs(s) }

func (g *glyphSet) runs(s string) []run {
	var out []run
	for _, c := range s {
		var cjk bool
		switch {
		case unicode.IsControl(c):
			c = ' '
		case c < 0x100 || cp1252Extra[c]:
		case g.has(c):
			cjk = true
		default:
			c = '?'
		}
		if n := len(out); n > 0 && out[n-1].cjk == cjk {
			out[n-1].text += string(c)
			continue
		}
		out = append(out, run{cjk: cjk, text: string(c)})
	}
	return out
}

func (p *pdfDoc) font(cjk bool, size float64) {
	if cjk {
		p.f.SetFont(pdfCJK, "", size)
	} else {
		p.f.SetFont(pdfLatin, "", size)
	}
}

// width is the width of s at size, each run in its font.
func (p *pdfDoc) width(s string, size float64) float64 {
	var w float64
	for _, r := range p.runs(s) {
		p.font(r.cjk, size)
		w += p.f.GetStringWidth(p.out(r))
	}
	return w
}

func (p *pdfDoc) out(r run) string {
	if r.cjk {
		return r.text
	}
	return p.latin(r.text)
}

// text writes s at the current position in a box w wide and h high,
// aligned L, C or R, and moves right past the box.
func (p *pdfDoc) text(size, w, h float64, s, align string) {
	x, y := p.f.GetXY()
	tw := p.width(s, size)
	start := x + 1
	switch align {
	case "R":
		start = x + w - 1 - tw
	case "C":
		start = x + (w-tw)/2
	}
	if p.onText != nil {
		p.onText(drawnText{page: p.f.PageNo(), x: start, y: y, w: tw, h: h, footer: p.footer, text: s})
	}
	p.f.SetXY(start, y)
	for _, r := range p.runs(s) {
		p.font(r.cjk, size)
		t := p.out(r)
		p.f.CellFormat(p.f.GetStringWidth(t), h, t, "", 0, "L", false, 0, "")
	}
	p.f.SetXY(x+w, y)
}

// wrap cuts s into lines no wider than w at size, at a space where a
// Latin line allows, anywhere in Chinese.
func (p *pdfDoc) wrap(s string, size, w float64) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := []rune{}
		for _, c := range para {
			next := append(line, c)
			if len(line) > 0 && p.width(string(next), size) > w-2 {
				cut := len(line)
				if c != ' ' {
					if i := lastSpace(line); i > 0 {
						cut = i
					}
				}
				lines = append(lines, strings.TrimSpace(string(line[:cut])))
				line = append([]rune{}, line[cut:]...)
				next = append(line, c)
			}
			line = next
		}
		lines = append(lines, strings.TrimSpace(string(line)))
	}
	return lines
}

func lastSpace(line []rune) int {
	for i := len(line) - 1; i > 0; i-- {
		if line[i] == ' ' {
			return i
		}
	}
	return 0
}

// column is a table's column: its width (mm) and alignment.
type column struct {
	w     float64
	align string
}

// table draws a header and rows; a cell may wrap onto several lines, and a
// row that would not fit on the page starts a new one with the header
// again. bold rows (totals) get a rule above.
func (p *pdfDoc) table(cols []column, head []string, rows [][]string, totals int) {
	p.row(cols, head, true, false)
	for i, r := range rows {
		if p.room(p.rowHeight(cols, r)) {
			p.row(cols, head, true, false)
		}
		p.row(cols, r, false, i >= len(rows)-totals)
	}
	p.f.Ln(2)
}

func (p *pdfDoc) rowHeight(cols []column, cells []string) float64 {
	n := 1
	for i, c := range cells {
		n = max(n, len(p.cellLines(c, cols[i].w)))
	}
	return float64(n)*4 + 1
}

// cellLines is a table cell's text wrapped to its column, at most
// pdfMaxCellLines of it: the last line kept ends in an ellipsis.
func (p *pdfDoc) cellLines(s string, w float64) []string {
	lines := p.wrap(s, 9, w)
	if len(lines) <= pdfMaxCellLines {
		return lines
	}
	lines = lines[:pdfMaxCellLines]
	last := []rune(lines[len(lines)-1])
	for len(last) > 0 && p.width(string(last)+"…", 9) > w-2 {
		last = last[:len(last)-1]
	}
	lines[len(lines)-1] = string(last) + "…"
	return lines
}

// room starts a new page when h more millimetres do not fit on this one,
// and says whether it did.
func (p *pdfDoc) room(h float64) bool {
	_, pageH := p.f.GetPageSize()
	if p.f.GetY()+h <= pageH-18 {
		return false
	}
	p.f.AddPage()
	return true
}

func (p *pdfDoc) row(cols []column, cells []string, head, total bool) {
	h := p.rowHeight(cols, cells)
	x, y := p.f.GetXY()
	if head {
		p.f.SetFillColor(235, 235, 235)
		p.f.Rect(pdfLeft, y, pdfWidth, h, "F")
	}
	if total {
		p.f.SetLineWidth(0.4)
		p.f.Line(pdfLeft, y, pdfLeft+pdfWidth, y)
	}
	cx := x
	for i, c := range cells {
		for j, line := range p.cellLines(c, cols[i].w) {
			p.f.SetXY(cx, y+0.5+float64(j)*4)
			p.text(9, cols[i].w, 4, line, cols[i].align)
		}
		cx += cols[i].w
	}
	p.f.SetLineWidth(0.1)
	p.f.SetDrawColor(200, 200, 200)
	p.f.Line(pdfLeft, y+h, pdfLeft+pdfWidth, y+h)
	p.f.SetDrawColor(0, 0, 0)
	p.f.SetXY(x, y+h)
}

func (p *pdfDoc) heading(s string) {
	p.room(20)
	p.f.Ln(3)
	p.f.SetX(pdfLeft)
	p.text(12, pdfWidth, 6, s, "L")
	p.f.Ln(6)
	p.f.SetLineWidth(0.4)
	p.f.Line(pdfLeft, p.f.GetY(), pdfLeft+pdfWidth, p.f.GetY())
	p.f.SetLineWidth(0.2)
	p.f.Ln(1.5)
}

// line writes s across the page, wrapped: a tenant's name or a note of
// any length, each line on the page it fits on.
func (p *pdfDoc) line(size float64, s string) {
	for _, l := range p.wrap(s, size, pdfWidth) {
		p.room(size * 0.5)
		p.f.SetX(pdfLeft)
		p.text(size, pdfWidth, size*0.5, l, "L")
		p.f.Ln(size * 0.5)
	}
}

func (p *pdfDoc) statement(is Issue) {
	l, s := p.l, is.Statement
	p.f.SetX(pdfLeft)
	p.text(16, pdfWidth, 9, l.T("statement.heading", "month", s.Month), "L")
	p.f.Ln(10)
	p.line(10, l.T("statement.tenant")+": "+s.Name+" ("+s.Tenant+")")
	p.line(10, l.T("statement.site")+": "+s.Site)
	p.line(10, l.T("statement.month")+": "+l.T("statement.period", "from", l.Date(s.From), "to", l.Date(s.To.AddDate(0, 0, -1))))
	if len(s.Meters) > 0 {
		p.line(10, l.T("statement.meters")+": "+strings.Join(s.Meters, ", "))
	}
	if s.AreaM2 != "" {
		p.line(10, l.T("statement.area")+": "+s.AreaM2+" m²")
	}
	if is.Issued {
		p.line(9, l.T("statement.generated", "time", is.Generated))
	} else {
		p.f.SetTextColor(170, 0, 0)
		p.line(9, l.T("statement.preview", "time", is.Generated))
		p.f.SetTextColor(0, 0, 0)
	}

	p.heading(l.T("statement.summary"))
	two := []column{{pdfWidth - 50, "L"}, {50, "R"}}
	t := s.Totals
	for _, r := range [][2]string{{"statement.opening", l.Money(s.Opening)}, {"statement.topups", l.Money(t.TopUps)},
		{"statement.charges", l.Money(t.Charges)}, {"statement.allocations", l.Money(t.Allocations)},
		{"statement.corrections", l.Money(t.Corrections)}, {"statement.late", l.Money(t.Late)}} {
		if r[0] == "statement.late" && len(s.Late) == 0 {
			continue
		}
		p.row(two, []string{l.T(r[0]), r[1]}, false, false)
	}
	p.row(two, []string{l.T("statement.closing"), l.Money(s.Closing)}, false, true)
	p.f.Ln(1)
	p.line(8.5, l.T("statement.check", "opening", s.Opening, "movement", s.Movement(), "closing", s.Closing))

	p.heading(l.T("statement.by_day"))
	if t.Wh > 0 {
		p.line(9, l.T("statement.energy_total", "kwh", l.KWh(t.Wh)))
		p.daysChart(s)
	} else {
		p.line(9, l.T("statement.no_energy"))
	}
	p.days(s)

	p.heading(l.T("statement.by_window"))
	if len(s.Windows) == 0 {
		p.line(9, l.T("statement.none"))
	} else {
		p.windowsChart(s)
		cols := []column{{pdfWidth - 90, "L"}, {45, "R"}, {45, "R"}}
		var rows [][]string
		for _, w := range s.Windows {
			rows = append(rows, []string{windowName(l, w.Window), l.KWh(w.Wh), l.Money(w.Charge)})
		}
		rows = append(rows, []string{l.T("statement.total"), l.KWh(t.ChargedWh), l.Money(t.Charges)})
		p.table(cols, []string{l.T("statement.window"), l.T("statement.kwh"), l.T("statement.charge")}, rows, 1)
	}

	p.heading(l.T("statement.topups"))
	if len(s.TopUps) == 0 {
		p.line(9, l.T("statement.none"))
	} else {
		cols := []column{{32, "L"}, {22, "L"}, {22, "L"}, {34, "L"}, {pdfWidth - 140, "L"}, {30, "R"}}
		var rows [][]string
		for _, e := range s.TopUps {
			receipt, channel := e.ReceiptNo, ""
			if e.Channel != "" {
				channel = l.Channel(e.Channel)
			}
			rows = append(rows, []string{l.Time(e.Time), receipt, channel, e.Ref, e.Note, l.Money(e.Amount)})
		}
		rows = append(rows, []string{l.T("statement.total"), "", "", "", "", l.Money(t.TopUps)})
		p.table(cols, []string{l.T("statement.time"), l.T("statement.receipt"), l.T("statement.channel"), l.T("statement.ref"),
			l.T("statement.note"), l.T("statement.amount")}, rows, 1)
	}

	p.heading(l.T("statement.allocations"))
	if len(s.Allocations) == 0 {
		p.line(9, l.T("statement.none"))
	} else {
		cols := []column{{32, "L"}, {pdfWidth - 62, "L"}, {30, "R"}}
		var rows [][]string
		for _, e := range s.Allocations {
			rows = append(rows, []string{l.Time(e.Time), strings.Join(lineDetails(l, e), "\n"), l.Money(e.Amount)})
		}
		rows = append(rows, []string{l.T("statement.total"), "", l.Money(t.Allocations)})
		p.table(cols, []string{l.T("statement.time"), l.T("statement.detail"), l.T("statement.amount")}, rows, 1)
	}

	p.heading(l.T("statement.corrections"))
	if len(s.Corrections) == 0 {
		p.line(9, l.T("statement.none"))
	} else {
		cols := []column{{32, "L"}, {34, "L"}, {pdfWidth - 96, "L"}, {30, "R"}}
		var rows [][]string
		for _, e := range s.Corrections {
			rows = append(rows, []string{l.Time(e.Time), l.Entry(string(e.Kind)) + " " + fmt.Sprint(e.ID), strings.Join(lineDetails(l, e), "\n"), l.Money(e.Amount)})
		}
		rows = append(rows, []string{l.T("statement.total"), "", "", l.Money(t.Corrections)})
		p.table(cols, []string{l.T("statement.time"), l.T("statement.entry"), l.T("statement.detail"), l.T("statement.amount")}, rows, 1)
	}
	if len(s.Late) > 0 {
		p.heading(l.T("statement.late"))
		cols := []column{{32, "L"}, {34, "L"}, {pdfWidth - 96, "L"}, {30, "R"}}
		var rows [][]string
		for _, e := range s.Late {
			rows = append(rows, []string{l.Time(e.Time), l.Entry(string(e.Kind)) + " " + fmt.Sprint(e.ID),
				strings.Join(append([]string{lateNote(l, e)}, lineDetails(l, e)...), "\n"), l.Money(e.Amount)})
		}
		rows = append(rows, []string{l.T("statement.total"), "", "", l.Money(t.Late)})
		p.table(cols, []string{l.T("statement.time"), l.T("statement.entry"), l.T("statement.detail"), l.T("statement.amount")}, rows, 1)
	}
	p.f.Ln(2)
	p.line(8, l.T("statement.rounding"))
	p.line(8, l.T("statement.zone", "zone", l.Zone(s.From)))
}

// days lists the days in two columns side by side.
func (p *pdfDoc) days(s Statement) {
	l := p.l
	half := (len(s.Days) + 1) / 2
	p.room(float64(half+1)*4.5 + 4)
	colW := (pdfWidth - 6) / 2
	cols := []column{{colW - 56, "L"}, {28, "R"}, {28, "R"}}
	head := []string{l.T("statement.date"), l.T("statement.kwh"), l.T("statement.charge")}
	top := p.f.GetY()
	bottom := top
	for c, part := range [][]StatementDay{s.Days[:half], s.Days[half:]} {
		x := pdfLeft + float64(c)*(colW+6)
		y := top
		cells := func(cells []string, head bool) {
			if head {
				p.f.SetFillColor(235, 235, 235)
				p.f.Rect(x, y, colW, 4.5, "F")
			}
			cx := x
			for i, v := range cells {
				p.f.SetXY(cx, y+0.25)
				p.text(8.5, cols[i].w, 4, v, cols[i].align)
				cx += cols[i].w
			}
			y += 4.5
		}
		cells(head, true)
		for _, d := range part {
			cells([]string{d.Date, l.KWh(d.Wh), l.Money(d.Charge)}, false)
		}
		bottom = max(bottom, y)
	}
	p.f.SetXY(pdfLeft, bottom+2)
}

// daysChart draws the daily energy as bars.
func (p *pdfDoc) daysChart(s Statement) {
	var top int64
	for _, d := range s.Days {
		top = max(top, d.Wh)
	}
	if top <= 0 {
		return
	}
	const h = 38.0
	p.room(h + 10)
	y0 := p.f.GetY() + 2
	base := y0 + h
	left := pdfLeft + 16
	slot := (pdfWidth - 16) / float64(len(s.Days))
	p.f.SetDrawColor(60, 60, 60)
	p.f.Line(left, base, pdfLeft+pdfWidth, base)
	p.f.SetDrawColor(0, 0, 0)
	p.f.SetXY(pdfLeft, y0-2)
	p.text(7, 15, 4, p.l.KWh(top), "R")
	p.f.SetXY(pdfLeft, base-2)
	p.text(7, 15, 4, "0", "R")
	p.f.SetFillColor(47, 111, 176)
	for i, d := range s.Days {
		x := left + float64(i)*slot
		if d.Wh > 0 {
			bh := h * float64(d.Wh) / float64(top) // drawing only: the figures stay integers
			p.f.Rect(x+slot/8, base-bh, slot*3/4, bh, "F")
		}
		p.f.SetXY(x, base+0.5)
		p.text(6, slot, 3, strings.TrimLeft(d.Date[len("2006-01-"):], "0"), "C")
	}
	p.f.SetXY(pdfLeft, base+5)
}

// pdfWindowColors are windowColors as RGB.
var pdfWindowColors = map[string][3]int{"sharp": {139, 26, 26}, "peak": {208, 96, 42}, "flat": {111, 143, 176}, "valley": {47, 111, 79}, "": {136, 136, 136}}

// windowsChart draws the charges by tariff window as horizontal bars.
func (p *pdfDoc) windowsChart(s Statement) {
	var top int64
	for _, w := range s.Windows {
		top = max(top, -int64(w.Charge))
	}
	if top <= 0 {
		return
	}
	const row, label, bar = 6.0, 30.0, 100.0
	p.room(row*float64(len(s.Windows)) + 4)
	y := p.f.GetY() + 1
	for _, w := range s.Windows {
		width := 0.0
		if w.Charge < 0 {
			width = bar * float64(-w.Charge) / float64(top) // drawing only
		}
		c, ok := pdfWindowColors[w.Window]
		if !ok {
			c = [3]int{85, 85, 85}
		}
		p.f.SetXY(pdfLeft, y)
		p.text(9, label, row-1, windowName(p.l, w.Window), "R")
		p.f.SetFillColor(c[0], c[1], c[2])
		p.f.Rect(pdfLeft+label+1, y+0.5, width, row-2, "F")
		p.f.SetXY(pdfLeft+label+2+width, y)
		p.text(8, 60, row-1, p.l.Money(w.Charge)+" · "+p.l.KWh(w.Wh)+" kWh", "L")
		y += row
	}
	p.f.SetXY(pdfLeft, y+2)
}
