package comperesim

import (
	"errors"
	"math"
	"testing"
	"time"

	"mallgrid/drivers/compere"
	"mallgrid/drivers/meter"
)

const (
	id33b  = "33B1225950027"
	id31   = "31C1225950001"
	id37   = "3701225950001"
	id312  = "3120208700001"
	idBase = 1_234_567 // Wh the counters start from
)

// TestModels_MessagesParseIntoReadings: every model's RT_DATA and
// ENY_NOW arrive through the broker and become sensible readings through
// drivers/compere, a KPM312 as four meters; KPM37 and KPM312 split into
// the manual's 9 and 11 packets, which join.
func TestModels_MessagesParseIntoReadings(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	tests := []struct {
		model, id string
		ids       []string
		phases    int
		rtPackets int
		enyPacket int
	}{
		{"kpm31", id31, []string{id31}, 1, 1, 1},
		{"kpm33b", id33b, []string{id33b}, 3, 1, 1},
		{"kpm37", id37, []string{id37}, 3, 9, 11},
		{"kpm312", id312, []string{"3120208700001", "3120208700002", "3120208700003", "3120208700004"}, 3, 9, 11},
	}
	for _, tt := range tests {
		run(t, newDevice(t, b, tt.model, tt.id, func(c *Config) { c.ImportWh = idBase; c.Faults.Split = 1 }))
	}
	r := &reader{g: g}
	type key struct{ id, topic string }
	got := map[key]decoded{}
	want := 0
	for _, tt := range tests {
		want += 2 * len(tt.ids)
	}
	deadline := time.Now().Add(8 * time.Second)
	for len(got) < want {
		m := r.next(time.Until(deadline))
		got[key{m.pkt.ID, string(m.pkt.Topic)}] = m
	}
	for _, tt := range tests {
		for _, id := range tt.ids {
			rt, eny := got[key{id, "MQTT_RT_DATA"}], got[key{id, "MQTT_ENY_NOW"}]
			if rt.pkt.Packets != tt.rtPackets || eny.pkt.Packets != tt.enyPacket {
				t.Errorf("%s %s: RT_DATA in %d packets, ENY_NOW in %d; want %d and %d", tt.model, id, rt.pkt.Packets, eny.pkt.Packets, tt.rtPackets, tt.enyPacket)
			}
			rd := compere.NewReading(rt.m.(*compere.RTData), eny.m.(*compere.Energy))
			if rd.ClockErr != nil || rd.ZeroFrame {
				t.Errorf("%s %s: clock %v, zero frame %v", tt.model, id, rd.ClockErr, rd.ZeroFrame)
			}
			v, _ := rd.Value(meter.VoltageA)
			f, _ := rd.Value(meter.Frequency)
			p, _ := rd.Value(meter.Power)
			if v < 200 || v > 260 || f < 49.5 || f > 50.5 || p <= 0 {
				t.Errorf("%s %s: V %v, f %v, P %v W; want a live mains circuit", tt.model, id, v, f, p)
			}
			if _, ok := rd.Value(meter.VoltageC); ok != (tt.phases == 3) {
				t.Errorf("%s %s: phase C sent %v; want %v", tt.model, id, ok, tt.phases == 3)
			}
			e := eny.m.(*compere.Energy)
			if !e.Import.OK || e.Import.Wh < idBase || e.Import.Wh > idBase+1000 {
				t.Errorf("%s %s: import %+v; want from %d Wh", tt.model, id, e.Import, idBase)
			}
			if len(e.Bad) > 0 {
				t.Errorf("%s %s: bad counters %v", tt.model, id, e.Bad)
			}
		}
	}
}

// TestRelay_CounterStopsWhenOpened: the counter rises with the load; a
// TELECTRL opens do1, the reply carries the oprid with code 01, TELEIND
// says do1 open (do2 still closed), and the counter stops.
func TestRelay_CounterStopsWhenOpened(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	load := 1000.0
	d := newDevice(t, b, "kpm37", id37, func(c *Config) { c.Now = fastClock(); c.LoadW = &load })
	run(t, d)
	r := &reader{g: g}
	first := r.until(compere.TopicEnyNow, id37, 5*time.Second).m.(*compere.Energy).Import.Wh
	second := r.until(compere.TopicEnyNow, id37, 5*time.Second).m.(*compere.Energy).Import.Wh
	if second <= first {
		t.Fatalf("counter %d then %d; want it rising under 1 kW", first, second)
	}

	model37 := model(t, "kpm37")
	op := oprid(1)
	g.send(model37.RelayCommand(id37, 1, false, op))
	rep := r.until(compere.TopicTeleCtrlRep, id37, 5*time.Second).m.(*compere.ControlReply)
	if rep.OprID != op || !rep.Done() || rep.Output != 1 || rep.Closed {
		t.Fatalf("reply %+v; want do1 open, code 01, oprid %s", rep, op)
	}
	ind := r.until(compere.TopicTeleInd, id37, 5*time.Second).m.(*compere.Signal)
	if ind.Output(1) != meter.RelayOpen || ind.Output(2) != meter.RelayClosed {
		t.Errorf("TELEIND DO %b; want do1 open, do2 closed", ind.DO)
	}
	// An upload may already have been under way; from the next one on the
	// counter stands still.
	r.until(compere.TopicEnyNow, id37, 5*time.Second)
	stopped := r.until(compere.TopicEnyNow, id37, 5*time.Second).m.(*compere.Energy).Import.Wh
	for range 3 {
		if wh := r.until(compere.TopicEnyNow, id37, 5*time.Second).m.(*compere.Energy).Import.Wh; wh != stopped {
			t.Fatalf("counter %d after %d with do1 open; want it stopped", wh, stopped)
		}
	}
	rt := r.until(compere.TopicRTData, id37, 5*time.Second).m.(*compere.RTData)
	if rt.Power[3].X != 0 {
		t.Errorf("power %v W with do1 open; want 0", rt.Power[3].X)
	}

	g.send(model37.RelayCommand(id37, 1, true, oprid(2)))
	if rep := r.until(compere.TopicTeleCtrlRep, id37, 5*time.Second).m.(*compere.ControlReply); rep.OprID != oprid(2) || !rep.Done() || !rep.Closed {
		t.Fatalf("reply %+v; want do1 closed, code 01", rep)
	}
	r.until(compere.TopicEnyNow, id37, 5*time.Second)
	a := r.until(compere.TopicEnyNow, id37, 5*time.Second).m.(*compere.Energy).Import.Wh
	if c := r.until(compere.TopicEnyNow, id37, 5*time.Second).m.(*compere.Energy).Import.Wh; c <= a {
		t.Errorf("counter %d then %d after do1 closed; want it rising again", a, c)
	}
}

// TestRelay_FailRateOneNeverSwitches: a meter whose relay answers 02
// every time never switches, and its counter keeps rising.
func TestRelay_FailRateOneNeverSwitches(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	load := 1000.0
	d := newDevice(t, b, "kpm33b", id33b, func(c *Config) { c.Now = fastClock(); c.LoadW = &load; c.Faults.RelayFail = 1 })
	run(t, d)
	r := &reader{g: g}
	r.until(compere.TopicRTData, id33b, 5*time.Second) // connected and subscribed
	m33 := model(t, "kpm33b")
	for i := range 3 {
		op := oprid(10 + i)
		g.send(m33.RelayCommand(id33b, 1, false, op))
		rep := r.until(compere.TopicTeleCtrlRep, id33b, 5*time.Second).m.(*compere.ControlReply)
		if rep.OprID != op || rep.Code != "02" || rep.Msg == "" {
			t.Fatalf("reply %+v; want code 02 with a reason, oprid %s", rep, op)
		}
	}
	if !d.Circuits()[0].Output(1) {
		t.Fatal("do1 opened though every command was answered 02")
	}
	a := r.until(compere.TopicEnyNow, id33b, 5*time.Second).m.(*compere.Energy).Import.Wh
	if c := r.until(compere.TopicEnyNow, id33b, 5*time.Second).m.(*compere.Energy).Import.Wh; c <= a {
		t.Errorf("counter %d then %d; want it still rising", a, c)
	}
}

// TestSetTime_Fixes2005Clock: a meter whose clock starts in 2005 reports
// it so; MQTT_SETTIME sets it, the reply carries the oprid, and its
// messages carry the right time from then on.
func TestSetTime_Fixes2005Clock(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	d := newDevice(t, b, "kpm33b", id33b, func(c *Config) { c.Faults.Clock2005 = 1 })
	run(t, d)
	r := &reader{g: g}
	h := r.until(compere.TopicRTData, id33b, 5*time.Second).m.Head()
	if h.Clock.Year() != 2005 || !errors.Is(h.ClockErr, compere.ErrClock) {
		t.Fatalf("clock %v (%v); want 2005, reported wrong", h.Clock, h.ClockErr)
	}
	op := oprid(3)
	g.send(compere.SetTime(id33b, time.Now().UTC(), op))
	rep := r.until(compere.TopicTimeRep, id33b, 5*time.Second).m.(*compere.Reply)
	if rep.OprID != op || !rep.Done() {
		t.Fatalf("reply %+v; want code 01, oprid %s", rep, op)
	}
	h = r.until(compere.TopicEnyNow, id33b, 5*time.Second).m.Head()
	if h.ClockErr != nil || math.Abs(time.Since(h.Clock).Seconds()) > 5 {
		t.Errorf("clock %v (%v) after SETTIME; want now", h.Clock, h.ClockErr)
	}
}

// TestCommodSet_TakesTheMetersIntervalsOnly: MQTT_COMMOD_SET changes an
// interval to a value the meters take (01), and refuses another (02).
func TestCommodSet_TakesTheMetersIntervalsOnly(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	d := newDevice(t, b, "kpm31", id31, nil)
	run(t, d)
	r := &reader{g: g}
	r.until(compere.TopicRTData, id31, 5*time.Second) // connected and subscribed
	g.send(compere.SetUploadInterval(id31, compere.LevelEnergy, 5*time.Minute, oprid(4)))
	if rep := r.until(compere.TopicCommodRep, id31, 5*time.Second).m.(*compere.Reply); rep.OprID != oprid(4) || !rep.Done() {
		t.Fatalf("reply %+v; want 01", rep)
	}
	if _, e := d.Circuits()[0].Intervals(); e != 5*time.Minute {
		t.Errorf("energy interval %s; want 5m", e)
	}
	g.send(compere.Command{Topic: "MQTT_COMMOD_SET_" + id31[5:], Payload: []byte(`{"oprid":"` + oprid(5) + `","Cmd":"0000","value":"45","types":"1"}`)}, nil)
	if rep := r.until(compere.TopicCommodRep, id31, 5*time.Second).m.(*compere.Reply); rep.OprID != oprid(5) || rep.Code != "02" {
		t.Fatalf("reply %+v; want 02 for 45 s", rep)
	}
	if rt, _ := d.Circuits()[0].Intervals(); rt != 100*time.Millisecond {
		t.Errorf("real-time interval %s after a refused command; want it unchanged", rt)
	}
}

// TestDuplicatesAndZeroFrames: at rate 1 every upload arrives two or
// three times, each copy after an all-zero frame of its own.
func TestDuplicatesAndZeroFrames(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	run(t, newDevice(t, b, "kpm33b", id33b, func(c *Config) {
		c.ImportWh = idBase
		c.Faults.Duplicate, c.Faults.ZeroFrame = 1, 1
		c.RealTime = time.Hour // ENY_NOW only
	}))
	// Collect ENY_NOW: zero frame, then the reading 2 or 3 times.
	var seq []string
	for len(seq) < 12 {
		m := g.next(5 * time.Second)
		if m.topic == string(compere.TopicEnyNow) {
			seq = append(seq, string(m.payload))
		}
	}
	for i := 0; i+3 < len(seq); {
		p, err := compere.Parse("MQTT_ENY_NOW", []byte(seq[i]))
		if err != nil || !p.ZeroFrame() {
			t.Fatalf("message %d %s: want a zero frame first", i, seq[i])
		}
		n := 1
		for i+n+1 < len(seq) && seq[i+n+1] == seq[i+1] {
			n++
		}
		if n < 2 || n > 3 {
			t.Fatalf("reading %s arrived %d times; want 2 or 3", seq[i+1], n)
		}
		if e, _ := compere.Decode(mustParse(t, seq[i+1]), time.UTC); e.(*compere.Energy).Import.Wh < idBase {
			t.Errorf("reading %s below the start", seq[i+1])
		}
		i += 1 + n
	}
}

func mustParse(t *testing.T, s string) compere.Packet {
	t.Helper()
	p, err := compere.Parse("MQTT_ENY_NOW", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBrokerRestart_MeterReconnects: the broker goes away and comes back
// on the same address; the meter connects again, subscribes again (a
// relay command is answered) and keeps publishing.
func TestBrokerRestart_MeterReconnects(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	g := newGateway(t, b)
	run(t, newDevice(t, b, "kpm33b", id33b, nil))
	r := &reader{g: g}
	r.until(compere.TopicRTData, id33b, 5*time.Second)
	b.stop()
	time.Sleep(300 * time.Millisecond)
	b2 := startBroker(t, b.addr)
	g2 := newGateway(t, b2)
	r2 := &reader{g: g2}
	r2.until(compere.TopicEnyNow, id33b, 8*time.Second)
	m33 := model(t, "kpm33b")
	// The subscriptions follow the CONNACK by a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		g2.send(m33.RelayCommand(id33b, 1, true, oprid(6)))
		select {
		case <-time.After(300 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no relay reply after the broker restarted")
			}
			continue
		case m := <-g2.msgs:
			if m.topic != string(compere.TopicTeleCtrlRep) {
				continue
			}
		}
		break
	}
}
