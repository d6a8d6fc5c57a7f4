package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/alarm"
	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/live"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// TestRuleEventKind: every alarm kind the rules raise has its raising and
// clearing event kinds here, and the store keeps alarms of exactly those.
func TestRuleEventKind(t *testing.T) {
	for _, k := range alarm.Kinds() {
		if got := ruleEventKind(k, true); got != k {
			t.Errorf("%s raised: event kind %q", k, got)
		}
		if got := ruleEventKind(k, false); got != alarm.ClearedKind(k) {
			t.Errorf("%s cleared: event kind %q; want %q", k, got, alarm.ClearedKind(k))
		}
		if store.AlarmSeverity(k) == "" {
			t.Errorf("%s: the store keeps no alarm of it", k)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(alarm.Kinds())), slices.Sorted(slices.Values(store.RuleAlarmKinds))) {
		t.Errorf("the rules raise %v; the store keeps %v", alarm.Kinds(), store.RuleAlarmKinds)
	}
	if ruleEventKind("bogus", true) != "" {
		t.Error("an unknown kind has an event kind")
	}
}

// feedValues commits one cycle with M-1's counter at wh and its values.
func (f *pipeFixture) feedValues(sec int, wh int64, relayOpen bool, values map[meter.Quantity]float64) {
	var rd meter.Reading
	rd.Set(meter.Import, float64(wh)/1000)
	for q, v := range values {
		rd.Set(q, v)
	}
	if relayOpen {
		rd.Relay = meter.RelayOpen
	} else {
		rd.Relay = meter.RelayClosed
	}
	rd.Meter, rd.Time = "M-1", f.t0.Add(time.Duration(sec)*time.Second)
	f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Reading: rd}}})
}

func (f *pipeFixture) alarmStates() string {
	f.t.Helper()
	list, err := f.db.Alarms("", 100)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		out = append(out, a.Kind+" "+a.State())
	}
	return strings.Join(out, ", ")
}

// TestRuleAlarms_ThroughThePipeline: a rule alarm is raised by the cycle
// that reads the condition, stored with it; after a restart with the rule
// turned off, ClearUnwatched clears the open alarm (a reading would not).
func TestRuleAlarms_ThroughThePipeline(t *testing.T) {
	f := newPipeFixture(t)
	overloaded := map[meter.Quantity]float64{meter.CurrentA: 30, meter.VoltageA: 220, meter.Power: 6600}
	f.feedValues(0, 1000, false, overloaded) // 30 A on a 10 A circuit: held 60 s by default
	f.feedValues(30, 1050, false, overloaded)
	if got := f.alarmStates(); got != "" {
		t.Fatalf("after 30 s at 30 A: %q; want nothing yet", got)
	}
	f.feedValues(70, 1100, false, overloaded)
	if got := f.alarmStates(); got != "overload active" {
		t.Fatalf("after 70 s at 30 A: %q; want an active overload", got)
	}
	// Turn the rule off and restart: the alarm would stay open for ever.
	f.db.Close()
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: b, port: /dev/ttyUSB0}]\n"+
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, role: public, rated_current: 10}]\n"+
		"alarms: {meters: {M-1: {overload: {factor: 0}}}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.open()
	if err := f.pipe.ClearUnwatched(f.t0.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := f.alarmStates(); got != "overload cleared" {
		t.Errorf("after a restart with the rule off: %q; want the overload cleared", got)
	}
	evs, err := f.db.LastEvents(1)
	if err != nil || len(evs) != 1 || evs[0].Kind != "overload_cleared" || evs[0].Args["form"] != "unwatched" {
		t.Errorf("last event = %+v, %v; want overload_cleared, form unwatched", evs, err)
	}
	if zh := i18n.New(i18n.ZhCN, nil).EventText(evs[0].Kind, evs[0].Args, evs[0].Text); !strings.Contains(zh, "不再监测") {
		t.Errorf("the Chinese sentence %q; want it told in Chinese", zh)
	}
}

// A reading of instantaneous values without the billing counter (a meter
// that sends its counters in messages of their own, over MQTT) is judged
// by the alarm rules and shown, but neither billed nor kept as the meter's
// latest reading: the counter it lacks is not a counter of 0. The page
// shows its values beside the last counter read.
func TestPipeline_ValuesOnlyReading(t *testing.T) {
	f := newPipeFixture(t)
	lv := live.New(f.cfg, "test", f.path, time.Now)
	var err error
	f.pipe, err = New(f.db, f.cfg, lv, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.feedValues(0, 5000, false, map[meter.Quantity]float64{meter.CurrentA: 2, meter.Power: 440})
	values := func(sec int, amps float64) {
		var rd meter.Reading
		rd.Set(meter.CurrentA, amps)
		rd.Set(meter.VoltageA, 220)
		rd.Set(meter.Power, amps*220)
		rd.Meter, rd.Time = "M-1", f.t0.Add(time.Duration(sec)*time.Second)
		f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Reading: rd}}})
	}
	for sec := 10; sec <= 80; sec += 10 {
		values(sec, 30) // 30 A on a 10 A circuit, held past the 60 s default
	}
	if got := f.alarmStates(); got != "overload active" {
		t.Errorf("after 70 s of values at 30 A: %q; want an active overload", got)
	}
	latest, err := f.db.LatestReadings()
	if err != nil || latest["M-1"].ImportWh != 5000 || !latest["M-1"].Time.Equal(f.t0) {
		t.Errorf("stored latest = %+v, %v; want the counter reading of 5,000 Wh at t0, untouched", latest["M-1"], err)
	}
	f.feedValues(90, 5200, false, map[meter.Quantity]float64{meter.CurrentA: 30, meter.Power: 6600})
	if e := f.energy(); e != 200 {
		t.Errorf("energy = %d Wh; want 200: the counter's rise, nothing from the values", e)
	}
	values(100, 31)
	var shown web.MeterView
	for _, m := range lv.Meters() {
		if m.ID == "M-1" {
			shown = m
		}
	}
	if shown.ImportKWh != "5.200" || shown.Values["current_a"].Value != 31 {
		t.Errorf("shown = %s kWh, %v A; want the last counter (5.200) beside the newest values (31 A)", shown.ImportKWh, shown.Values["current_a"].Value)
	}
}

// An MQTT meter's values are judged though its counter message in the
// same cycle was refused (a zero frame), and a reading of counters alone
// leaves the values shown as they were.
func TestPipeline_ValuesBesideARefusedCounter(t *testing.T) {
	f := newPipeFixture(t)
	lv := live.New(f.cfg, "test", f.path, time.Now)
	var err error
	f.pipe, err = New(f.db, f.cfg, lv, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.feedValues(0, 5000, false, map[meter.Quantity]float64{meter.CurrentA: 2})
	for sec := 10; sec <= 80; sec += 10 {
		var zero, values meter.Reading
		zero.Set(meter.Import, 0) // a zero frame: refused by the counter rules
		zero.Meter, zero.Time = "M-1", f.t0.Add(time.Duration(sec)*time.Second)
		values.Set(meter.CurrentA, 30)
		values.Set(meter.VoltageA, 220)
		values.Meter, values.Time = "M-1", zero.Time
		f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Reading: zero}, {Meter: "M-1", Reading: values}}})
	}
	if got := f.alarmStates(); got != "overload active" {
		t.Errorf("30 A for 70 s beside zero frames: %q; want an active overload", got)
	}
	var counters meter.Reading
	counters.Set(meter.Import, 5.1)
	counters.Meter, counters.Time = "M-1", f.t0.Add(90*time.Second)
	f.pipe.Cycle(context.Background(), poll.Cycle{Bus: "b", Results: []poll.Result{{Meter: "M-1", Reading: counters}}})
	for _, m := range lv.Meters() {
		if m.ID == "M-1" && (m.ImportKWh != "5.100" || m.Values["current_a"].Value != 30) {
			t.Errorf("shown = %s kWh, %v A; want the new counter beside the last values (30 A)", m.ImportKWh, m.Values["current_a"].Value)
		}
	}
}
