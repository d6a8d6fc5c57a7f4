package web

import (
	"bufio"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// askedEvents records the id each stream asked its history after, and
// keeps a subscription open until the test ends.
type askedEvents struct {
	mu    sync.Mutex
	after []uint64
}

func (a *askedEvents) Subscribe() (<-chan EventView, func()) {
	ch := make(chan EventView)
	return ch, func() {}
}
func (a *askedEvents) After(id uint64, _ int) ([]EventView, error) {
	a.mu.Lock()
	a.after = append(a.after, id)
	a.mu.Unlock()
	return nil, nil
}
func (a *askedEvents) Last(int) ([]EventView, error) { return nil, nil }
func (a *askedEvents) asked() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uint64(nil), a.after...)
}

// openSSE opens path with hdr and returns the stream's lines; the
// request ends with the test.
func openSSE(t *testing.T, url string, hdr map[string]string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	lines := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-t.Context().Done():
				return
			}
		}
	}()
	return lines
}

// A browser reconnecting sends Last-Event-ID, newer than the ?after= its
// page was opened with: the stream resumes from the newer.
func TestEvents_LastEventIDWinsOverAfter(t *testing.T) {
	ev := &askedEvents{}
	rg := newRig(t, func(o *Options) { o.Events = ev })
	viewer := map[string]string{"Authorization": "Bearer viewer-secret"}
	openSSE(t, rg.url+"/api/v1/events?after=10", map[string]string{"Authorization": "Bearer viewer-secret", "Last-Event-ID": "500"})
	openSSE(t, rg.url+"/api/v1/events?after=10", viewer)
	deadline := time.Now().Add(2 * time.Second)
	for len(ev.asked()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := ev.asked()
	if len(got) != 2 || !(got[0] == 500 && got[1] == 10 || got[0] == 10 && got[1] == 500) {
		t.Errorf("the streams asked for the events after %v; want 500 (Last-Event-ID over after=10) and 10", got)
	}
}

// ?status=1 adds the counts and buses to the event stream, for the
// dashboard's one connection.
func TestEvents_StatusOnRequest(t *testing.T) {
	rg := newRig(t, func(o *Options) { o.Events = &askedEvents{} })
	lines := openSSE(t, rg.url+"/api/v1/events?status=1", map[string]string{"Authorization": "Bearer viewer-secret"})
	timeout := time.After(3 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended without a status event")
			}
			if l == "event: status" {
				data := <-lines
				if !strings.HasPrefix(data, `data: {"counts":{"meters":2`) {
					t.Errorf("status event data %q; want the counts", data)
				}
				return
			}
		case <-timeout:
			t.Fatal("no status event within 3 s with ?status=1")
		}
	}
}
