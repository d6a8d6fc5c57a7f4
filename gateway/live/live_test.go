package live

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "l.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A subscriber gets what is published, in order; one that falls behind is
// dropped (its channel closed), never waited for; the store keeps the
// events for it to catch up.
func TestHub_PublishAndSlowSubscriber(t *testing.T) {
	db := openStore(t)
	h := NewHub(db, nil)
	fast, stopFast := h.Subscribe()
	defer stopFast()
	slow, stopSlow := h.Subscribe()
	defer stopSlow()
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var stored []store.Event
	for i := range subscriberBuffer + 1 {
		evs, err := db.PutControl(nil, store.Event{Time: at, Kind: "test", Text: string(rune('a' + i%26))})
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, evs...)
		h.Publish(evs)
		if i < subscriberBuffer {
			if got := <-fast; got.ID != evs[0].ID {
				t.Fatalf("fast subscriber got event %d; want %d", got.ID, evs[0].ID)
			}
		}
	}
	<-fast // the last one
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow subscriber got %d events before it was dropped; want %d (its buffer)", n, subscriberBuffer)
	}
	missed, err := h.After(stored[n-1].ID, 10)
	if err != nil || len(missed) != 1 || missed[0].ID != stored[n].ID {
		t.Errorf("After(%d) = %v, %v; want the one event the slow subscriber missed", stored[n-1].ID, missed, err)
	}
}

// The picture keeps the latest committed reading; a relay state read back
// after a command replaces the reading's.
func TestPicture_UpdateAndRelay(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, role: public}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := New(cfg, "test", "", time.Now)
	if got := p.Relay("M-1"); got != "" {
		t.Errorf("relay before any reading = %q; want none", got)
	}
	t0 := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	p.Update(store.Reading{Meter: "M-1", Time: t0, ImportWh: 1500, Relay: "closed"}, t0.Add(-time.Second))
	p.SetRelay("M-1", "open", t0.Add(2*time.Second))
	if got := p.Relay("M-1"); got != "open" {
		t.Errorf("relay after a read-back = %q; want open", got)
	}
	// A reading begun before the read-back may have read the relay before
	// the command: it does not bring the old state back.
	p.Update(store.Reading{Meter: "M-1", Time: t0.Add(3 * time.Second), ImportWh: 1501, Relay: "closed"}, t0.Add(time.Second))
	if got := p.Relay("M-1"); got != "open" {
		t.Errorf("relay after a reading begun before the read-back = %q; want open (the confirmed state)", got)
	}
	if st, _, ok := p.RelayConfirmed("M-1"); !ok || st != "open" {
		t.Errorf("RelayConfirmed = %q, %v; want open, true", st, ok)
	}
	// A reading begun after it is the truth again, whatever it says.
	p.Update(store.Reading{Meter: "M-1", Time: t0.Add(5 * time.Second), ImportWh: 1501, Relay: "closed"}, t0.Add(4*time.Second))
	if got := p.Relay("M-1"); got != "closed" {
		t.Errorf("relay after a reading begun after the read-back = %q; want closed", got)
	}
	if _, _, ok := p.RelayConfirmed("M-1"); ok {
		t.Error("RelayConfirmed still set after a fresher reading")
	}
	ms := p.Meters()
	if len(ms) != 1 || ms[0].ID != "M-1" {
		t.Fatalf("Meters = %+v; want M-1", ms)
	}
}

// A clock stepped back after a command makes every later reading seem to
// have begun before the read-back: the read-back stands for a bounded
// time only, then the readings are believed again.
func TestPicture_ConfirmationOutlivesNoClockStep(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, role: public}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := New(cfg, "test", "", time.Now)
	mono := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	p.monotonic = func() time.Time { return mono }
	t0 := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	p.SetRelay("M-1", "open", t0)
	// The clock steps back an hour; the relay is closed at the meter.
	back := t0.Add(-time.Hour)
	p.Update(store.Reading{Meter: "M-1", Time: back.Add(time.Second), Relay: "closed"}, back)
	if got := p.Relay("M-1"); got != "open" {
		t.Fatalf("right after the step: %q; want the read-back's open (the reading seems older)", got)
	}
	mono = mono.Add(confirmedFor + time.Second)
	p.Update(store.Reading{Meter: "M-1", Time: back.Add(3 * time.Minute), Relay: "closed"}, back.Add(3*time.Minute))
	if got := p.Relay("M-1"); got != "closed" {
		t.Errorf("%s after the read-back: %q; want the readings' closed", confirmedFor, got)
	}
	if _, _, ok := p.RelayConfirmed("M-1"); ok {
		t.Error("the read-back still outranks readings")
	}
}

// Each change of a meter takes the next sequence number: MetersSince
// gives the meters changed after a number, every meter for a number the
// picture did not give, and each view's kept encoding is json.Marshal's.
func TestPicture_MetersSince(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, role: public}, {id: M-2, bus: b, address: 2, model: kpm33b, role: public},"+
		" {id: M-3, bus: b, address: 3, model: kpm33b, role: public}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := New(cfg, "test", "", time.Now)
	ids := func(vs []web.MeterView) string {
		var s []string
		for _, v := range vs {
			s = append(s, v.ID)
		}
		return strings.Join(s, " ")
	}
	all, seq0 := p.MetersSince(0)
	if ids(all) != "M-1 M-2 M-3" {
		t.Fatalf("MetersSince(0) = %s; want every meter", ids(all))
	}
	if got, _ := p.MetersSince(seq0); len(got) != 0 {
		t.Errorf("nothing changed, MetersSince(now) = %s; want none", ids(got))
	}
	t0 := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	p.Update(store.Reading{Meter: "M-2", Time: t0, ImportWh: 1500, Relay: "closed",
		Values: []store.Value{{Name: "voltage_a", Value: 229.87341}}}, t0)
	got, seq1 := p.MetersSince(seq0)
	if ids(got) != "M-2" || seq1 <= seq0 {
		t.Fatalf("after a reading of M-2: MetersSince = %s, %d; want M-2 and a number above %d", ids(got), seq1, seq0)
	}
	if v := got[0].Values["voltage_a"].Value; v != 229.9 {
		t.Errorf("voltage = %v; want 229.9 (0.1 V)", v)
	}
	enc := got[0].Encoded
	got[0].Encoded = nil
	if want, _ := json.Marshal(got[0].ListView()); string(enc) != string(want) {
		t.Errorf("kept encoding %s; want %s", enc, want)
	}
	p.SetRelay("M-3", "open", t0)
	var desired atomic.Value
	desired.Store("closed")
	p.SetDesired(func(id string) string {
		if id == "M-1" {
			return desired.Load().(string)
		}
		return "closed"
	})
	desired.Store("open")
	got, seq2 := p.MetersSince(seq1)
	if ids(got) != "M-1 M-3" {
		t.Errorf("after a read-back of M-3 and M-1's desired state: MetersSince = %s; want M-1 M-3", ids(got))
	}
	if got, _ := p.MetersSince(seq2); len(got) != 0 {
		t.Errorf("MetersSince(latest) = %s; want none", ids(got))
	}
	for _, n := range []uint64{seq2 + 1, p.base - 1} { // ahead; another run's
		if got, _ := p.MetersSince(n); ids(got) != "M-1 M-2 M-3" {
			t.Errorf("MetersSince(%d), a number it did not give = %s; want every meter", n, ids(got))
		}
	}
}

// An MQTT meter sends its values and its counters in messages of their
// own: whichever comes, the picture shows both, the newest of each.
func TestPicture_ValuesAndCountersApart(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, role: public}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	values := store.Reading{Meter: "M-1", Time: t0, Values: []store.Value{{Name: "power", Value: 1460}}, Relay: "unknown"}
	counters := store.Reading{Meter: "M-1", Time: t0.Add(time.Second), ImportWh: 1_000_002, Relay: "closed"}
	for name, steps := range map[string][]func(p *Picture){
		"values first":   {func(p *Picture) { p.UpdateValues(values, values.Time) }, func(p *Picture) { p.Update(counters, counters.Time) }},
		"counters first": {func(p *Picture) { p.Update(counters, counters.Time) }, func(p *Picture) { p.UpdateValues(values, values.Time) }},
	} {
		p := New(cfg, "test", "", time.Now)
		for _, step := range steps {
			step(p)
		}
		m := p.Meters()[0]
		if m.ImportKWh != "1000.002" || m.Values["power"].Value != 1460 || m.Relay.Actual != "closed" {
			t.Errorf("%s: %s kWh, power %v, relay %s; want 1000.002, 1460, closed", name, m.ImportKWh, m.Values["power"].Value, m.Relay.Actual)
		}
	}
}

// The statements wait at start until every bus has cycled since.
func TestPicture_CycledSince(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: a, port: /dev/ttyUSB0}, {name: b, port: /dev/ttyUSB1}]\n"+
		"meters: [{id: M-1, bus: a, address: 1, model: kpm33b, role: public}, {id: M-2, bus: b, address: 1, model: kpm33b, role: public}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := New(cfg, "test", "", func() time.Time { return start })
	if p.CycledSince(start) {
		t.Fatal("cycled before any cycle")
	}
	for i, b := range cfg.Buses {
		p.CycleDone(b.Name, start.Add(-time.Minute), start.Add(-time.Second)) // before the start: not counted
		if p.CycledSince(start) {
			t.Fatalf("cycled with bus %s's cycle ended before the start", b.Name)
		}
		p.CycleDone(b.Name, start, start.Add(time.Second))
		if got, want := p.CycledSince(start), i == len(cfg.Buses)-1; got != want {
			t.Fatalf("after bus %s: %v; want %v", b.Name, got, want)
		}
	}
}

// A reload's new picture shows each meter kept as it was — online, with
// its last answer — until its new poller has asked it, and for carriedFor
// at most; once asked, the poller's state counts, with the last answer
// before the reload until it has one of its own. A meter moved to another
// address, and the meters of a bus on another port, start unknown; the bus
// kept keeps its last cycle.
func TestPicture_Carry(t *testing.T) {
	parse := func(portB string, addrA2 int) *config.Config {
		cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf("site: {name: x}\nbuses: [{name: a, port: /dev/ttyUSB0}, {name: b, port: %s}]\n"+
			"meters:\n  - {id: M-a1, bus: a, address: 1, model: kpm33b, role: public}\n  - {id: M-a2, bus: a, address: %d, model: kpm33b, role: public}\n"+
			"  - {id: M-b1, bus: b, address: 1, model: kpm33b, role: public}\n", portB, addrA2)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	seen := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	answered := func(id string) poll.MeterStatus {
		return poll.MeterStatus{ID: id, Online: true, Stats: poll.Stats{Requests: 40, LastSeen: seen}}
	}
	old := New(parse("/dev/ttyUSB1", 2), "test", "", time.Now)
	old.SetStatus("a", func() []poll.MeterStatus { return []poll.MeterStatus{answered("M-a1"), answered("M-a2")} })
	old.SetStatus("b", func() []poll.MeterStatus { return []poll.MeterStatus{answered("M-b1")} })
	old.CycleDone("a", seen.Add(-time.Second), seen)

	lv := New(parse("/dev/ttyUSB9", 7), "test", "", time.Now)
	mono := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	lv.monotonic = func() time.Time { return mono }
	var a []poll.MeterStatus // bus a's new poller: nothing asked yet
	lv.SetStatus("a", func() []poll.MeterStatus { return a })
	lv.SetStatus("b", func() []poll.MeterStatus { return nil })
	lv.Carry(old, []string{"a"})

	view := func(id string) web.MeterView {
		t.Helper()
		for _, m := range lv.Meters() {
			if m.ID == id {
				return m
			}
		}
		t.Fatalf("no view of %s", id)
		return web.MeterView{}
	}
	if m := view("M-a1"); !m.Online || m.LastSeen == nil || !m.LastSeen.Equal(seen) {
		t.Errorf("M-a1 right after the reload: online %v, last seen %v; want online, %v", m.Online, m.LastSeen, seen)
	}
	for _, id := range []string{"M-a2", "M-b1"} { // moved; on another port
		if m := view(id); m.Online || m.LastSeen != nil {
			t.Errorf("%s right after the reload: online %v, last seen %v; want offline, never seen", id, m.Online, m.LastSeen)
		}
	}
	if st := lv.Status(); !st.Buses[0].LastCycle.Equal(seen) || !st.Buses[1].LastCycle.IsZero() {
		t.Errorf("last cycles after the reload: a %v, b %v; want a's before, none for b", st.Buses[0].LastCycle, st.Buses[1].LastCycle)
	}

	// Asked once, without an answer yet: the poller's offline, the last
	// answer still the one before.
	a = []poll.MeterStatus{{ID: "M-a1", Stats: poll.Stats{Requests: 1, Errors: map[string]int64{"timeout": 1}}}}
	if m := view("M-a1"); m.Online || m.LastSeen == nil || !m.LastSeen.Equal(seen) {
		t.Errorf("M-a1 asked without an answer: online %v, last seen %v; want offline, %v", m.Online, m.LastSeen, seen)
	}
	// Not asked for carriedFor: no longer taken for online.
	a = nil
	mono = mono.Add(carriedFor)
	if m := view("M-a1"); m.Online || m.LastSeen == nil {
		t.Errorf("M-a1 %v after the reload, not asked: online %v, last seen %v; want offline, its last answer", carriedFor, m.Online, m.LastSeen)
	}
	if ps := lv.PollStatus(); !ps["M-a1"].Stats.LastSeen.Equal(seen) {
		t.Errorf("PollStatus of M-a1: %+v; want its last answer", ps["M-a1"])
	}
}

// Reloads in a row, each within carriedFor of the one before, with a bus
// kept whose new pollers never get to ask M-a1 (its port no longer
// opens): the state carried from the last poller that asked it stands
// for carriedFor after that poller's reload, not carriedFor after each
// reload. Once a poller has asked it again, the limit starts afresh.
func TestPicture_CarryOverReloadsInARow(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: a, port: /dev/ttyUSB0}]\n"+
		"meters:\n  - {id: M-a1, bus: a, address: 1, model: kpm33b, role: public}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	mono := seen
	clock := func() time.Time { return mono }
	answered := []poll.MeterStatus{{ID: "M-a1", Online: true, Stats: poll.Stats{Requests: 5, LastSeen: seen}}}
	prev := New(cfg, "t", "", time.Now)
	prev.monotonic = clock
	prev.SetStatus("a", func() []poll.MeterStatus { return answered })
	online := func(lv *Picture) bool {
		t.Helper()
		ms := lv.Meters()
		if len(ms) != 1 {
			t.Fatalf("%d meter views; want 1", len(ms))
		}
		return ms[0].Online && lv.PollStatus()["M-a1"].Online
	}
	first := mono // the reload after M-a1's last poller
	for i := 1; i <= 10; i++ {
		if i > 1 {
			mono = mono.Add(90 * time.Second)
		}
		lv := New(cfg, "t", "", time.Now)
		lv.monotonic = clock
		lv.Carry(prev, []string{"a"}) // no poller: the bus's port does not open
		prev = lv
		if got, want := online(lv), mono.Before(first.Add(carriedFor)); got != want {
			t.Fatalf("M-a1 at reload %d, %v after the last poller's: online %v; want %v", i, mono.Sub(first), got, want)
		}
	}
	mono = mono.Add(time.Minute)
	if online(prev) {
		t.Errorf("M-a1 %v after its last answer, never asked since: online; want offline", mono.Sub(seen))
	}
	if got := prev.PollStatus()["M-a1"].Stats.LastSeen; !got.Equal(seen) {
		t.Errorf("M-a1's last answer after the reloads: %v; want %v", got, seen)
	}

	// A poller that asks it again: the next reload carries its state for
	// carriedFor afresh.
	prev.SetStatus("a", func() []poll.MeterStatus {
		return []poll.MeterStatus{{ID: "M-a1", Online: true, Stats: poll.Stats{Requests: 1, LastSeen: seen.Add(time.Hour)}}}
	})
	lv := New(cfg, "t", "", time.Now)
	lv.monotonic = clock
	lv.Carry(prev, []string{"a"})
	mono = mono.Add(carriedFor - time.Second)
	if !online(lv) {
		t.Errorf("M-a1 %v after a reload that followed its answer: offline; want online", carriedFor-time.Second)
	}
}
