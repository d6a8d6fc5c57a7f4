package demo

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"mallgrid/drivers/compere"
)

func TestParseSimFile_MQTTProblems(t *testing.T) {
	const head = "mqtt: {broker: tcp://127.0.0.1:1883}\nmeters:\n"
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"modbus keys", "listen: tcp::1\nmqtt: {broker: tcp://h:1}\nmeters:\n  - {model: kpm33b, id: 33B1225950027, address: 3}\n", []string{
			"sim.yaml:1: listen: applies to a Modbus bus only (this file's meters are clients of mqtt.broker)",
			"sim.yaml:4: meters[0].address: applies to a Modbus meter only (an MQTT meter has an id)"}},
		{"broker scheme", "mqtt: {broker: http://h:1}\nmeters:\n  - {model: kpm33b, id: 33B1225950027}\n", []string{
			`sim.yaml:1: mqtt.broker: want tcp://HOST:PORT or ssl://HOST:PORT, got "http://h:1"`}},
		{"no broker", "mqtt: {username: u}\nmeters:\n  - {model: kpm33b, id: 33B1225950027}\n", []string{
			"sim.yaml:1: mqtt.broker: required, not set"}},
		{"a modbus model", head + "  - {model: sdm630, id: 33B1225950027}\n", []string{
			`sim.yaml:3: meters[0].model: unknown model "sdm630" (MQTT models: kpm31, kpm33b, kpm37, kpm312)`}},
		{"no id", head + "  - {model: kpm33b}\n", []string{
			"sim.yaml:3: meters[0].id: required, not set (the 13-character meter id, or ids: [A, B])"}},
		{"short id", head + "  - {model: kpm33b, ids: [33B1225950027, '123']}\n", []string{
			`sim.yaml:3: meters[0].ids[1]: compere: bad meter id: id "123" is 3 characters, want 13`}},
		{"a kpm312 circuit taken", head + "  - {model: kpm33b, id: '3120208700003'}\n  - {model: kpm312, id: '3120208700001'}\n", []string{
			"sim.yaml:4: meters[1].id: meter id 3120208700003 already used by meters[0].id (line 3)"}},
		{"fault kinds and rates", head + "  - {model: kpm33b, id: 33B1225950027, faults: {no-reply: 0.1, split: 2}}\n", []string{
			"sim.yaml:3: meters[0].faults.no-reply: unknown fault kind for an MQTT meter (kinds: duplicate, zero-frame, split, clock-2005, relay-fail)",
			"sim.yaml:3: meters[0].faults.split: want a rate 0..1, got 2"}},
		{"id on a modbus meter", "listen: tcp::1\nmeters:\n  - {model: kpm33b, address: 1, id: 33B1225950027}\n", []string{
			"sim.yaml:3: meters[0].id: applies to an MQTT meter only (a file with mqtt.broker); a Modbus meter has an address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseSimFile("sim.yaml", t.TempDir(), []byte(tt.file), nil)
			if err == nil {
				t.Fatalf("parse = %+v, nil; want problems", o)
			}
			if !reflect.DeepEqual(o, SimOptions{}) {
				t.Errorf("options with problems = %+v; want zero", o)
			}
			if got := simProblems(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestSimulate_MQTTExample serves configs/sim-mqtt.example.yaml's meters
// — every model — through an in-process broker taking its credentials:
// every meter id publishes ENY_NOW that drivers/compere reads.
func TestSimulate_MQTTExample(t *testing.T) {
	o, err := LoadSimFile("../../configs/sim-mqtt.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.Summary(), "3 kpm33b meter(s) 33B1225950027,33B1225950028,33B1225950029; 1 kpm31 meter(s) 31C1225950001; 1 kpm37 meter(s) 3701225950001; 4 kpm312 meter(s) 3120208700001"; got != want {
		t.Errorf("Summary = %q; want %q", got, want)
	}
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ledger := &auth.Ledger{Users: auth.Users{"meter": {Username: "meter", Password: "change-me"}}, ACL: auth.ACLRules{{}}}
	if err := s.AddHook(new(auth.Hook), &auth.Options{Ledger: ledger}); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := s.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	o.MQTT.Broker = "tcp://" + ln.Address()
	for i := range o.MQTT.Devices {
		o.MQTT.Devices[i].Broker = o.MQTT.Broker
		o.MQTT.Devices[i].Energy = 200 * time.Millisecond
	}

	seen := make(chan string, 1024)
	gw := paho.NewClient(paho.NewClientOptions().AddBroker(o.MQTT.Broker).SetClientID("gw").SetUsername("meter").SetPassword("change-me"))
	if tok := gw.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer gw.Disconnect(100)
	if tok := gw.Subscribe(string(compere.TopicEnyNow), 1, func(_ paho.Client, m paho.Message) {
		var j compere.Joiner
		p, err := compere.Parse(m.Topic(), m.Payload())
		if err != nil {
			t.Errorf("%s: %v", m.Payload(), err)
			return
		}
		if _, ok, _ := j.Add(p); ok || !p.End {
			select {
			case seen <- p.ID:
			default:
			}
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	o.Ready = func(where string) { ready <- where }
	go func() { done <- Simulate(ctx, o) }()
	if where := <-ready; where != o.MQTT.Broker {
		t.Errorf("ready on %q; want %q", where, o.MQTT.Broker)
	}
	want := map[string]bool{"33B1225950027": true, "33B1225950028": true, "33B1225950029": true, "31C1225950001": true,
		"3701225950001": true, "3120208700001": true, "3120208700002": true, "3120208700003": true, "3120208700004": true}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case id := <-seen:
			delete(want, id)
		case <-deadline:
			t.Fatalf("no ENY_NOW from %v", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Simulate: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Simulate did not return after cancel")
	}
}
