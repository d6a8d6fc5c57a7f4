package main

import (
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"mallgrid/drivers/compere"
)

// TestSim_MQTT_ServesAKPM312AndStopsOnSIGINT runs `mallgrid sim --mqtt`
// against an in-process broker that takes one user: the KPM312's four
// circuits publish under their own ids, and a relay command to the third
// is answered with its oprid.
func TestSim_MQTT_ServesAKPM312AndStopsOnSIGINT(t *testing.T) {
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ledger := &auth.Ledger{Users: auth.Users{"m": {Username: "m", Password: "pw"}}, ACL: auth.ACLRules{{}}}
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
	t.Cleanup(func() { _ = s.Close() })
	url := "tcp://" + ln.Address()

	got := make(chan paho.Message, 256)
	gw := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("gw").SetUsername("m").SetPassword("pw"))
	if tok := gw.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("gateway connect: %v", tok.Error())
	}
	defer gw.Disconnect(100)
	filters := map[string]byte{}
	for _, topic := range compere.Subscriptions() {
		filters[string(topic)] = 1
	}
	if tok := gw.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m:
		default:
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	cmd, out := start(t, "sim", "--mqtt", url, "--username", "m", "--password", "pw", "--model", "kpm312",
		"--id", "3120208700001", "--rt-interval", "200ms", "--energy-interval", "300ms", "--import-wh", "5000")
	line := readLineContaining(t, out, "mallgrid sim:")
	if want := "mallgrid sim: 4 kpm312 meter(s) 3120208700001 on " + url; strings.TrimSpace(line) != want {
		t.Errorf("ready line %q; want %q", line, want)
	}
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < 4 {
		select {
		case m := <-got:
			p, err := compere.Parse(m.Topic(), m.Payload())
			if err != nil {
				t.Fatalf("%s %s: %v", m.Topic(), m.Payload(), err)
			}
			if p.Topic == compere.TopicEnyNow {
				seen[p.ID] = true
			}
		case <-deadline:
			t.Fatalf("ENY_NOW from %d circuits of 4: %v", len(seen), seen)
		}
	}
	kpm312, _ := compere.ModelByName("kpm312")
	op := strings.Repeat("ab", 16)
	c, err := kpm312.RelayCommand("3120208700003", 1, false, op)
	if err != nil {
		t.Fatal(err)
	}
	if tok := gw.Publish(c.Topic, 1, false, c.Payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	deadline = time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case m := <-got:
			if m.Topic() == string(compere.TopicTeleCtrlRep) {
				want := `{"id":"3120208700003","do1":"0","oprid":"` + op + `","code":"01","msg":""}`
				if string(m.Payload()) != want {
					t.Errorf("reply %s; want %s", m.Payload(), want)
				}
				done = true
			}
		case <-deadline:
			t.Fatal("no MQTT_TELECTRL_REP")
		}
	}
	stopWithin(t, cmd, syscall.SIGINT, 3*time.Second)
}

func TestSim_MQTT_Refusals(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"modbus flags with --mqtt", []string{"sim", "--mqtt", "tcp://127.0.0.1:1", "--id", "33B1225950027", "--addr", "2"}, "--mqtt serves meters on a broker; leave out --addr"},
		{"a modbus model", []string{"sim", "--mqtt", "tcp://127.0.0.1:1", "--id", "33B1225950027", "--model", "sdm630"}, `--model "sdm630": --mqtt serves kpm31, kpm33b, kpm37, kpm312`},
		{"no id", []string{"sim", "--mqtt", "tcp://127.0.0.1:1"}, "--mqtt needs --id"},
		{"short id", []string{"sim", "--mqtt", "tcp://127.0.0.1:1", "--id", "123"}, "--id 123: comperesim: configuration"},
		{"bad rate", []string{"sim", "--mqtt", "tcp://127.0.0.1:1", "--id", "33B1225950027", "--split-rate", "2"}, "split rate 2 is not within 0..1"},
		{"mqtt flags without --mqtt", []string{"sim", "--listen", "tcp:127.0.0.1:0", "--id", "33B1225950027"}, "--id: only with --mqtt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := mallgrid(t, tt.args...)
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q", code, stdout, stderr, tt.want)
			}
		})
	}
}
