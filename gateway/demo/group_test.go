package demo

import (
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

// The built-in demo has an uplink to a broker of its own, connected, and
// the tenants' stickers on a payment host that does not exist, signed
// with a secret made for the run.
func TestDemo_UplinkAndStickers(t *testing.T) {
	r := startDemo(t, Options{})
	var st web.StatusView
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := r.get(r.url + "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Uplink != nil && st.Uplink.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uplink %+v; want connected", st.Uplink)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if u := st.Uplink; u.SiteID != "riverside-demo" || !strings.HasPrefix(u.Broker, "tcp://127.0.0.1:") {
		t.Errorf("uplink %+v; want site riverside-demo on a loopback broker", u)
	}
	resp, err := r.get(r.url + "/paycodes")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sticker := regexp.MustCompile(`https://pay\.demo\.invalid/m/riverside-demo\?t=T-101&amp;k=demo&amp;s=[A-Za-z0-9_-]{16,}`)
	if resp.StatusCode != 200 || !sticker.Match(page) {
		t.Errorf("/paycodes %d: no sticker link of T-101 on pay.demo.invalid in\n%.2000s", resp.StatusCode, page)
	}
}

// Each run's sticker secret is its own, unless the environment of a -c
// file gives one.
func TestWithQRSecret(t *testing.T) {
	a, err := withQRSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := withQRSecret(nil)
	if len(a) != 1 || len(b) != 1 || a[0] == b[0] || !strings.HasPrefix(a[0], config.QRSecretVar+"=") || len(a[0]) < len(config.QRSecretVar)+1+config.MinQRSecret {
		t.Errorf("secrets %q and %q; want two different ones of %d bytes or more", a, b, config.MinQRSecret)
	}
	given := []string{"HOME=/root", config.QRSecretVar + "=mine-0123456789abcdef-0123456789abcdef"}
	if got, _ := withQRSecret(given); len(got) != 2 || got[1] != given[1] {
		t.Errorf("env %q; want the given secret kept", got)
	}
	c1, err1 := Options{}.load()
	c2, err2 := Options{}.load()
	if err1 != nil || err2 != nil || c1.Uplink.QR.Secret == "" || c1.Uplink.QR.Secret == c2.Uplink.QR.Secret {
		t.Errorf("two loads of the built-in mall: %v %v; want two different secrets", err1, err2)
	}
}
