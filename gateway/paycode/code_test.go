package paycode

import (
	"bytes"
	"image/png"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"mallgrid/gateway/config"
)

const testLink = "https://pay.example.com/mall/riverside-plaza/shop/B1%2F07%20%E8%8C%B6?k=q1&s=a6b94L4sIALvNRFu15H-8g"

// The PNG decodes to the exact link, at level Q, with its quiet zone.
func TestCode_PNG(t *testing.T) {
	c, err := Encode(testLink)
	if err != nil {
		t.Fatal(err)
	}
	if (c.Size()-17)%4 != 0 || c.Size() < 21 {
		t.Fatalf("Size %d; want 17 + 4·version", c.Size())
	}
	var b bytes.Buffer
	if err := c.PNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != (c.Size()+2*QuietZone)*PNGScale {
		t.Errorf("PNG %d pixels wide; want %d", w, (c.Size()+2*QuietZone)*PNGScale)
	}
	text, level := decode(t, img)
	if text != testLink || level != "Q" {
		t.Errorf("PNG decodes to %q at %s; want %q at Q", text, level, testLink)
	}
	// The quiet zone is white on all four sides: a dark pixel there is a
	// code a phone may not find on a busy background. And the code
	// starts right after it on each side (a finder pattern's corner).
	n, qz := img.Bounds().Dx(), QuietZone*PNGScale
	for y := range n {
		for x := range n {
			if x >= qz && x < n-qz && y >= qz && y < n-qz {
				continue
			}
			if r, _, _, _ := img.At(x, y).RGBA(); r != 0xffff {
				t.Fatalf("pixel (%d, %d) of the quiet zone is dark", x, y)
			}
		}
	}
	for _, p := range [][2]int{{qz, qz}, {n - qz - 1, qz}, {qz, n - qz - 1}} {
		if r, _, _, _ := img.At(p[0], p[1]).RGBA(); r != 0 {
			t.Errorf("pixel (%d, %d), a finder pattern's corner just inside the quiet zone, is light", p[0], p[1])
		}
	}
}

// The SVG's path, read back square by square, is the code's matrix, and
// drawn it decodes to the exact link.
func TestCode_SVG(t *testing.T) {
	link := testLink + "&x=<'\"&>"
	c, err := Encode(link)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.SVG(&b); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	n := c.Size() + 2*QuietZone
	if !strings.Contains(svg, `viewBox="0 0 `+strconv.Itoa(n)+" "+strconv.Itoa(n)+`"`) {
		t.Errorf("SVG's viewBox is not %d modules", n)
	}
	if !strings.Contains(svg, "&amp;x=&lt;&#39;&quot;&amp;&gt;") {
		t.Errorf("the title is not escaped: %.300s", svg)
	}
	d := regexp.MustCompile(`<path fill="#000" d="([^"]*)"/>`).FindStringSubmatch(svg)
	if d == nil {
		t.Fatalf("no path in %.300s", svg)
	}
	m := parsePath(t, d[1], n)
	if err := m.equal(c); err != nil {
		t.Errorf("SVG's modules: %v", err)
	}
	if text, _ := decode(t, m.image(6)); text != link {
		t.Errorf("SVG decodes to %q; want %q", text, link)
	}
}

// A link too long for any QR code is an error, not a panic, and the
// error says how long rather than quoting it all (it went whole into the
// sheet's error and the log).
func TestEncode_TooLong(t *testing.T) {
	_, err := Encode("https://pay.example/" + strings.Repeat("x", 5000))
	if err == nil {
		t.Fatal("Encode of 5,000 bytes: want an error")
	}
	if msg := err.Error(); len(msg) > 400 || !strings.Contains(msg, "5020-byte link") {
		t.Errorf("Encode's error is %d bytes: %.300s; want at most 400 (the encoder says 200 of them) naming the length", len(msg), msg)
	}
}

// config.MaxQRLink, the configuration's limit on a link, is the most a
// version-10 code holds at level Q: 57 modules, and one byte more makes
// a larger code.
func TestEncode_MaxQRLink(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{config.MaxQRLink, 57}, {config.MaxQRLink + 1, 61}} {
		c, err := Encode("https://pay.example/" + strings.Repeat("x", tc.n-len("https://pay.example/")))
		if err != nil {
			t.Fatal(err)
		}
		if c.Size() != tc.size {
			t.Errorf("a %d-byte link: %d modules; want %d", tc.n, c.Size(), tc.size)
		}
	}
}
