package gateway

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"mallgrid/drivers/sim"
	"mallgrid/gateway/web"
)

// nextEvent returns the next streamed event, failing after within.
func nextEvent(t *testing.T, evs <-chan web.EventView, within time.Duration, waiting string) web.EventView {
	t.Helper()
	select {
	case e, ok := <-evs:
		if !ok {
			t.Fatalf("event stream ended while waiting for %s", waiting)
		}
		return e
	case <-time.After(within):
		t.Fatalf("no event within %v while waiting for %s", within, waiting)
	}
	return web.EventView{}
}

// subject is what an offline/online or down/up event is about: its meter,
// or the bus its text names first ("Bus a is down: …").
func subject(e web.EventView) string {
	if e.Meter != "" {
		return e.Kind + " " + e.Meter
	}
	if f := strings.Fields(e.Text); len(f) > 1 {
		return e.Kind + " " + f[1]
	}
	return e.Kind
}

// TestHealth_MetersAndBusGoSilentAndAnswerAgain runs the gateway on
// simulated meters over real pseudo-terminals: a meter that stops
// answering raises one meter_offline, and /healthz stays 200 while its bus
// has another live meter; once every meter on the bus is silent the bus is
// down and /healthz is 503 naming it; once they answer again, meter_online
// and bus_up, and /healthz is 200. Nothing is said again while nothing
// changes, and the stored events are the streamed ones.
func TestHealth_MetersAndBusGoSilentAndAnswerAgain(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	mall.offlineAfter = 2 * time.Second
	base, _ := mall.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream := sse(t, ctx, base+"/api/v1/events", "")

	var health web.HealthView
	waitFor(t, 10*time.Second, "healthz 200 with every bus live", func() bool {
		health = web.HealthView{}
		return getJSON(t, base+"/healthz", &health) == 200
	})
	if health.Status != "ok" || health.Problems != nil {
		t.Errorf("healthy body = %+v; want status ok alone", health)
	}
	silence := func(ids ...string) {
		for _, id := range ids {
			if err := mall.meters[id].SetFaultRates(map[sim.FaultKind]float64{sim.NoReply: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}

	silence("M-a1")
	if e := nextEvent(t, stream, 15*time.Second, "M-a1 offline"); subject(e) != "meter_offline M-a1" || e.Tenant != "T-a1" || e.ID == 0 {
		t.Fatalf("event = %+v; want meter_offline of M-a1 (T-a1), stored", e)
	}
	if code := getJSON(t, base+"/healthz", &health); code != 200 {
		t.Errorf("healthz with M-a2 still live on bus a = %d %+v; want 200", code, health)
	}

	silence("M-a2")
	var got []string
	for len(got) < 2 {
		got = append(got, subject(nextEvent(t, stream, 15*time.Second, "M-a2 offline and bus a down")))
	}
	if want := []string{"meter_offline M-a2", "bus_down a"}; !slices.Equal(got, want) {
		t.Fatalf("events = %q; want %q", got, want)
	}
	health = web.HealthView{}
	if code := getJSON(t, base+"/healthz", &health); code != 503 || health.Status != "fail" || len(health.Problems) != 1 ||
		!strings.HasPrefix(health.Problems[0], "bus a: no meter has answered since ") {
		t.Errorf("healthz with bus a silent = %d %+v; want 503 naming bus a alone", code, health)
	}
	// Silent meters are probed on and fail on: nothing more is said.
	select {
	case e := <-stream:
		t.Errorf("event %+v while nothing changed; want none", e)
	case <-time.After(1500 * time.Millisecond):
	}

	for _, id := range []string{"M-a1", "M-a2"} {
		mall.meters[id].ClearFaults()
	}
	got = got[:0]
	for len(got) < 3 { // the poller's backoff decides which answers first
		got = append(got, subject(nextEvent(t, stream, 20*time.Second, "bus a and its meters back")))
	}
	if got[0] != "bus_up a" && got[1] != "bus_up a" {
		t.Errorf("events = %q; want bus_up a with the first meter_online", got)
	}
	slices.Sort(got)
	if want := []string{"bus_up a", "meter_online M-a1", "meter_online M-a2"}; !slices.Equal(got, want) {
		t.Errorf("events = %q; want %q", got, want)
	}
	if code := getJSON(t, base+"/healthz", &health); code != 200 {
		t.Errorf("healthz with every meter back = %d %+v; want 200", code, health)
	}

	// The store holds each of them once.
	all := sse(t, ctx, base+"/api/v1/events", "0")
	var stored []string
	for len(stored) < 6 {
		stored = append(stored, subject(nextEvent(t, all, 5*time.Second, "the stored events")))
	}
	slices.Sort(stored)
	want := []string{"bus_down a", "bus_up a", "meter_offline M-a1", "meter_offline M-a2", "meter_online M-a1", "meter_online M-a2"}
	if !slices.Equal(stored, want) {
		t.Errorf("stored events = %q; want %q", stored, want)
	}
}

// TestHealth_PortCannotBeOpened: a bus whose port is gone is down at once,
// with one event however often the port is retried, and /healthz names
// the port and the error.
func TestHealth_PortCannotBeOpened(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	mall.cfg.Buses[1].Port = "/dev/mallgrid-no-such-port"
	base, _ := mall.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream := sse(t, ctx, base+"/api/v1/events", "0")
	e := nextEvent(t, stream, 5*time.Second, "bus b down")
	if subject(e) != "bus_down b" || !strings.Contains(e.Text, "/dev/mallgrid-no-such-port") {
		t.Fatalf("event = %+v; want bus_down of b naming its port", e)
	}
	var health web.HealthView
	waitFor(t, 10*time.Second, "bus a live", func() bool {
		health = web.HealthView{}
		getJSON(t, base+"/healthz", &health)
		return len(health.Problems) == 1
	})
	if p := health.Problems[0]; !strings.HasPrefix(p, "bus b: port /dev/mallgrid-no-such-port cannot be opened since ") || !strings.Contains(p, "no such file") {
		t.Errorf("problem = %q; want bus b's port and why", p)
	}
	// The port is retried after 1 s and 2 s: no second event.
	select {
	case e := <-stream:
		t.Errorf("event %+v while the port stays gone; want none", e)
	case <-time.After(3500 * time.Millisecond):
	}
}
