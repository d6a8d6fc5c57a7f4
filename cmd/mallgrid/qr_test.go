package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	got, err := os.ReadFile(filepath.Join(pngs, "qr-B1-07.png"))
	if err != nil {
		t.Fatal(err)
	}
	want := pngOf(t, "https://pay.example.com/mall/riverside-plaza/shop/B1-07?k=q1&s="+paycode.Sig([]byte(qrSecret), "riverside-plaza", "B1-07"))
	if !bytes.Equal(got, want) {
		t.Errorf("qr-B1-07.png is not the code of B1-07's signed link")
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

// pngOf is the PNG the gateway draws for link.
func pngOf(t *testing.T, link string) []byte {
	t.Helper()
	c, err := paycode.Encode(link)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.PNG(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
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
	}
	for _, tc := range cases {
		t.Setenv("MALLGRID_UPLINK_QR_SECRET", qrSecret)
		if tc.name == "not configured" {
			os.Unsetenv("MALLGRID_UPLINK_QR_SECRET")
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
