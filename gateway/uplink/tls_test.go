package uplink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/upfeed"
)

// selfSigned writes a self-signed certificate (for 127.0.0.1 when server)
// and its key as PEM files, and returns their paths and the certificate.
func selfSigned(t *testing.T, name string, server bool) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

// A group broker on ssl:// with its own CA that admits only clients with
// its certificate: the link trusts it by ca_file and logs in with
// client_cert and client_key; without them it is refused and nothing
// leaves the outbox.
func TestLink_TLSClientCertificate(t *testing.T) {
	srvCert, srvKey, _ := selfSigned(t, "broker", true)
	cliCert, cliKey, cli := selfSigned(t, "gateway", false)
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(cli)
	rec := newRecorder()
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, h := range []mqtt.Hook{new(auth.AllowHook), rec} {
		if err := s.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	ln := listeners.NewTCP(listeners.Config{ID: "tls", Address: "127.0.0.1:0", TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	if err := s.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	for _, tc := range []struct {
		name      string
		cert, key string
	}{{"no client certificate", "", ""}, {"client certificate", cliCert, cliKey}} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			enqueue(t, db, 3)
			cfg := config.Uplink{Broker: "ssl://" + ln.Address(), SiteID: site, CAFile: srvCert, ClientCert: tc.cert, ClientKey: tc.key}
			l, err := NewLink(cfg, db, nil, upfeed.Envelope, zerolog.Nop(), time.Now)
			if err != nil {
				t.Fatal(err)
			}
			l.t = fast
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			defer func() { cancel(); <-done }()
			if tc.cert == "" {
				time.Sleep(time.Second)
				if st, _ := db.UplinkStats(); st.Depth != 3 || l.connected.Load() {
					t.Errorf("depth %d, connected %v; want refused: nothing sent", st.Depth, l.connected.Load())
				}
				return
			}
			waitFor(t, 5*time.Second, "outbox empty over TLS", func() bool { st, _ := db.UplinkStats(); return st.Depth == 0 })
		})
	}
}

// An ssl:// broker always has a TLS configuration naming its host: through
// a proxy (all_proxy) paho's TLS has no host of its own to check the
// certificate against, and without one never connected.
func TestTLSConfig_ServerName(t *testing.T) {
	for _, tc := range []struct{ broker, want string }{
		{"ssl://mq.group.example:8883", "mq.group.example"},
		{"ssl://[::1]:8883", "::1"},
		{"tcp://mq.group.example:1883", ""},
	} {
		c, err := tlsConfig(config.Uplink{Broker: tc.broker})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.want == "" && c != nil:
			t.Errorf("%s: a TLS configuration; want none", tc.broker)
		case tc.want != "" && (c == nil || c.ServerName != tc.want):
			t.Errorf("%s: %+v; want ServerName %s", tc.broker, c, tc.want)
		}
	}
}

// An ssl:// broker reached through a SOCKS5 proxy named by all_proxy: the
// link connects through it, checks the broker's certificate against its
// host, and the outbox empties. The proxy's variables are read once per
// process (golang.org/x/net/proxy), so the link runs in a child process
// of this test binary.
func TestLink_TLSThroughProxy(t *testing.T) {
	if os.Getenv("UPLINK_PROXY_CHILD") != "" {
		proxyChild(t)
		return
	}
	srvCert, srvKey, _ := selfSigned(t, "broker", true)
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "tls", Address: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}})
	if err := s.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	proxied := socks5(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLink_TLSThroughProxy$", "-test.count=1")
	cmd.Env = append(os.Environ(), "UPLINK_PROXY_CHILD=1", "UPLINK_BROKER=ssl://"+ln.Address(), "UPLINK_CA="+srvCert,
		"all_proxy=socks5://"+proxied.addr, "ALL_PROXY=", "NO_PROXY=", "no_proxy=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the link through the proxy: %v\n%s", err, out)
	}
	if n := proxied.count.Load(); n == 0 {
		t.Errorf("no connection through the proxy; want the link's")
	}
}

// proxyChild is TestLink_TLSThroughProxy's child: a link to the broker of
// its environment, whose outbox must empty.
func proxyChild(t *testing.T) {
	db := openDB(t)
	enqueue(t, db, 3)
	cfg := config.Uplink{Broker: os.Getenv("UPLINK_BROKER"), SiteID: site, CAFile: os.Getenv("UPLINK_CA")}
	l, err := NewLink(cfg, db, nil, upfeed.Envelope, zerolog.Nop(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	l.t = fast
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "outbox empty over TLS through the proxy", func() bool { st, _ := db.UplinkStats(); return st.Depth == 0 })
}

// socksProxy is a SOCKS5 proxy (no authentication, CONNECT only) counting
// the connections it made.
type socksProxy struct {
	addr  string
	count atomic.Int64
}

func socks5(t *testing.T) *socksProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &socksProxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *socksProxy) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 262)
	// Greeting: version, methods; answer "no authentication".
	if _, err := io.ReadFull(c, buf[:2]); err != nil || buf[0] != 5 {
		return
	}
	if _, err := io.ReadFull(c, buf[:buf[1]]); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return
	}
	// Request: version, CONNECT, reserved, address type, address, port.
	if _, err := io.ReadFull(c, buf[:4]); err != nil || buf[1] != 1 {
		return
	}
	var host string
	switch buf[3] {
	case 1:
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			return
		}
		host = net.IP(buf[:4]).String()
	case 3:
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			return
		}
		n := int(buf[0])
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		host = string(buf[:n])
	default:
		return
	}
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return
	}
	target, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(int(buf[0])<<8|int(buf[1]))), 5*time.Second)
	if err != nil {
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer target.Close()
	p.count.Add(1)
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	go func() { _, _ = io.Copy(target, c); target.Close() }()
	_, _ = io.Copy(c, target)
}
