//go:build e2e

package packaging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestE2E_QemuDemo runs the packaged ARM binaries (arm64, armhf: built by
// deb.sh with the flags of `make cross`) under qemu-user: the demo, whose
// simulated meters answer on pseudo-terminals (ioctls qemu has to
// translate), must poll every RS-485 meter and serve its API and, after a
// login, its dashboard, then stop cleanly on SIGINT.
func TestE2E_QemuDemo(t *testing.T) {
	for _, a := range []struct{ name, qemu, deb string }{
		{"arm64", "qemu-aarch64", "arm64"},
		{"armv7", "qemu-arm", "armhf"},
	} {
		t.Run(a.name, func(t *testing.T) {
			qemu := need(t, a.qemu)
			need(t, "dpkg-deb")
			version, debs := buildDebs(t)
			bin := filepath.Join(t.TempDir(), "mallgrid")
			extractFile(t, debs[a.deb], "./usr/bin/mallgrid", bin)
			if got := cmdOut(t, "", qemu, bin, "version"); got != "mallgrid "+version+"\n" {
				t.Errorf("mallgrid version under %s: %q; want the package's %s", a.qemu, got, version)
			}
			runDemo(t, qemu, bin)
		})
	}
}

// syncBuffer is a bytes.Buffer for a command's stderr: exec's copying
// goroutine writes it while the test may read it to report a failure.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func runDemo(t *testing.T, qemu, bin string) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	addr := freePort(t)
	cmd := exec.CommandContext(ctx, qemu, bin, "demo", "--listen", addr)
	cmd.Dir = t.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	// The token the demo prints: "mallgrid demo: API token demo (admin), e.g.".
	tokens := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`API token (\S+) \(`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				tokens <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var token string
	select {
	case token = <-tokens:
	case err := <-exited:
		t.Fatalf("demo exited before printing its token: %v\n%s", err, logs.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("no token printed in 90 s\n%s", logs.String())
	}

	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "http://" + addr

	// Every meter of every RS-485 bus read: the pseudo-terminals work.
	var status struct {
		Buses []struct {
			Name      string `json:"name"`
			Type      string `json:"type"`
			Meters    int    `json:"meters"`
			Online    int    `json:"online"`
			LastCycle string `json:"last_cycle"`
		} `json:"buses"`
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		ok := false
		if err == nil {
			if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&status) == nil {
				rtu := 0
				ok = true
				for _, b := range status.Buses {
					if b.Type == "rtu" {
						rtu++
						ok = ok && b.Meters > 0 && b.Online == b.Meters && b.LastCycle != ""
					}
				}
				ok = ok && rtu > 0
			}
			resp.Body.Close()
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the RS-485 buses were not all read within 90 s: %+v (%v)\n%s", status.Buses, err, logs.String())
		}
		time.Sleep(time.Second)
	}

	// Every meter listed with a reading, through the API.
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/meters", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var meters []struct {
		ID        string `json:"id"`
		Bus       string `json:"bus"`
		Online    bool   `json:"online"`
		ImportKWh string `json:"import_kwh"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meters)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || len(meters) == 0 {
		t.Fatalf("GET /api/v1/meters: %s, %d meters, %v; want 200 and the demo's meters", resp.Status, len(meters), err)
	}
	rtuBuses := map[string]bool{}
	for _, b := range status.Buses {
		rtuBuses[b.Name] = b.Type == "rtu"
	}
	for _, m := range meters {
		if rtuBuses[m.Bus] && (!m.Online || m.ImportKWh == "") {
			t.Errorf("meter %s on RS-485 bus %s: online %v, import %q; want read", m.ID, m.Bus, m.Online, m.ImportKWh)
		}
	}

	// The status page: / sends a browser to the login page; the demo's
	// user logs in (bcrypt under emulation: seconds) and gets the
	// dashboard, which names the buses.
	resp, err = client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc == "" {
		t.Fatalf("GET /: %s, Location %q; want 303 to the login page", resp.Status, loc)
	}
	resp, err = client.Get(base + loc)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "<form") {
		t.Fatalf("GET %s: %s %s; want the login page", loc, resp.Status, resp.Header.Get("Content-Type"))
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: client.CheckRedirect}
	// configs/demo.yaml: user demo, password demo.
	resp, err = browser.PostForm(base+"/login", url.Values{"username": {"demo"}, "password": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login as demo: %s; want 303\n%s", resp.Status, logs.String())
	}
	resp, err = browser.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / logged in: %s %s; want the dashboard", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, b := range status.Buses {
		if !strings.Contains(string(page), b.Name) {
			t.Errorf("the dashboard does not name bus %s", b.Name)
		}
	}

	// Ctrl-C: a clean stop (qemu passes the signal on).
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		exited <- err // for the deferred kill
		if err != nil {
			t.Fatalf("demo after SIGINT: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo still running 30 s after SIGINT\n%s", logs.String())
	}
}
