package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate and its key under dir and
// returns their paths.
func writePair(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw.mall.lan"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"gw.mall.lan"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestParse_TLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a")
	_, otherKey := writePair(t, dir, "b")
	head := []string{"site: {name: M}", "buses: [{name: b1, port: /dev/ttyUSB0}]", "http:", "  tls:"}
	cases := []struct {
		name      string
		cert, key string
		want      string // the one problem; "" for none
	}{
		{"a pair", cert, key, ""},
		{"not a pair", cert, otherKey, "t.yaml:6: http.tls.key: the certificate and key are not a pair the gateway can serve with: "},
		{"key missing", cert, filepath.Join(dir, "gone.pem"), "t.yaml:6: http.tls.key: cannot read it: "},
		{"cert is the key", key, key, "t.yaml:6: http.tls.key: the certificate and key are not a pair"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", doc(append(head, "    cert: "+tc.cert, "    key: "+tc.key)...), nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v; want no problem", err)
				}
				if cfg.HTTP.TLS == nil || cfg.HTTP.TLS.Cert != tc.cert || cfg.HTTP.TLS.Key != tc.key {
					t.Errorf("http.tls = %+v; want cert %s, key %s", cfg.HTTP.TLS, tc.cert, tc.key)
				}
				return
			}
			ps := problems(t, err)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].Error(), tc.want) {
				t.Errorf("got %v; want one problem starting %q", ps, tc.want)
			}
		})
	}
}
