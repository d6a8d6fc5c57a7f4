package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// siteSource is fakeSource under another site name; Status waits for
// release when it is set, after telling entered.
type siteSource struct {
	fakeSource
	site             string
	entered, release chan struct{}
}

func (s siteSource) Status() StatusView {
	if s.release != nil {
		s.entered <- struct{}{}
		<-s.release
	}
	v := s.fakeSource.Status()
	v.Site = s.site
	return v
}

// A request runs wholly on one Server: one open when Hold begins finishes
// on the old Server and Hold waits for it; one arriving after waits for
// Set and is answered by the new Server. No request is refused.
func TestFront_HoldWaitsAndSetReleases(t *testing.T) {
	oldSrc := siteSource{fakeSource: newFake(), site: "Old Plaza", entered: make(chan struct{}, 1), release: make(chan struct{})}
	old, err := New(oldSrc, Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	next, err := New(siteSource{fakeSource: newFake(), site: "New Plaza"}, Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFront(nil)
	f.Set(old)
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	site := func(into chan<- string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/api/v1/status", nil)
		resp, err := http.DefaultClient.Do(as(req, RoleViewer))
		if err != nil {
			into <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		var v StatusView
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
			into <- "status " + resp.Status
			return
		}
		into <- v.Site
	}

	first := make(chan string, 1)
	go site(first)
	<-oldSrc.entered // the first request is open on the old Server
	held := make(chan bool, 1)
	go func() { held <- f.Hold(5 * time.Second) }()
	second := make(chan string, 1)
	time.Sleep(50 * time.Millisecond) // Hold has begun
	go site(second)
	select {
	case <-held:
		t.Fatal("Hold returned with a request open on the old Server")
	case s := <-second:
		t.Fatalf("a request during the hold was answered (%s) before Set", s)
	case <-time.After(200 * time.Millisecond):
	}
	close(oldSrc.release)
	if got := <-first; got != "Old Plaza" {
		t.Errorf("the request open at Hold answered %q; want the old Server's Old Plaza", got)
	}
	if !<-held {
		t.Error("Hold reported requests left open")
	}
	f.Set(next)
	if got := <-second; got != "New Plaza" {
		t.Errorf("the request that waited answered %q; want the new Server's New Plaza", got)
	}
}

// Hold gives up on a request that outlasts drain, and says so.
func TestFront_HoldDrainTimeout(t *testing.T) {
	src := siteSource{fakeSource: newFake(), site: "Slow", entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, err := New(src, Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFront(nil)
	f.Set(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.ServeHTTP(httptest.NewRecorder(), asViewer(httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)))
	}()
	<-src.entered
	if f.Hold(100 * time.Millisecond) {
		t.Error("Hold reported every request finished with one still open")
	}
	close(src.release)
	<-done
}

// A request a reload holds has the server's read and write time from the
// end of its wait, not from its arrival: held past the write timeout it
// is answered by the new Server, its body sent once the hold is over is
// read, and held past heldWait it is told why in a 503 — where the
// connection's deadlines, passed during the wait, cut each off before.
func TestFront_HeldRequestKeepsItsTimeouts(t *testing.T) {
	f := NewFront(nil)
	f.heldWait, f.readTimeout, f.writeTimeout = 1500*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	f.Set(newRig(t).s)
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: time.Second, ReadTimeout: f.readTimeout, WriteTimeout: f.writeTimeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	type answer struct {
		code int
		body string
		err  error
	}
	send := func(req *http.Request) <-chan answer {
		out := make(chan answer, 1)
		go func() {
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				out <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			out <- answer{resp.StatusCode, string(raw), err}
		}()
		return out
	}
	held := 3 * f.writeTimeout // longer than both timeouts, shorter than heldWait

	f.Hold(time.Second)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/status", nil)
	got := send(as(req, RoleViewer))
	time.Sleep(held)
	f.Set(newRig(t).s)
	if a := <-got; a.err != nil || a.code != http.StatusOK {
		t.Errorf("GET held %s, then released = %d %v; want 200 from the new Server", held, a.code, a.err)
	}

	f.Hold(time.Second)
	body, sendBody := io.Pipe()
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/accounts/T-101/topups", body)
	req.Header.Set("Content-Type", "application/json")
	got = send(as(req, RoleOperator))
	time.Sleep(held)
	f.Set(newRig(t).s)
	go func() {
		_, err := io.WriteString(sendBody, `{"amount":"5.00","ref":"PAY-HELD","channel":"cash"}`)
		sendBody.CloseWithError(err)
	}()
	if a := <-got; a.err != nil || a.code != http.StatusCreated {
		t.Errorf("a top-up held %s, its body sent after = %d %s %v; want 201", held, a.code, a.body, a.err)
	}

	f.Hold(time.Second)
	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/status", nil)
	began := time.Now()
	a := <-send(as(req, RoleViewer))
	if a.err != nil || a.code != http.StatusServiceUnavailable || !strings.Contains(a.body, "being reloaded") {
		t.Errorf("GET held past heldWait (%s) = %d %q %v; want 503 saying the configuration is being reloaded", f.heldWait, a.code, a.body, a.err)
	}
	if waited := time.Since(began); waited < f.heldWait {
		t.Errorf("the 503 came after %s; want after heldWait, %s", waited, f.heldWait)
	}
}
