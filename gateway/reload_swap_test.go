package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
)

// writeTestCA writes a self-signed CA certificate, PEM, to path.
func writeTestCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A file both configurations name (the uplink's CA) gone after the
// running one started: a reload to a valid file that removes a meter is
// refused before anything stops — the running configuration goes on,
// never stopped, and the meter's accrued charge is not posted as removed.
// Once the file is back, the same reload is done, and posts it once.
func TestReload_FileGoneKeepsRunning(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeTestCA(t, caFile)
	// Priced, so that M-a2 has a charge accrued and not yet posted.
	up := "tariffs:\n  - {name: standard, kind: flat, price: '1.00'}\n" +
		strings.Replace(uplinkYAML("ssl://127.0.0.1:1", ""), "  site_id:", "  ca_file: "+caFile+"\n  site_id:", 1)
	cfg, err := config.Parse("reload.yaml", []byte(reloadMallYAML(mall, true, up)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var removeCA atomic.Bool
	removeCA.Store(true)
	load := func() (*config.Config, error) {
		next, err := config.Parse("reload.yaml", []byte(reloadMallYAML(mall, false, up)), nil) // M-a2 and T-a2 taken out
		if err == nil && removeCA.Load() {
			err = os.Remove(caFile) // checked, then gone before the uplink reads it
		}
		return next, err
	}
	var logs syncBuffer
	reload := make(chan struct{}, 1)
	base, _ := runGateway(t, Options{Config: cfg, Log: zerolog.New(&logs), Reload: reload, Load: load})
	waitFor(t, 15*time.Second, "every bus live and M-a2 read", func() bool {
		var health web.HealthView
		var m web.MeterView
		return getJSON(t, base+"/healthz", &health) == http.StatusOK && getJSON(t, base+"/api/v1/meters/M-a2", &m) == http.StatusOK && m.Online
	})
	mall.meters["M-a2"].SetImportWh(10_301) // a charge accrued, within what the circuit can draw
	waitFor(t, 10*time.Second, "M-a2 read at 10.301 kWh", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a2", &m) == http.StatusOK && m.ImportKWh == "10.301"
	})

	reload <- struct{}{}
	waitFor(t, 15*time.Second, "the reload refused", func() bool {
		return strings.Contains(logs.String(), "configuration not reloaded: the new configuration cannot start; the running configuration is kept")
	})
	const settled = "is no longer in the configuration: its accrued charge"
	for _, bad := range []string{"starting the old one again", settled, "configuration reloaded"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("after the refused reload the log says %q:\n%s", bad, logs.String())
		}
	}
	since := time.Now()
	waitFor(t, 10*time.Second, "M-a2 read on by the running configuration", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a2", &m) == http.StatusOK && m.Online && m.ReadingTime != nil && m.ReadingTime.After(since)
	})
	var health web.HealthView
	if code := getJSON(t, base+"/healthz", &health); code != http.StatusOK {
		t.Errorf("/healthz after the refused reload: %d %+v; want 200", code, health)
	}

	removeCA.Store(false)
	writeTestCA(t, caFile)
	reload <- struct{}{}
	waitFor(t, 15*time.Second, "the reload done", func() bool {
		return strings.Contains(logs.String(), "configuration reloaded: tenants removed T-a2; meters removed M-a2")
	})
	if n := strings.Count(logs.String(), settled); n != 1 {
		t.Errorf("M-a2's accrued charge posted as removed %d times; want once, by the reload done:\n%s", n, logs.String())
	}
}

// Across reloads, /healthz stays 200 and a meter kept stays online: the new
// generation takes over what the old one knew of the buses and meters it
// keeps, rather than saying that no meter has answered yet until each bus
// has finished a cycle.
func TestReload_HealthStaysUp(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	files := [2]string{reloadMallYAML(mall, false, ""), reloadMallYAML(mall, true, "")}
	var which atomic.Int32
	load := func() (*config.Config, error) { return config.Parse("reload.yaml", []byte(files[which.Load()%2]), nil) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	reload := make(chan struct{})
	base, _ := runGateway(t, Options{Config: cfg, Log: zerolog.New(&logs), Reload: reload, Load: load})
	waitFor(t, 15*time.Second, "every bus live and M-b1 online", func() bool {
		var health web.HealthView
		var m web.MeterView
		return getJSON(t, base+"/healthz", &health) == http.StatusOK && getJSON(t, base+"/api/v1/meters/M-b1", &m) == http.StatusOK && m.Online
	})

	type answer struct {
		what string
		ok   bool
		body string
	}
	answers := make(chan answer, 1<<16)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := viewerGet(base + "/healthz")
			if err != nil {
				answers <- answer{"/healthz", false, err.Error()}
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- answer{"/healthz", resp.StatusCode == http.StatusOK, resp.Status + " " + string(body)}
			var m web.MeterView
			code := getJSON(t, base+"/api/v1/meters/M-b1", &m)
			answers <- answer{"M-b1", code == http.StatusOK && m.Online && m.LastSeen != nil, fmt.Sprintf("%d online %v last seen %v", code, m.Online, m.LastSeen)}
		}
	}()
	for i := range 5 {
		which.Store(int32(i + 1))
		reload <- struct{}{} // unbuffered: taken once the reload before has ended
		time.Sleep(300 * time.Millisecond)
	}
	reload <- struct{}{}
	waitFor(t, 15*time.Second, "the last reload done", func() bool { return strings.Count(logs.String(), "configuration reloaded") == 6 })
	close(stop)
	<-done
	close(answers)
	n, bad := 0, map[string]int{}
	first := map[string]string{}
	for a := range answers {
		n++
		if !a.ok {
			bad[a.what]++
			if first[a.what] == "" {
				first[a.what] = a.body
			}
		}
	}
	t.Logf("%d answers across 6 reloads", n)
	for what, k := range bad {
		t.Errorf("%s: %d of %d answers across the reloads not live; the first: %s", what, k, n/2, first[what])
	}
}

// A shutdown asked for while a reload waits for a request to finish (a
// client sending its body slowly) stops the gateway at once, as without
// the reload: the reload gives up, never stopping and starting
// generations past systemd's TimeoutStopSec.
func TestReload_ShutdownDuringHold(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	files := [2]string{reloadMallYAML(mall, false, ""), reloadMallYAML(mall, true, "")}
	var which atomic.Int32
	loaded := make(chan struct{}, 1)
	load := func() (*config.Config, error) {
		loaded <- struct{}{}
		return config.Parse("reload.yaml", []byte(files[which.Load()%2]), nil)
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	<-loaded
	var logs syncBuffer
	reload := make(chan struct{}, 1)
	base, stop := runGateway(t, Options{Config: cfg, Log: zerolog.New(&logs), Reload: reload, Load: load})
	waitFor(t, 15*time.Second, "every bus live", func() bool {
		var health web.HealthView
		return getJSON(t, base+"/healthz", &health) == http.StatusOK
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A login whose body never ends: open on the old Server until the
	// read timeout, longer than the reload's wait for it (drainWait).
	if _, err := fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=a",
		strings.TrimPrefix(base, "http://")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	which.Store(1)
	reload <- struct{}{}
	<-loaded
	time.Sleep(300 * time.Millisecond) // the reload holds requests, waiting for the login
	if took := stop(); took > 3*time.Second {
		t.Errorf("the gateway took %v to stop during a reload; want it to stop at once (drainWait is %v)", took, drainWait)
	}
	if strings.Contains(logs.String(), "configuration reloaded") {
		t.Errorf("the reload went on after the shutdown began:\n%s", logs.String())
	}
}

// A reload asked for as the gateway shuts down (both ready for Run's
// select) is not done: the file is not even read.
func TestReload_NotAfterShutdown(t *testing.T) {
	t.Parallel()
	read := false
	p := &process{log: zerolog.Nop(), opts: Options{Load: func() (*config.Config, error) { read = true; return nil, nil }}}
	cur := &generation{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := p.reload(ctx, cur); got != cur || err != nil || read {
		t.Errorf("reload after the shutdown began: %p, %v, file read %v; want the running generation, no error, the file not read", got, err, read)
	}
}

// When neither the new configuration nor the old one can start again (the
// database broke under the running gateway), the requests held for the
// reload are answered 503 with a reason at once, not left waiting until
// the connection is closed; and the gateway stops with the error.
func TestReload_NothingStartsAnswersHeld(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	files := [2]string{reloadMallYAML(mall, false, ""), reloadMallYAML(mall, true, "")}
	var which atomic.Int32
	load := func() (*config.Config, error) { return config.Parse("reload.yaml", []byte(files[which.Load()%2]), nil) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	// Once broken is set, bus a's next cycle waits before its commit
	// until release is closed: the reload's stop of the old generation
	// waits for it, and requests are held meanwhile.
	var broken atomic.Bool
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	hold := func(c poll.Cycle) {
		if broken.Load() && c.Bus == "a" {
			once.Do(func() { close(held) })
			<-release
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	var logs syncBuffer
	reload := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Config: cfg, Log: zerolog.New(&logs), Listener: ln, Version: "test", Reload: reload, Load: load, holdCycle: hold})
	}()
	waitFor(t, 15*time.Second, "every bus live", func() bool {
		var health web.HealthView
		return getJSON(t, base+"/healthz", &health) == http.StatusOK
	})
	if err := os.Truncate(mall.dbPath, 0); err != nil { // `: > FILE`
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the database noticed broken", func() bool {
		return strings.Contains(logs.String(), "database file lost")
	})
	broken.Store(true)
	<-held
	which.Store(1)
	reload <- struct{}{}
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	time.Sleep(200 * time.Millisecond) // the reload holds requests
	go func() {
		resp, err := viewerGet(base + "/api/v1/status")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		answered <- answer{code: resp.StatusCode, body: string(body)}
	}()
	time.Sleep(300 * time.Millisecond)
	close(release)
	select {
	case a := <-answered:
		if a.err != nil || a.code != http.StatusServiceUnavailable || !strings.Contains(a.body, "could not be started again") {
			t.Errorf("the request held by the reload: %d %s %v; want 503 saying the configuration could not be started again", a.code, a.body, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request held by the reload still waits 10 s after it failed")
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "the old configuration did not start again") {
			t.Errorf("Run: %v; want the reload's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10 s after no configuration could start")
	}
}
