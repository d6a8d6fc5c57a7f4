package paycode

import (
	"fmt"
	"image"
	"image/color"
	"regexp"
	"strconv"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// The tests read every format back with ZXing's decoder (gozxing), which
// shares no code with the encoder: what a phone would read.

// decode reads the QR code in img: its text and error correction level.
func decode(t *testing.T, img image.Image) (text, level string) {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Errorf("decode: %v", err)
		return "", ""
	}
	level, _ = res.GetResultMetadata()[gozxing.ResultMetadataType_ERROR_CORRECTION_LEVEL].(string)
	return res.GetText(), level
}

// modules is a code's dark modules as read back from a drawing, [y][x]
// with the quiet zone.
type modules [][]bool

// image draws m, px pixels a module.
func (m modules) image(px int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, len(m)*px, len(m)*px))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y, row := range m {
		for x, dark := range row {
			if !dark {
				continue
			}
			for py := y * px; py < (y+1)*px; py++ {
				for qx := x * px; qx < (x+1)*px; qx++ {
					img.SetGray(qx, py, color.Gray{})
				}
			}
		}
	}
	return img
}

// equal reports whether m is c's matrix with its quiet zone.
func (m modules) equal(c *Code) error {
	n := c.Size() + 2*QuietZone
	if len(m) != n {
		return fmt.Errorf("%d modules across; want %d", len(m), n)
	}
	for y := range n {
		for x := range n {
			if m[y][x] != c.Dark(x-QuietZone, y-QuietZone) {
				return fmt.Errorf("module (%d, %d) dark %v; want %v", x, y, m[y][x], !m[y][x])
			}
		}
	}
	return nil
}

var svgRun = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)

// parsePath reads the modules of an SVG path made of runs
// "Mx yh{n}v1h-{n}z" in module units, n modules across.
func parsePath(t *testing.T, d string, n int) modules {
	t.Helper()
	m := make(modules, n)
	for i := range m {
		m[i] = make([]bool, n)
	}
	rest := svgRun.ReplaceAllString(d, "")
	if rest != "" {
		t.Fatalf("path holds more than runs of modules: %.80q", rest)
	}
	for _, r := range svgRun.FindAllStringSubmatch(d, -1) {
		x, _ := strconv.Atoi(r[1])
		y, _ := strconv.Atoi(r[2])
		w, _ := strconv.Atoi(r[3])
		if back, _ := strconv.Atoi(r[4]); back != w || y >= n || x+w > n {
			t.Fatalf("run %q out of the code", r[0])
		}
		for i := x; i < x+w; i++ {
			m[y][i] = true
		}
	}
	return m
}
