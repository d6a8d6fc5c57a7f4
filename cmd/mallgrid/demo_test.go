package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a command's stdout, read while the command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemo_BannerTokenIsAccepted is `make run` as a person follows it: the
// URL and token printed at the start make a top-up that the API accepts.
func TestDemo_BannerTokenIsAccepted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--fast"}, &out, &errOut) }()

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "the story") {
		select {
		case code := <-done:
			t.Fatalf("demo exited %d before its banner: %s", code, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner within 20s; stdout %q", out.String())
		}
	}
	banner := out.String()
	_, rest, _ := strings.Cut(banner, "status page on ")
	url := strings.Fields(rest)[0]
	_, rest, _ = strings.Cut(banner, "API token ")
	token := strings.Fields(rest)[0]
	if token != "demo" {
		t.Errorf("token %q; want demo, the built-in mall's", token)
	}
	req, err := http.NewRequest(http.MethodPost, url+"api/v1/accounts/T-102/topups",
		strings.NewReader(`{"amount":"100.00","ref":"PAY-1","channel":"cash"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("top-up with the banner's token: %s; want 201", resp.Status)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel; want 0: %s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("demo still running 15s after cancel")
	}
}

// TestDemo_ConfigFileWithProblemsExits2 is `mallgrid demo -c FILE` with a
// broken file: the problems as config check prints them, exit 2, nothing
// started.
func TestDemo_ConfigFileWithProblemsExits2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mall.yaml")
	if err := os.WriteFile(path, []byte("site: {name: X}\nbuses:\n  - {name: a, parity: X}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := mallgrid(t, "demo", "-c", path)
	if code != exitConfig || !strings.Contains(stderr, path+":3: buses[0].parity") {
		t.Errorf("demo -c with a bad parity = %d, %q; want %d naming %s:3", code, stderr, exitConfig, path)
	}
}
