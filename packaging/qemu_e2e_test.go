//go:build e2e

package packaging

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2E_QemuDemo runs the cross-built ARM binaries under qemu-user: the
// demo, whose simulated meters answer on pseudo-terminals (ioctls qemu has to
// translate), must poll every RS-485 meter and serve its pages and API, then
// stop cleanly on SIGINT.
func TestE2E_QemuDemo(t *testing.T) {
	for _, a := range []struct{ name, qemu, goarch, goarm string }{
		{"arm64", "qemu-aarch64", "arm64", ""},
		{"armv7", "qemu-arm", "arm", "7"},
	} {
		t.Run(a.name, func(t *testing.T) {
			qemu := need(t, a.qemu)
			bin := filepath.Join(t.TempDir(), "mallgrid")
			build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/mallgrid")
			build.Dir = ".."
			build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+a.goarch, "GOARM="+a.goarm, "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build for %s: %v\n%s", a.name, err, out)
			}
			runDemo(t, qemu, bin)
		})
	}
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
	var logs strings.Builder
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

	// The status page: / sends a browser to the login page, which is served.
	resp, err := client.Get(base + "/")
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
