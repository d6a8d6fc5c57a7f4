package web

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// changingSource numbers its meters' changes as the gateway's picture does.
type changingSource struct {
	mu     sync.Mutex
	seq    uint64
	meters []MeterView
	ver    []uint64
}

func newChanging(ids ...string) *changingSource {
	c := &changingSource{seq: 100}
	for _, id := range ids {
		c.meters = append(c.meters, MeterView{ID: id, Bus: "north", Values: map[string]Value{}, Energy: map[string]string{},
			Stats: StatsView{Errors: map[string]int64{}}})
		c.ver = append(c.ver, c.seq)
	}
	return c
}

func (c *changingSource) set(id string, w float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.meters {
		if c.meters[i].ID == id {
			c.seq++
			c.ver[i] = c.seq
			c.meters[i].Values = map[string]Value{"power": {w, "W"}}
		}
	}
}

func (c *changingSource) Status() StatusView {
	return StatusView{Counts: CountsView{Meters: len(c.meters)}, Buses: []BusView{{Name: "north"}}, Polling: []PollingView{{Meter: "x"}}}
}
func (c *changingSource) Meters() []MeterView { v, _ := c.MetersSince(0); return v }
func (c *changingSource) MetersSince(after uint64) ([]MeterView, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []MeterView
	for i, m := range c.meters {
		if after < 100 || after > c.seq || c.ver[i] > after {
			out = append(out, m)
		}
	}
	return out, c.seq
}

// sseEvent is one event as a client reads it.
type sseEvent struct {
	name, id, data string
}

// openMeterStream opens GET /api/v1/meters/stream with hdr; its events
// arrive on the channel, which is closed when the stream ends.
func openMeterStream(t *testing.T, c *http.Client, url string, hdr map[string]string) <-chan sseEvent {
	t.Helper()
	if !strings.Contains(url, "/api/") {
		url += "/api/v1/meters/stream"
	}
	req, _ := http.NewRequest("GET", strings.TrimSuffix(url, "#"), nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("stream = %d", resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.data != "" {
					ch <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				e.name = line[7:]
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			}
		}
	}()
	return ch
}

// nextMeters waits up to d for the next meters event and returns its ids.
func nextMeters(t *testing.T, ch <-chan sseEvent, d time.Duration) (ids []string, id string, ok bool) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case e, open := <-ch:
			if !open {
				return nil, "", false
			}
			if e.name != "meters" {
				continue
			}
			var ms []MeterView
			if err := json.Unmarshal([]byte(e.data), &ms); err != nil {
				t.Fatalf("meters event %q: %v", e.data, err)
			}
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return ids, e.id, true
		case <-timeout:
			return nil, "", false
		}
	}
}

func streamServer(t *testing.T, src Source) *rig {
	t.Helper()
	s, err := New(src, Options{Log: zerolog.Nop(), Tokens: testTokens(), Users: testUsers(t), Listen: "127.0.0.1:0", LoginDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &rig{s: s, url: srv.URL, c: &changes{}}
}

// A first connection gets every meter, then only what changed, within
// about a second; a reconnection with Last-Event-ID resumes after it.
func TestMeterStream_Deltas(t *testing.T) {
	src := newChanging("M-1", "M-2", "M-3")
	rg := streamServer(t, src)
	viewer := map[string]string{"Authorization": "Bearer viewer-secret"}
	ch := openMeterStream(t, client(t), rg.url, viewer)
	ids, _, ok := nextMeters(t, ch, 2*time.Second)
	if !ok || strings.Join(ids, " ") != "M-1 M-2 M-3" {
		t.Fatalf("first message = %v, %v; want every meter", ids, ok)
	}
	var status sseEvent
	select {
	case status = <-ch:
	case <-time.After(2 * time.Second):
	}
	if status.name != "status" || !strings.Contains(status.data, `"counts":{"meters":3`) || strings.Contains(status.data, "polling") {
		t.Errorf("status event = %+v; want the counts and buses without the polling list", status)
	}
	start := time.Now()
	src.set("M-2", 1500)
	ids, id, ok := nextMeters(t, ch, 3*time.Second)
	if !ok || strings.Join(ids, " ") != "M-2" {
		t.Fatalf("after M-2 changed: %v, %v; want M-2 alone", ids, ok)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("the change arrived after %s; want within about a second", d)
	}
	if ids, _, ok := nextMeters(t, ch, 1500*time.Millisecond); ok {
		t.Errorf("nothing changed, yet a meters event came with %v", ids)
	}
	// Reconnect with the last id: M-3 changed meanwhile, M-1 did not.
	src.set("M-3", 700)
	ch2 := openMeterStream(t, client(t), rg.url, map[string]string{"Authorization": "Bearer viewer-secret", "Last-Event-ID": id})
	if ids, _, ok := nextMeters(t, ch2, 2*time.Second); !ok || strings.Join(ids, " ") != "M-3" {
		t.Errorf("reconnected after %s: %v, %v; want M-3 alone", id, ids, ok)
	}
	// An id of another run gets everything.
	ch3 := openMeterStream(t, client(t), rg.url, map[string]string{"Authorization": "Bearer viewer-secret", "Last-Event-ID": "7"})
	if ids, _, ok := nextMeters(t, ch3, 2*time.Second); !ok || len(ids) != 3 {
		t.Errorf("reconnected with an unknown id: %v; want every meter", ids)
	}
}

// ?ids= limits the meters event to a page's rows.
func TestMeterStream_IDs(t *testing.T) {
	src := newChanging("M-1", "M-2", "M-3")
	rg := streamServer(t, src)
	ch := openMeterStream(t, client(t), rg.url+"/api/v1/meters/stream?ids=M-1,M-3#", map[string]string{"Authorization": "Bearer viewer-secret"})
	if ids, _, ok := nextMeters(t, ch, 2*time.Second); !ok || strings.Join(ids, " ") != "M-1 M-3" {
		t.Fatalf("first message = %v; want M-1 M-3", ids)
	}
	src.set("M-2", 5)
	src.set("M-3", 5)
	if ids, _, ok := nextMeters(t, ch, 3*time.Second); !ok || strings.Join(ids, " ") != "M-3" {
		t.Errorf("after M-2 and M-3 changed: %v; want M-3 alone", ids)
	}
}

// ?ids= with no id is the status events alone (the dashboard's counts).
func TestMeterStream_StatusOnly(t *testing.T) {
	src := newChanging("M-1", "M-2")
	rg := streamServer(t, src)
	ch := openMeterStream(t, client(t), rg.url+"/api/v1/meters/stream?ids=", map[string]string{"Authorization": "Bearer viewer-secret"})
	src.set("M-1", 5)
	deadline := time.After(2500 * time.Millisecond)
	status := false
	for done := false; !done; {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatal("the stream ended")
			}
			if e.name == "meters" && e.data != "[]" {
				t.Fatalf("a meters event with ?ids=: %+v", e)
			}
			status = status || e.name == "status"
		case <-deadline:
			done = true
		}
	}
	if !status {
		t.Error("no status event with ?ids=")
	}
}

// A stream opened with a login ends after the logout.
func TestMeterStream_EndsWithLogout(t *testing.T) {
	src := newChanging("M-1")
	rg := streamServer(t, src)
	c := client(t)
	csrf := rg.login(t, c, "viewer", "viewer-pw")
	ch := openMeterStream(t, c, rg.url, nil)
	if _, _, ok := nextMeters(t, ch, 2*time.Second); !ok {
		t.Fatal("no first message")
	}
	if code := rg.do(t, c, "POST", "/logout", "", map[string]string{"X-CSRF-Token": csrf}, nil); code != http.StatusSeeOther {
		t.Fatalf("logout = %d", code)
	}
	src.set("M-1", 10)
	deadline := time.After(3 * time.Second)
	for {
		select {
		case e, open := <-ch:
			if !open {
				return // ended
			}
			if e.name == "meters" {
				t.Fatalf("after the logout a meters event came: %+v", e)
			}
		case <-deadline:
			t.Fatal("the stream still open 3 s after the logout")
		}
	}
}

func TestMeterStream_BadIDs(t *testing.T) {
	rg := streamServer(t, newChanging("M-1", "M-2"))
	for _, q := range []string{"?ids=M-9", "?ids=M-1,,M-2", "?ids=M-1&ids=M-2", "?after=3", "?ids=" + strings.Repeat("M-1,", 1000) + "M-1"} {
		code := rg.do(t, client(t), "GET", "/api/v1/meters/stream"+q, "", map[string]string{"Authorization": "Bearer viewer-secret"}, nil)
		if code != 400 {
			t.Errorf("stream%s = %d; want 400", q, code)
		}
	}
	if code := rg.do(t, client(t), "GET", "/api/v1/meters/stream", "", nil, nil); code != 401 {
		t.Errorf("stream without a token = %d; want 401", code)
	}
}
