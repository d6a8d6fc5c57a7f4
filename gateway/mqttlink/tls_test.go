package mqttlink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestEmbedded_TLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	sum := sha256.Sum256([]byte("secret"))
	b := config.Bus{Name: "f3", Type: config.BusCompereMQTT, Listen: "127.0.0.1:0", Username: "kpm",
		PasswordSHA256: hex.EncodeToString(sum[:]), TLSCert: certFile, TLSKey: keyFile}
	l, err := New(b, []string{meterA}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e := l.(*Embedded)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for e.Addr() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	// (A plain-text client is not tried here: its connection fails in
	// mochi before it is a client, and mochi's Close then races, under
	// -race, with that connection's finished goroutine — mochi's
	// WaitGroup, not ours. The client below proves the handshake.)
	o := paho.NewClientOptions().AddBroker("ssl://" + e.Addr().String()).SetClientID("kpm-a").SetUsername("kpm").SetPassword("secret").
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}).SetAutoReconnect(false).SetConnectTimeout(3 * time.Second)
	m := paho.NewClient(o)
	wait(t, m.Connect())
	defer m.Disconnect(100)
	tok := m.Publish("MQTT_RT_DATA", 1, false, rtData(meterA, 231))
	if got := next(t, e); string(got.Payload) != string(rtData(meterA, 231)) {
		t.Errorf("got %s", got.Payload)
	}
	wait(t, tok)
}

// The mall's broker over TLS with a private CA: ca_file is what the link
// trusts it by.
func TestClient_TLSWithCAFile(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := mqtt.New(&mqtt.Options{Logger: slogger(zerolog.Nop())})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "mall", Address: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err := s.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	bus := config.Bus{Name: "tw", Type: config.BusCompereMQTT, Broker: "ssl://" + ln.Address(), ClientID: "gw-tls", CAFile: certFile}
	l, err := New(bus, []string{meterA}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitConnected(t, l)

	// Without the CA the same broker is not trusted.
	bus.CAFile, bus.ClientID = "", "gw-untrusting"
	l2, err := New(bus, []string{meterA}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- l2.Run(ctx2) }()
	time.Sleep(500 * time.Millisecond)
	if l2.Connected() {
		t.Error("connected to a broker whose certificate no trusted CA signed")
	}
	cancel2()
	if err := <-done2; err != nil {
		t.Errorf("Run: %v", err)
	}
}
