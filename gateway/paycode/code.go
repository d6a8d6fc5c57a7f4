package paycode

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// QuietZone is the white border around a code, in modules: the four the
// QR standard asks for, without which a phone may not find the code on a
// busy meter box.
const QuietZone = 4

// Code is one QR code's modules. Make it with Encode.
type Code struct {
	text string
	dark [][]bool // [y][x], without the quiet zone
}

// Encode makes the QR code of text with error correction Q (a quarter of
// the code may be scuffed or dirty and it still reads: stickers live on
// meter boxes and counters).
func Encode(text string) (*Code, error) {
	q, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionQuart),
		qrcode.WithEncodingMode(qrcode.EncModeByte))
	if err != nil {
		return nil, fmt.Errorf("paycode: encode %s: %w", linkName(text), err)
	}
	var m matrixCopy
	if err := q.Save(&m); err != nil {
		return nil, fmt.Errorf("paycode: encode %s: %w", linkName(text), err)
	}
	if len(m.dark) == 0 || len(m.dark) != len(m.dark[0]) {
		return nil, fmt.Errorf("paycode: encode %s: the encoder gave no square matrix", linkName(text))
	}
	return &Code{text: text, dark: m.dark}, nil
}

// linkName names a link in an error by its length and its first 60
// bytes: a link too long to encode may be thousands of bytes, and the
// error goes into a web response and the log.
func linkName(text string) string {
	if len(text) <= 60 {
		return fmt.Sprintf("%q", text)
	}
	cut := 60
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return fmt.Sprintf("a %d-byte link (%q…)", len(text), text[:cut])
}

// matrixCopy is the encoder's Writer that keeps the modules.
type matrixCopy struct{ dark [][]bool }

func (m *matrixCopy) Write(mat qrcode.Matrix) error { m.dark = mat.Bitmap(); return nil }
func (m *matrixCopy) Close() error                  { return nil }

// Text is what the code holds.
func (c *Code) Text() string { return c.text }

// Size is the code's width in modules, without the quiet zone.
func (c *Code) Size() int { return len(c.dark) }

// Dark reports whether module (x, y) is dark; outside the code (the quiet
// zone) it is not.
func (c *Code) Dark(x, y int) bool {
	return y >= 0 && y < len(c.dark) && x >= 0 && x < len(c.dark) && c.dark[y][x]
}

// Image is the code with its quiet zone, scale pixels a module.
func (c *Code) Image(scale int) *image.Paletted {
	n := (c.Size() + 2*QuietZone) * scale
	img := image.NewPaletted(image.Rect(0, 0, n, n), color.Palette{color.White, color.Black})
	for y := range c.Size() {
		for x := range c.Size() {
			if !c.dark[y][x] {
				continue
			}
			x0, y0 := (x+QuietZone)*scale, (y+QuietZone)*scale
			for py := y0; py < y0+scale; py++ {
				row := img.Pix[py*img.Stride:]
				for px := x0; px < x0+scale; px++ {
					row[px] = 1
				}
			}
		}
	}
	return img
}

// PNGScale is the pixels a module of a PNG code: about 500 pixels across
// for a link, sharp when printed 4 cm wide at 300 dpi.
const PNGScale = 8

// PNG writes the code as a two-colour PNG, PNGScale pixels a module.
func (c *Code) PNG(w io.Writer) error {
	if err := png.Encode(w, c.Image(PNGScale)); err != nil {
		return fmt.Errorf("paycode: write PNG: %w", err)
	}
	return nil
}

// SVG writes the code as a standalone SVG, one unit a module, quiet zone
// included; it scales to any size without blurring.
func (c *Code) SVG(w io.Writer) error {
	n := c.Size() + 2*QuietZone
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`, n, n, n*PNGScale, n*PNGScale)
	b.WriteString("\n<title>" + xmlText(c.text) + "</title>\n")
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", n, n)
	b.WriteString(`<path fill="#000" d="` + c.svgPath(QuietZone, QuietZone, 1) + `"/>` + "\n</svg>\n")
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("paycode: write SVG: %w", err)
	}
	return nil
}

// svgNum writes a length in SVG user units: the shortest exact decimal.
func svgNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// svgPath is the dark modules as one path, a rectangle per horizontal
// run of them: the module (x, y) is at (x0 + x·m, y0 + y·m), m wide.
func (c *Code) svgPath(x0, y0, m float64) string {
	var b strings.Builder
	f := svgNum
	for y := range c.Size() {
		for x := 0; x < c.Size(); {
			if !c.dark[y][x] {
				x++
				continue
			}
			run := 1
			for x+run < c.Size() && c.dark[y][x+run] {
				run++
			}
			b.WriteString("M" + f(x0+float64(x)*m) + " " + f(y0+float64(y)*m) + "h" + f(float64(run)*m) + "v" + f(m) + "h" + f(-float64(run)*m) + "z")
			x += run
		}
	}
	return b.String()
}

// xmlText escapes s for an SVG's text and attributes; a character XML
// does not allow (a control character, U+FFFE) is a space, so that a
// name with one cannot make the whole sheet unreadable.
func xmlText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0xFFFE || r == 0xFFFF || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}
