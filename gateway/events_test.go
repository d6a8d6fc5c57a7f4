package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/web"
)

// sse reads server-sent events from url into a channel until ctx ends.
func sse(t *testing.T, ctx context.Context, url, lastID string) <-chan web.EventView {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer screen-secret")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET events = %d %s", resp.StatusCode, ct)
	}
	out := make(chan web.EventView, 16)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e web.EventView
				// A test mall's database is new: its first event, that a
				// new ledger was created, is not what these tests follow.
				if json.Unmarshal([]byte(data), &e) == nil && e.Kind != "database_created" {
					out <- e
				}
			}
		}
	}()
	return out
}

// TestEvents_StreamedDurablyAndResumed: a counter that goes down raises an
// event; it reaches a listener live, is in the store for one that connects
// later with the last id it saw, and an open stream does not hold up the
// gateway's shutdown.
func TestEvents_StreamedDurablyAndResumed(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	base, stop := mall.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	live := sse(t, ctx, base+"/api/v1/events", "")

	waitFor(t, 10*time.Second, "M-a1 read", func() bool {
		var m web.MeterView
		getJSON(t, base+"/api/v1/meters/M-a1", &m)
		return m.ReadingTime != nil
	})
	mall.meters["M-a1"].SetImportWh(5) // the counter falls: counter_lower
	var got web.EventView
	select {
	case got = <-live:
	case <-ctx.Done():
		t.Fatal("no event within 20s")
	}
	if got.Kind != "counter_lower" || got.Meter != "M-a1" || got.Tenant != "T-a1" || got.ID == 0 || got.Text == "" {
		t.Fatalf("event = %+v; want counter_lower of M-a1 (T-a1) with an id and a text", got)
	}
	// A client that saw nothing catches up from the store.
	again := sse(t, ctx, base+"/api/v1/events", "0")
	if e := <-again; e.ID != got.ID {
		t.Errorf("replayed event %+v; want id %d", e, got.ID)
	}
	// One that saw it gets nothing again (until something new happens).
	later := sse(t, ctx, base+"/api/v1/events?after="+itoa(got.ID), "")
	select {
	case e := <-later:
		if e.ID <= got.ID {
			t.Errorf("resumed stream repeated event %d", e.ID)
		}
	case <-time.After(500 * time.Millisecond):
	}
	if took := stop(); took > 2*time.Second {
		t.Errorf("shutdown with open event streams took %v; want under 2s", took)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
