package main

import (
	"archive/zip"
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"mallgrid/gateway/paycode"
)

// qrSecret signs the test stickers: not docs/QR.md's, which the
// configuration refuses as published.
const qrSecret = "cmd-test-qr-secret-0123456789abcdef-0123"

// qrConfig is a configuration with three tenants and stickers; no
// database exists anywhere (storage.path names nothing).
func qrConfig(t *testing.T, qr string) string {
	return writeFile(t, "m.yaml", "site: {name: 滨江广场}\nstorage: {path: /nonexistent/m.db}\n"+
		"buses: [{name: b1, port: /dev/ttyUSB0}]\n"+
		"tenants:\n  - {id: B1-07, name: 茶馆 Tea House}\n  - {id: B1-08, name: Books}\n  - {id: B1-09, name: Shoes}\n"+
		"uplink:\n  site_id: riverside-plaza\n"+qr)
}

const qrURL = "  qr: {url: 'https://pay.example.com/mall/{site}/shop/{tenant}?k={key}&s={sig}'}\n"

// The three formats, with no database: the sheet's files and the PNGs,
// each code the tenant's signed link.
func TestQR_Formats(t *testing.T) {
	t.Setenv("MALLGRID_UPLINK_QR_SECRET", qrSecret)
	cfg := qrConfig(t, qrURL)
	dir := t.TempDir()
	pdf := filepath.Join(dir, "s.pdf")
	if code, out, stderr := mallgrid(t, "qr", "-c", cfg, "-o", pdf); code != 0 || out != pdf+": 3 stickers on 1 pages\n" {
		t.Fatalf("qr pdf = %d %q %q", code, out, stderr)
	}
	if b, _ := os.ReadFile(pdf); !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Errorf("%s is not a PDF", pdf)
	}
	svg := filepath.Join(dir, "s.svg")
	if code, _, stderr := mallgrid(t, "qr", "-c", cfg, "--format", "svg", "--tenant", "B1-09", "--tenant", "B1-07", "-o", svg); code != 0 {
		t.Fatalf("qr svg = %d %q", code, stderr)
	}
	b, _ := os.ReadFile(svg)
	if i, j := bytes.Index(b, []byte(`data-tenant="B1-09"`)), bytes.Index(b, []byte(`data-tenant="B1-07"`)); i < 0 || j < i || bytes.Contains(b, []byte(`"B1-08"`)) {
		t.Errorf("svg sheet: want B1-09 then B1-07 alone")
	}
	pngs := filepath.Join(dir, "codes")
	if code, out, stderr := mallgrid(t, "qr", "-c", cfg, "--format", "png", "-o", pngs); code != 0 || !strings.Contains(out, "3 codes") {
		t.Fatalf("qr png = %d %q %q", code, out, stderr)
	}
	want := "https://pay.example.com/mall/riverside-plaza/shop/B1-07?k=q1&s=" + paycode.Sig([]byte(qrSecret), "riverside-plaza", "B1-07")
	if got := decodePNG(t, filepath.Join(pngs, "qr-B1-07.png")); got != want {
		t.Errorf("qr-B1-07.png holds %q; want B1-07's signed link %q", got, want)
	}
	zipped := filepath.Join(dir, "codes.zip")
	if code, _, stderr := mallgrid(t, "qr", "-c", cfg, "--format", "png", "--tenant", "B1-07", "-o", zipped); code != 0 {
		t.Fatalf("qr png zip = %d %q", code, stderr)
	}
	z, err := zip.OpenReader(zipped)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if len(z.File) != 1 || z.File[0].Name != "qr-B1-07.png" {
		t.Errorf("zip holds %d files; want qr-B1-07.png alone", len(z.File))
	}
}

// decodePNG reads the QR code of the PNG file with ZXing's decoder
// (gozxing), which shares no code with the gateway's drawing.
func decodePNG(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("%s: decode: %v", file, err)
	}
	return res.GetText()
}

// Refusals: a configuration problem exits 2 with FILE:LINE, stickers not
// configured exit 2 saying so, an unknown tenant or format is named.
func TestQR_Refusals(t *testing.T) {
	t.Setenv("MALLGRID_UPLINK_QR_SECRET", qrSecret)
	out := filepath.Join(t.TempDir(), "s.pdf")
	bad := qrConfig(t, "  qr: {url: 'https://pay.example.com/{site}/{tenant}?s={sig}'}\n")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad template", []string{"-c", bad}, 2, bad + ":10: uplink.qr.url: the template lacks {key}"},
		{"not configured", []string{"-c", qrConfig(t, "")}, 2, "uplink.qr.url is not set: there are no stickers to print"},
		{"unknown tenant", []string{"-c", qrConfig(t, qrURL), "--tenant", "B9-99"}, 1, `--tenant "B9-99": no such tenant`},
		{"format", []string{"-c", qrConfig(t, qrURL), "--format", "gif"}, 2, `--format "gif": want pdf, svg or png`},
		{"published secret", []string{"-c", qrConfig(t, qrURL)}, 2, "uplink.qr.secret: env MALLGRID_UPLINK_QR_SECRET: a published secret"},
	}
	for _, tc := range cases {
		t.Setenv("MALLGRID_UPLINK_QR_SECRET", qrSecret)
		switch tc.name {
		case "not configured":
			os.Unsetenv("MALLGRID_UPLINK_QR_SECRET")
		case "published secret":
			t.Setenv("MALLGRID_UPLINK_QR_SECRET", "mallgrid-qr-test-secret-0123456789abcdef") // docs/QR.md's
		}
		code, _, stderr := mallgrid(t, append([]string{"qr", "-o", out}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d %q; want %d with %q", tc.name, code, stderr, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused run wrote %s", out)
	}
}
