package mqttmeters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/compere"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/mqttlink"
	"mallgrid/gateway/poll"
)

// fakeLink is the meters' side of a link: the test publishes what they
// send, and answer decides what a meter replies to each command.
type fakeLink struct {
	msgs   chan mqttlink.Message
	mu     sync.Mutex
	sent   []compere.Command
	answer func(topic string, cmd map[string]string) (replyTopic string, reply map[string]string)
}

func newFakeLink() *fakeLink { return &fakeLink{msgs: make(chan mqttlink.Message, 100)} }

func (l *fakeLink) Messages() <-chan mqttlink.Message { return l.msgs }

func (l *fakeLink) Publish(ctx context.Context, topic string, payload []byte) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("publish without a deadline")
	}
	var cmd map[string]string
	if err := json.Unmarshal(payload, &cmd); err != nil {
		return err
	}
	l.mu.Lock()
	l.sent = append(l.sent, compere.Command{Topic: topic, Payload: payload})
	answer := l.answer
	l.mu.Unlock()
	if answer != nil {
		if rt, reply := answer(topic, cmd); reply != nil {
			raw, _ := json.Marshal(reply)
			go func() { l.msgs <- mqttlink.Message{Topic: rt, Payload: raw} }()
		}
	}
	return nil
}

func (l *fakeLink) commands(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.sent {
		if strings.HasPrefix(c.Topic, prefix) {
			out = append(out, c.Topic+" "+string(c.Payload))
		}
	}
	return out
}

func (l *fakeLink) publish(topic string, fields map[string]any) {
	raw, _ := json.Marshal(fields)
	l.msgs <- mqttlink.Message{Topic: topic, Payload: raw}
}

// sink collects the cycles.
type sink struct {
	mu     sync.Mutex
	cycles []poll.Cycle
}

func (s *sink) Cycle(_ context.Context, c poll.Cycle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Results = append([]poll.Result(nil), c.Results...)
	s.cycles = append(s.cycles, c)
}

func (s *sink) results() []poll.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []poll.Result
	for _, c := range s.cycles {
		out = append(out, c.Results...)
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var shanghai = time.FixedZone("CST", 8*3600)

// A meter's own clock in the site's zone, as it sends it.
func meterClock(t time.Time) string { return t.In(shanghai).Format("20060102150405") }

type rig struct {
	link  *fakeLink
	sink  *sink
	clock *clock
	bus   *Bus
	stop  func()
}

const (
	devA = "33B1225950027"
	devB = "37B1225950031"
)

func newRig(t *testing.T, cfg Config) *rig { return newRigOutput(t, cfg, 0) }

// newRigOutput is newRig with M-2 (a KPM37) switched on output m2Output.
func newRigOutput(t *testing.T, cfg Config, m2Output int) *rig {
	t.Helper()
	rg := &rig{link: newFakeLink(), sink: &sink{}, clock: &clock{t: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}}
	kpm33b, _ := compere.ModelByName("kpm33b")
	kpm37, _ := compere.ModelByName("kpm37")
	cfg.Bus, cfg.Location, cfg.Now, cfg.Log = "floor3", shanghai, rg.clock.now, zerolog.Nop()
	if cfg.Gather == 0 {
		cfg.Gather = 5 * time.Millisecond
	}
	b, err := New(cfg, rg.link, []Meter{{ID: "M-1", Device: devA, Model: kpm33b}, {ID: "M-2", Device: devB, Model: kpm37, Output: m2Output}}, rg.sink)
	if err != nil {
		t.Fatal(err)
	}
	rg.bus = b
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	rg.stop = func() { once.Do(func() { stopRun(t, cancel, done) }) }
	t.Cleanup(rg.stop)
	return rg
}

// stopRun cancels a bus's Run and checks it returned nil.
func stopRun(t *testing.T, cancel func(), done chan error) {
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Run did not return after cancel")
	}
}

// waitFor polls cond: the bus runs on its own goroutine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// confirm makes every meter confirm every command (code 01).
func confirm(topic string, cmd map[string]string) (string, map[string]string) {
	switch {
	case strings.HasPrefix(topic, "MQTT_TELECTRL_"):
		return "MQTT_TELECTRL_REP", map[string]string{"id": deviceOf(topic), "do1": cmd["do1"], "oprid": cmd["oprid"], "code": "01"}
	case strings.HasPrefix(topic, "MQTT_SETTIME_"):
		return "MQTT_METER_TIME_REP", map[string]string{"id": deviceOf(topic), "oprid": cmd["oprid"], "code": "01"}
	case strings.HasPrefix(topic, "MQTT_COMMOD_SET_"):
		return "MQTT_COMMOD_SET_REP", map[string]string{"id": deviceOf(topic), "oprid": cmd["oprid"], "code": "01"}
	}
	return "", nil
}

func deviceOf(topic string) string {
	for _, d := range []string{devA, devB} {
		if strings.HasSuffix(topic, d[len(d)-8:]) {
			return d
		}
	}
	return ""
}

// RT_DATA becomes a reading of values alone and ENY_NOW one of counters
// alone, exact to the Wh, each with the relay state the meter last
// reported and the time the gateway received it.
func TestBus_Readings(t *testing.T) {
	rg := newRig(t, Config{})
	rg.link.answer = confirm
	at := rg.clock.now()
	rg.link.publish("MQTT_TELEIND", map[string]any{"id": devA, "value": "00000000@00000001", "time": meterClock(at)})
	rg.link.publish("MQTT_RT_DATA", map[string]any{"id": devA, "ia": 9.735, "ua": 229.097, "pa": 2.2229, "zyggl": 6.6905, "zglys": 0.996,
		"f": "49.959", "time": meterClock(at), "isend": "1"})
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 31.057, "zyjsz": 3.119, "zyfsz": 10.341, "zypsz": 12.656,
		"zyvsz": 4.940, "time": meterClock(at), "isend": "1"})
	waitFor(t, "two readings", func() bool { return len(rg.sink.results()) == 2 })
	res := rg.sink.results()
	rt, eny := res[0].Reading, res[1].Reading
	if _, ok := rt.ImportWh(); ok || res[0].Meter != "M-1" || rt.Meter != "M-1" || !rt.Time.Equal(at) || rt.Relay != meter.RelayClosed {
		t.Errorf("RT reading: %+v; want values alone, M-1, at %v, relay closed", res[0], at)
	}
	if p, _ := rt.Value(meter.Power); p != 6690.5 {
		t.Errorf("power = %v W; want 6690.5 (6.6905 kW)", p)
	}
	if f, _ := rt.Value(meter.Frequency); f != 49.959 {
		t.Errorf("frequency from a string = %v; want 49.959", f)
	}
	if wh, ok := eny.ImportWh(); !ok || wh != 31057 {
		t.Errorf("import = %d, %v; want 31,057 Wh exactly", wh, ok)
	}
	if wh, _ := eny.EnergyWh(meter.Valley); wh != 4940 {
		t.Errorf("valley = %d; want 4,940", wh)
	}
	if _, ok := eny.Value(meter.Power); ok || eny.Relay != meter.RelayClosed {
		t.Errorf("ENY reading holds power or relay %s; want counters alone, relay closed", eny.Relay)
	}
}

// A zero RT frame is dropped and counted; a zero ENY frame goes on, for
// the counter rules to refuse and report. A message of a meter not on the
// bus, or not understood, is no reading.
func TestBus_ZeroFramesAndStrangers(t *testing.T) {
	rg := newRig(t, Config{})
	at := meterClock(rg.clock.now())
	rg.link.publish("MQTT_RT_DATA", map[string]any{"id": devA, "ia": 0, "ua": 0, "zyggl": 0, "time": at, "isend": "1"})
	rg.link.publish("MQTT_RT_DATA", map[string]any{"id": "33B9999999999", "ia": 1, "time": at, "isend": "1"})
	rg.link.msgs <- mqttlink.Message{Topic: "MQTT_RT_DATA", Payload: []byte(`{"id":`)}
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 0, "fygsz": 0, "time": at, "isend": "1"})
	waitFor(t, "the zero ENY frame", func() bool { return len(rg.sink.results()) == 1 })
	if wh, ok := rg.sink.results()[0].Reading.ImportWh(); !ok || wh != 0 {
		t.Errorf("the zero ENY frame = %d, %v; want passed on as 0", wh, ok)
	}
	st := rg.bus.Status()
	if st[0].Stats.Errors["zero_frame"] != 1 || st[0].Stats.Requests != 2 {
		t.Errorf("M-1 stats = %+v; want 2 messages, one zero frame", st[0].Stats)
	}
}

// A KPM37 over WiFi splits RT_DATA over packets: one reading at the end.
func TestBus_SplitMessageJoined(t *testing.T) {
	rg := newRig(t, Config{})
	at := meterClock(rg.clock.now())
	rg.link.publish("MQTT_RT_DATA", map[string]any{"id": devB, "ua": 230.1, "ub": 229.9, "time": at, "isend": "0"})
	rg.link.publish("MQTT_RT_DATA", map[string]any{"id": devB, "ia": 5.5, "ib": 5.4, "time": at, "isend": "0"})
	rg.link.publish("MQTT_RT_DATA", map[string]any{"id": devB, "zyggl": 3.3, "ta": 41.5, "time": at, "isend": "1"})
	waitFor(t, "the joined reading", func() bool { return len(rg.sink.results()) == 1 })
	rd := rg.sink.results()[0].Reading
	for q, want := range map[meter.Quantity]float64{meter.VoltageA: 230.1, meter.CurrentB: 5.4, meter.Power: 3300, meter.TempA: 41.5} {
		if v, ok := rd.Value(q); !ok || v != want {
			t.Errorf("%s = %v, %v; want %v from its packet", q, v, ok, want)
		}
	}
}

// A relay command is confirmed by the reply carrying its operation id; a
// refusal (02) is tried again; a meter that never answers fails the
// command after its tries.
func TestBus_SwitchRelay(t *testing.T) {
	rg := newRig(t, Config{RelayWait: 50 * time.Millisecond, RelayTries: 3})
	refusals := 1
	var mu sync.Mutex
	rg.link.answer = func(topic string, cmd map[string]string) (string, map[string]string) {
		mu.Lock()
		defer mu.Unlock()
		if !strings.HasPrefix(topic, "MQTT_TELECTRL_") {
			return confirm(topic, cmd)
		}
		if deviceOf(topic) == devB {
			return "", nil // M-2 never answers
		}
		code := "01"
		if refusals > 0 {
			refusals--
			code = "02"
		}
		return "MQTT_TELECTRL_REP", map[string]string{"id": devA, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": code, "msg": "busy"}
	}
	out, err := rg.bus.SwitchRelay(context.Background(), "M-1", false)
	if err != nil || out.State != meter.RelayOpen {
		t.Fatalf("open M-1 = %+v, %v; want open after one refusal", out, err)
	}
	sent := rg.link.commands("MQTT_TELECTRL_25950027")
	if len(sent) != 2 || !strings.Contains(sent[0], `{"do1":"0","oprid":"`) {
		t.Errorf("commands = %q; want two, do1 0", sent)
	}
	var first, second map[string]string
	_ = json.Unmarshal([]byte(sent[0][strings.IndexByte(sent[0], ' ')+1:]), &first)
	_ = json.Unmarshal([]byte(sent[1][strings.IndexByte(sent[1], ' ')+1:]), &second)
	if len(first["oprid"]) != 32 || first["oprid"] == second["oprid"] {
		t.Errorf("operation ids %q, %q; want 32 characters, a new one each try", first["oprid"], second["oprid"])
	}
	// The next reading carries the state the meter confirmed.
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 31.1, "time": meterClock(rg.clock.now()), "isend": "1"})
	waitFor(t, "a reading", func() bool { return len(rg.sink.results()) == 1 })
	if r := rg.sink.results()[0].Reading.Relay; r != meter.RelayOpen {
		t.Errorf("relay in the next reading = %s; want open", r)
	}
	out, err = rg.bus.SwitchRelay(context.Background(), "M-2", true)
	if err == nil || out.Err == nil || !strings.Contains(err.Error(), "after 3 tries") || len(rg.link.commands("MQTT_TELECTRL_25950031")) != 3 {
		t.Errorf("M-2, silent = %+v, %v; want it failed after 3 tries", out, err)
	}
	if _, err := rg.bus.SwitchRelay(context.Background(), "M-9", true); err == nil {
		t.Error("a meter not on the bus: no error")
	}
}

// A meter silent for three upload intervals gets a failed read once a
// second; one heard again gets none.
func TestBus_SilenceIsAFailedRead(t *testing.T) {
	rg := newRig(t, Config{Upload: 30 * time.Second})
	rg.link.answer = confirm
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 1, "time": meterClock(rg.clock.now()), "isend": "1"})
	waitFor(t, "a reading", func() bool { return len(rg.sink.results()) == 1 })
	rg.clock.add(89 * time.Second)
	time.Sleep(30 * time.Millisecond)
	if n := len(rg.sink.results()); n != 1 {
		t.Fatalf("%d results after 89 s; want no failed read yet", n)
	}
	rg.clock.add(2 * time.Second)
	waitFor(t, "failed reads of both meters", func() bool { return len(rg.sink.results()) >= 3 })
	var failed []string
	for _, r := range rg.sink.results()[1:] {
		if !errors.Is(r.Err, ErrSilent) {
			t.Errorf("result %+v; want ErrSilent", r)
		}
		failed = append(failed, r.Meter)
	}
	if fmt.Sprint(failed) != "[M-1 M-2]" {
		t.Errorf("failed reads of %v; want M-1 and M-2 once each this second", failed)
	}
	if st := rg.bus.Status(); st[0].Online || st[1].Online {
		t.Errorf("status = %+v; want both offline", st)
	}
}

// The first message of a meter sets its upload interval; a clock in 2005
// is set to the gateway's time, in the site's zone, once within the hour.
func TestBus_Upkeep(t *testing.T) {
	rg := newRig(t, Config{Upload: time.Minute})
	rg.link.answer = confirm
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 1, "time": "20050101000012", "isend": "1"})
	waitFor(t, "both upload intervals set", func() bool { return len(rg.link.commands("MQTT_COMMOD_SET_25950027")) == 2 })
	if c := rg.link.commands("MQTT_COMMOD_SET_25950027")[0]; !strings.Contains(c, `"Cmd":"0000","value":"60"`) {
		t.Errorf("upload command %s; want real-time every 60 s", c)
	}
	if c := rg.link.commands("MQTT_COMMOD_SET_25950027")[1]; !strings.Contains(c, `"Cmd":"0001","value":"1"`) {
		t.Errorf("upload command %s; want the counters every minute", c)
	}
	waitFor(t, "the upload confirmed", func() bool {
		rg.bus.mu.Lock()
		defer rg.bus.mu.Unlock()
		return rg.bus.byID["M-1"].upload && !rg.bus.byID["M-1"].upkeeping
	})
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 1, "time": "20050101000112", "isend": "1"})
	waitFor(t, "the clock set", func() bool { return len(rg.link.commands("MQTT_SETTIME_25950027")) == 1 })
	want := fmt.Sprintf(`"time":"%s"`, meterClock(rg.clock.now()))
	if c := rg.link.commands("MQTT_SETTIME_25950027")[0]; !strings.Contains(c, want) {
		t.Errorf("clock command %s; want %s (the gateway's time in the site's zone)", c, want)
	}
	waitFor(t, "the clock confirmed", func() bool {
		rg.bus.mu.Lock()
		defer rg.bus.mu.Unlock()
		return !rg.bus.byID["M-1"].clockSet.IsZero() && !rg.bus.byID["M-1"].upkeeping
	})
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 1, "time": "20050101000212", "isend": "1"})
	waitFor(t, "three readings", func() bool { return len(rg.sink.results()) == 3 })
	time.Sleep(20 * time.Millisecond)
	if n := len(rg.link.commands("MQTT_SETTIME_")); n != 1 {
		t.Errorf("%d clock commands; want one within the hour", n)
	}
}

// The tries share the caller's deadline (enforcement gives 10 s): a silent
// meter is asked three times within it, not once for all of it; the failed
// command leaves the relay's state unknown, and a confirmation that comes
// after all (the meter's session kept the command) is taken as the state.
func TestBus_RelayTriesWithinTheDeadlineThenLateConfirmation(t *testing.T) {
	rg := newRig(t, Config{RelayWait: 10 * time.Second, RelayTries: 3})
	rg.link.publish("MQTT_RT_DATA", map[string]any{"id": devA, "ua": 230, "time": meterClock(rg.clock.now()), "isend": "1"})
	waitFor(t, "a reading", func() bool { return len(rg.sink.results()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	began := time.Now()
	out, err := rg.bus.SwitchRelay(ctx, "M-1", false)
	if took := time.Since(began); err == nil || took > time.Second || len(rg.link.commands("MQTT_TELECTRL_25950027")) != 3 ||
		!strings.Contains(err.Error(), "after 3 tries") || out.State != meter.RelayUnknown {
		t.Fatalf("silent meter: %+v, %v in %s, %d commands; want 3 tries within the 600 ms, state unknown", out, err, took,
			len(rg.link.commands("MQTT_TELECTRL_25950027")))
	}
	// The meter comes back and carries out the last command it was sent.
	var last map[string]string
	sent := rg.link.commands("MQTT_TELECTRL_25950027")
	_ = json.Unmarshal([]byte(sent[2][strings.IndexByte(sent[2], ' ')+1:]), &last)
	rg.link.publish("MQTT_TELECTRL_REP", map[string]any{"id": devA, "do1": "0", "oprid": last["oprid"], "code": "01"})
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 5, "time": meterClock(rg.clock.now()), "isend": "1"})
	waitFor(t, "the next reading", func() bool { return len(rg.sink.results()) == 2 })
	if r := rg.sink.results()[1].Reading.Relay; r != meter.RelayOpen {
		t.Errorf("relay after the late confirmation = %s; want open", r)
	}
}

// A reply carrying another meter's operation id confirms nothing: every
// meter of a bus shares its credentials.
func TestBus_ForeignReplyConfirmsNothing(t *testing.T) {
	rg := newRig(t, Config{RelayWait: 200 * time.Millisecond, RelayTries: 1})
	rg.link.answer = func(topic string, cmd map[string]string) (string, map[string]string) {
		return "MQTT_TELECTRL_REP", map[string]string{"id": devB, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": "01"} // M-2 answers for M-1
	}
	if _, err := rg.bus.SwitchRelay(context.Background(), "M-1", false); err == nil {
		t.Fatal("a reply from another meter confirmed M-1's command")
	}
	if st := rg.bus.Status(); st[1].Stats.Errors["foreign_reply"] != 1 {
		t.Errorf("M-2 stats = %+v; want the foreign reply counted", st[1].Stats)
	}
}

// A meter that reports its relay's changes and, having confirmed a
// command, reports the other state, failed it: tried again, then failed.
func TestBus_ConfirmedThenReportedOtherwise(t *testing.T) {
	rg := newRig(t, Config{RelayWait: time.Second, RelayTries: 2, Settle: 200 * time.Millisecond})
	at := meterClock(rg.clock.now())
	rg.link.publish("MQTT_TELEIND", map[string]any{"id": devB, "value": "00000000@00000001", "time": at})
	waitFor(t, "the report taken", func() bool {
		rg.bus.mu.Lock()
		defer rg.bus.mu.Unlock()
		return rg.bus.byID["M-2"].reportsDO
	})
	rg.link.answer = func(topic string, cmd map[string]string) (string, map[string]string) {
		// Confirms the cut-off, then its relay reports closed again.
		go func() {
			time.Sleep(20 * time.Millisecond)
			rg.link.publish("MQTT_TELEIND", map[string]any{"id": devB, "value": "00000000@00000001", "time": at})
		}()
		return "MQTT_TELECTRL_REP", map[string]string{"id": devB, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": "01"}
	}
	out, err := rg.bus.SwitchRelay(context.Background(), "M-2", false)
	if err == nil || !strings.Contains(err.Error(), "reported it otherwise") || len(rg.link.commands("MQTT_TELECTRL_25950031")) != 2 {
		t.Errorf("= %+v, %v; want two tries, failed: reported otherwise", out, err)
	}
	// One that holds: confirmed and reported open.
	rg.link.answer = func(topic string, cmd map[string]string) (string, map[string]string) {
		go rg.link.publish("MQTT_TELEIND", map[string]any{"id": devB, "value": "00000000@00000000", "time": at})
		return "MQTT_TELECTRL_REP", map[string]string{"id": devB, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": "01"}
	}
	if out, err := rg.bus.SwitchRelay(context.Background(), "M-2", false); err != nil || out.State != meter.RelayOpen {
		t.Errorf("a relay that holds = %+v, %v; want open", out, err)
	}
}

// A KPM37 whose second output switches the circuit is commanded on do2,
// and its reports are read on do2.
func TestBus_SecondOutput(t *testing.T) {
	rg := newRigOutput(t, Config{RelayWait: time.Second}, 2)
	rg.link.answer = func(topic string, cmd map[string]string) (string, map[string]string) {
		return "MQTT_TELECTRL_REP", map[string]string{"id": devB, "do2": cmd["do2"], "oprid": cmd["oprid"], "code": "01"}
	}
	if out, err := rg.bus.SwitchRelay(context.Background(), "M-2", false); err != nil || out.State != meter.RelayOpen {
		t.Fatalf("open M-2 on do2 = %+v, %v", out, err)
	}
	if sent := rg.link.commands("MQTT_TELECTRL_25950031"); len(sent) != 1 || !strings.Contains(sent[0], `{"do2":"0","oprid":"`) {
		t.Errorf("commands = %q; want do2 0", sent)
	}
	// do1 closed, do2 open: the circuit is off.
	rg.link.publish("MQTT_TELEIND", map[string]any{"id": devB, "value": "00000000@00000001", "time": meterClock(rg.clock.now())})
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devB, "zygsz": 1, "time": meterClock(rg.clock.now()), "isend": "1"})
	waitFor(t, "a reading", func() bool { return len(rg.sink.results()) == 1 })
	if r := rg.sink.results()[0].Reading.Relay; r != meter.RelayOpen {
		t.Errorf("relay read on do2 = %s; want open", r)
	}
	kpm33b, _ := compere.ModelByName("kpm33b")
	if _, err := New(Config{}, rg.link, []Meter{{ID: "M-9", Device: devA, Model: kpm33b, Output: 2}}, rg.sink); err == nil {
		t.Error("do2 of a KPM33B: no error")
	}
}

// A meter slower than one try's share of the deadline still confirms: its
// reply to the first command, come during the second try, counts.
func TestBus_SlowReplyOfAnEarlierTryCounts(t *testing.T) {
	rg := newRig(t, Config{RelayWait: 10 * time.Second, RelayTries: 3})
	rg.link.answer = func(topic string, cmd map[string]string) (string, map[string]string) {
		go func() {
			time.Sleep(350 * time.Millisecond)
			rg.link.publish("MQTT_TELECTRL_REP", map[string]any{"id": devA, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": "01"})
		}()
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
	defer cancel()
	if out, err := rg.bus.SwitchRelay(ctx, "M-1", false); err != nil || out.State != meter.RelayOpen {
		t.Errorf("= %+v, %v; want open, confirmed by the first command's reply", out, err)
	}
}

// A report of the old state sent before the confirmation, then the new
// one: the command held.
func TestBus_StaleReportBeforeTheReply(t *testing.T) {
	rg := newRig(t, Config{RelayWait: time.Second, RelayTries: 1, Settle: 300 * time.Millisecond})
	at := meterClock(rg.clock.now())
	rg.link.publish("MQTT_TELEIND", map[string]any{"id": devB, "value": "00000000@00000001", "time": at})
	waitFor(t, "the report taken", func() bool {
		rg.bus.mu.Lock()
		defer rg.bus.mu.Unlock()
		return rg.bus.byID["M-2"].reportsDO
	})
	rg.link.answer = func(topic string, cmd map[string]string) (string, map[string]string) {
		go func() {
			rg.link.publish("MQTT_TELEIND", map[string]any{"id": devB, "value": "00000000@00000001", "time": at}) // still closed
			rg.link.publish("MQTT_TELECTRL_REP", map[string]any{"id": devB, "do1": cmd["do1"], "oprid": cmd["oprid"], "code": "01"})
			time.Sleep(50 * time.Millisecond)
			rg.link.publish("MQTT_TELEIND", map[string]any{"id": devB, "value": "00000000@00000000", "time": at}) // open
		}()
		return "", nil
	}
	if out, err := rg.bus.SwitchRelay(context.Background(), "M-2", false); err != nil || out.State != meter.RelayOpen {
		t.Errorf("= %+v, %v; want open: the last report says so", out, err)
	}
}

// A redelivered confirmation of an older command, after a newer one was
// confirmed, does not bring the older state back.
func TestBus_OldConfirmationRedelivered(t *testing.T) {
	rg := newRig(t, Config{RelayWait: time.Second})
	rg.link.answer = confirm
	if _, err := rg.bus.SwitchRelay(context.Background(), "M-1", false); err != nil {
		t.Fatal(err)
	}
	var cut map[string]string
	sent := rg.link.commands("MQTT_TELECTRL_25950027")
	_ = json.Unmarshal([]byte(sent[0][strings.IndexByte(sent[0], ' ')+1:]), &cut)
	if _, err := rg.bus.SwitchRelay(context.Background(), "M-1", true); err != nil {
		t.Fatal(err)
	}
	rg.link.publish("MQTT_TELECTRL_REP", map[string]any{"id": devA, "do1": "0", "oprid": cut["oprid"], "code": "01"})
	rg.link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 2, "time": meterClock(rg.clock.now()), "isend": "1"})
	waitFor(t, "a reading", func() bool { return len(rg.sink.results()) == 1 })
	if r := rg.sink.results()[0].Reading.Relay; r != meter.RelayClosed {
		t.Errorf("relay after a stale confirmation = %s; want closed (the last command's)", r)
	}
}

// A meter that keeps its own, longer upload interval (it refused the
// gateway's) is absent after three of its own, not of the gateway's.
func TestBus_SilenceByTheMetersOwnInterval(t *testing.T) {
	rg := newRig(t, Config{Upload: 30 * time.Second})
	rt := func() {
		rg.link.publish("MQTT_RT_DATA", map[string]any{"id": devA, "ua": 230, "time": meterClock(rg.clock.now()), "isend": "1"})
	}
	rt()
	waitFor(t, "a reading", func() bool { return len(rg.sink.results()) == 1 })
	rg.clock.add(5 * time.Minute)
	rt()
	waitFor(t, "two readings", func() bool { return len(rg.sink.results()) >= 2 })
	rg.clock.add(10 * time.Minute)
	time.Sleep(30 * time.Millisecond)
	if st := rg.bus.Status(); !st[0].Online {
		t.Errorf("M-1 10 min after its last upload, uploading every 5: offline; want online")
	}
	rg.clock.add(6 * time.Minute)
	waitFor(t, "M-1 offline", func() bool { return !rg.bus.Status()[0].Online })
}

// A message is acknowledged only once the bus has handled it, and what it
// gave reaches the sink even when the bus stops before its gather ends:
// its sender, told it was taken, will not send it again.
func TestBus_AcknowledgedMessagesReachTheSinkOnStop(t *testing.T) {
	rg := newRig(t, Config{Gather: time.Hour})
	var acked atomic.Int64
	var handledFirst atomic.Bool
	raw, _ := json.Marshal(map[string]any{"id": devA, "zygsz": 1, "time": meterClock(rg.clock.now()), "isend": "1"})
	rg.link.msgs <- mqttlink.NewMessage("MQTT_ENY_NOW", raw, func() {
		rg.bus.mu.Lock()
		handledFirst.Store(rg.bus.byID["M-1"].messages == 1)
		rg.bus.mu.Unlock()
		acked.Add(1)
	})
	waitFor(t, "the message acknowledged", func() bool { return acked.Load() == 1 })
	if !handledFirst.Load() {
		t.Error("acknowledged before it was handled")
	}
	if n := len(rg.sink.results()); n != 0 {
		t.Fatalf("%d results before the stop; want them gathered for an hour", n)
	}
	rg.stop()
	if got := rg.sink.results(); len(got) != 1 || got[0].Meter != "M-1" || got[0].Err != nil {
		t.Errorf("sink got %+v after the stop; want M-1's reading", got)
	}
}

// blockingSink holds the first cycle it is given until released: a
// commit that does not return.
type blockingSink struct {
	entered, release chan struct{}
	once             sync.Once
}

func (s *blockingSink) Cycle(context.Context, poll.Cycle) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
}

// Progress goes on while the bus idles, stops while a cycle is stuck in
// the Sink — though the reader still takes messages — and comes back when
// the Sink returns.
func TestBus_ProgressStopsWhileTheSinkIsStuck(t *testing.T) {
	kpm33b, _ := compere.ModelByName("kpm33b")
	var calls atomic.Int64
	link := newFakeLink()
	sk := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	b, err := New(Config{Bus: "floor3", Location: shanghai, Gather: 5 * time.Millisecond, Log: zerolog.Nop(), Progress: func() { calls.Add(1) }},
		link, []Meter{{ID: "M-1", Device: devA, Model: kpm33b}}, sk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	released := false
	defer func() {
		if !released {
			close(sk.release)
		}
		stopRun(t, cancel, done)
	}()
	waitFor(t, "progress while idle", func() bool { return calls.Load() >= 5 })

	link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 31.057, "time": meterClock(time.Now()), "isend": "1"})
	select {
	case <-sk.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the reading never reached the sink")
	}
	time.Sleep(20 * time.Millisecond) // a tick that looked just before the sink took the cycle
	stuck := calls.Load()
	time.Sleep(100 * time.Millisecond) // 20 ticks
	link.publish("MQTT_ENY_NOW", map[string]any{"id": devA, "zygsz": 31.060, "time": meterClock(time.Now()), "isend": "1"})
	time.Sleep(20 * time.Millisecond)
	if n := calls.Load() - stuck; n != 0 {
		t.Errorf("%d Progress calls while the sink was stuck; want none", n)
	}
	close(sk.release)
	released = true
	waitFor(t, "progress after the sink returned", func() bool { return calls.Load() >= stuck+5 })
}
