package report

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/i18n"
	"mallgrid/store"
)

//go:embed assets/statement.html.tmpl assets/statement.css
var statementAssets embed.FS

// statementCSS is the statement's style sheet, inlined in the page so that
// a statement saved or mailed as one file prints the same.
var statementCSS = mustAsset("assets/statement.css")

// StatementCSP is the Content-Security-Policy a statement page is served
// with: nothing but its own inline style sheet (by its hash) and no
// script — the charts are drawn as SVG in the page.
var StatementCSP = func() string {
	sum := sha256.Sum256(statementCSS)
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}()

func mustAsset(name string) []byte {
	b, err := statementAssets.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: cannot fail at run time
	}
	return b
}

// StatementRenderer draws statements as HTML and PDF in the site's zone.
// Make it with NewStatementRenderer; it is safe for concurrent use.
type StatementRenderer struct {
	loc    *time.Location
	html   map[i18n.Lang]*template.Template
	glyphs *glyphSet // the characters the PDF's CJK font draws
}

// NewStatementRenderer parses the statement's template for every
// language; loc is the site's zone (nil: UTC).
func NewStatementRenderer(loc *time.Location) (*StatementRenderer, error) {
	if loc == nil {
		loc = time.UTC
	}
	glyphs, err := fontGlyphs(cjkFont)
	if err != nil {
		return nil, err
	}
	r := &StatementRenderer{loc: loc, html: map[i18n.Lang]*template.Template{}, glyphs: glyphs}
	for _, lang := range i18n.Langs() {
		l := i18n.New(lang, loc)
		funcs := l.Funcs()
		funcs["join"] = func(s []string) string { return strings.Join(s, ", ") }
		funcs["windowName"] = func(w string) string { return windowName(l, w) }
		funcs["details"] = func(line StatementLine) []string { return lineDetails(l, line) }
		funcs["late"] = func(line StatementLine) string { return lateNote(l, line) }
		t, err := template.New("statement.html.tmpl").Funcs(funcs).ParseFS(statementAssets, "assets/statement.html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("report: statement template: %w", err)
		}
		r.html[lang] = t
	}
	return r, nil
}

// Issue is a statement with when it was made: Issued says it was stored
// as issued, else it is a preview of figures that may still change.
type Issue struct {
	Statement Statement
	Generated time.Time
	Issued    bool
}

// statementPage is what the template reads.
type statementView struct {
	S                       Statement
	Lang                    i18n.Lang
	CSS                     template.CSS
	Generated               time.Time
	Issued                  bool
	FromText, ToText        string
	Movement                billing.Money
	Zone                    string
	DayColumns              [][]StatementDay
	DaysChart, WindowsChart template.HTML
}

// HTML writes the statement as a page for the browser and for print (A4).
func (r *StatementRenderer) HTML(w io.Writer, is Issue, lang i18n.Lang) error {
	t, ok := r.html[lang]
	if !ok {
		t, lang = r.html[i18n.En], i18n.En
	}
	l := i18n.New(lang, r.loc)
	s := is.Statement
	half := (len(s.Days) + 1) / 2
	v := statementView{S: s, Lang: lang, CSS: template.CSS(statementCSS), Generated: is.Generated, Issued: is.Issued,
		FromText: l.Date(s.From), ToText: l.Date(s.To.AddDate(0, 0, -1)), Movement: s.Movement(), Zone: l.Zone(s.From),
		DayColumns:   [][]StatementDay{s.Days[:half], s.Days[half:]},
		DaysChart:    template.HTML(daysChart(l, s)),
		WindowsChart: template.HTML(windowsChart(l, s))}
	var buf bytes.Buffer // a template failing half way writes nothing
	if err := t.Execute(&buf, v); err != nil {
		return fmt.Errorf("report: statement of %s %s: %w", s.Tenant, s.Month, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func windowName(l i18n.Localizer, w string) string {
	if w == "" {
		return l.T("statement.window_none")
	}
	return l.Window(w)
}

// lateNote says a late line's entry is of an earlier month, and when.
func lateNote(l i18n.Localizer, e StatementLine) string {
	return l.T("statement.late_note", "time", l.Time(e.Time))
}

// lateNote is lateNote in lang, for tests.
func (r *StatementRenderer) lateNote(lang i18n.Lang, e StatementLine) string {
	return lateNote(i18n.New(lang, r.loc), e)
}

// lineDetails explains an allocation, an adjustment or a reversal with
// what its entry holds: its note line by line (the allocation's rule and
// basis, a correction's reason), the span and energy it shares, the
// entry it reverses, its reference.
func lineDetails(l i18n.Localizer, e StatementLine) []string {
	var out []string
	if e.Reverses != 0 {
		if e.ReversesKind != "" {
			out = append(out, l.T("statement.reverses_kind", "kind", l.Entry(string(e.ReversesKind)), "id", fmt.Sprint(e.Reverses)))
		} else {
			out = append(out, l.T("statement.reverses", "id", fmt.Sprint(e.Reverses)))
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(e.Note), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if e.Kind == store.Allocation {
		if e.From != nil && e.To != nil {
			out = append(out, l.T("statement.alloc_span", "from", l.Time(*e.From), "to", l.Time(*e.To)))
		}
		if e.Wh != 0 {
			out = append(out, l.T("statement.alloc_energy", "kwh", l.KWh(e.Wh)))
		}
		if e.Meter != "" {
			out = append(out, l.T("statement.alloc_meter", "meter", e.Meter))
		}
		if e.Ref != "" {
			out = append(out, l.T("statement.alloc_ref", "ref", e.Ref))
		}
		if len(out) == 0 {
			out = append(out, l.T("statement.alloc_none"))
		}
	} else if e.Ref != "" {
		out = append(out, l.T("statement.ref")+": "+e.Ref)
	}
	if e.Kind == store.Charge && e.Meter != "" { // a late line's charge
		out = append(out, e.Meter+" · "+l.KWh(e.Wh)+" kWh")
	}
	return out
}

// Chart geometry, in the SVG's own units (its viewBox); the page scales it
// to its width.
const (
	chartW     = 700
	chartH     = 170
	chartLeft  = 46 // room for the axis labels
	chartTop   = 14
	chartBase  = 140 // the bars' baseline
	chartRight = 690
)

// daysChart draws the month's daily energy as bars, server-side, so the
// page needs no script to show or print it.
func daysChart(l i18n.Localizer, s Statement) string {
	var top int64
	for _, d := range s.Days {
		top = max(top, d.Wh)
	}
	if top <= 0 || len(s.Days) == 0 {
		return ""
	}
	var b strings.Builder
	title := template.HTMLEscapeString(l.T("statement.chart_days"))
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, title)
	fmt.Fprintf(&b, `<title>%s</title>`, title)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="1"/>`, chartLeft, chartBase, chartRight, chartBase)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ccc" stroke-width="1"/>`, chartLeft, chartTop, chartRight, chartTop)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="end" fill="#333">%s</text>`, chartLeft-4, chartTop+4, template.HTMLEscapeString(l.KWh(top)))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="end" fill="#333">0</text>`, chartLeft-4, chartBase+4)
	slot := (chartRight - chartLeft) * 100 / len(s.Days) // hundredths of a unit, so 31 days fill the width
	for i, d := range s.Days {
		x := chartLeft*100 + i*slot
		h := int(d.Wh * (chartBase - chartTop) * 100 / top)
		if d.Wh > 0 {
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#2f6fb0"><title>%s: %s kWh</title></rect>`,
				hundredths(x+slot/8), hundredths(chartBase*100-h), hundredths(slot*3/4), hundredths(h),
				d.Date, template.HTMLEscapeString(l.KWh(d.Wh)))
		}
		day := strings.TrimLeft(d.Date[len("2006-01-"):], "0")
		fmt.Fprintf(&b, `<text x="%s" y="%d" font-size="9" text-anchor="middle" fill="#333">%s</text>`, hundredths(x+slot/2), chartBase+13, day)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// windowColors tell the tariff windows apart in print, in grey too.
var windowColors = map[string]string{"sharp": "#8b1a1a", "peak": "#d0602a", "flat": "#6f8fb0", "valley": "#2f6f4f", "": "#888888"}

// windowsChart draws the charges by tariff window as horizontal bars.
func windowsChart(l i18n.Localizer, s Statement) string {
	var top billing.Money
	for _, w := range s.Windows {
		top = max(top, -w.Charge)
	}
	if top <= 0 {
		return ""
	}
	const row, labelW, barW = 22, 110, 440
	h := row*len(s.Windows) + 8
	var b strings.Builder
	title := template.HTMLEscapeString(l.T("statement.chart_windows"))
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, chartW, h, title)
	fmt.Fprintf(&b, `<title>%s</title>`, title)
	for i, w := range s.Windows {
		y := 4 + i*row
		width := 0
		if w.Charge < 0 {
			width = int(int64(-w.Charge) * barW / int64(top))
		}
		color, ok := windowColors[w.Window]
		if !ok {
			color = "#555555"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#111">%s</text>`, labelW-6, y+14, template.HTMLEscapeString(windowName(l, w.Window)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, labelW, y+2, width, row-6, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#111">%s · %s kWh</text>`, labelW+width+6, y+14,
			template.HTMLEscapeString(l.Money(w.Charge)), template.HTMLEscapeString(l.KWh(w.Wh)))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// hundredths writes n/100 with two decimals: SVG coordinates from integer
// arithmetic.
func hundredths(n int) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}
