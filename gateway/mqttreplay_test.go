package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"mallgrid/gateway/config"
	"mallgrid/gateway/replay"
	"mallgrid/store"
)

// compereLogs are the logs captured from real KPM33Bs (replay's copies of
// shared/testdata/compere-mqtt): duplicates, zero frames between real
// readings, clocks in 2005 on some, a meter that only sends zeros.
var compereLogs = []string{
	filepath.Join("replay", "testdata", "compere-mqtt", "MQTT_ENY_NOW_20260112-1535.log"),
	filepath.Join("replay", "testdata", "compere-mqtt", "MQTT_ENY_NOW_20260117-2020.log"),
}

// counterKinds are the kinds of billing/counter's events.
var counterKinds = map[string]bool{"counter_lower": true, "lower_cleared": true, "reset": true, "spike_quarantined": true,
	"spike_dropped": true, "spike_released": true, "exchange": true, "clock_back": true}

// TestMQTTMeters_CapturedLogBillsAsReplay publishes the captured log,
// message by message, through the gateway's embedded broker to the
// running daemon, the gateway's clock set to when each was sent (the
// meter's clock where it can be right, as billing replay times them), and
// holds what the daemon billed each meter to what `billing replay` bills
// for the same log: the same energy, to the Wh.
func TestMQTTMeters_CapturedLogBillsAsReplay(t *testing.T) {
	t.Parallel()
	for _, path := range compereLogs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			capturedLogBillsAsReplay(t, path)
		})
	}
}

func capturedLogBillsAsReplay(t *testing.T, path string) {
	cst := time.FixedZone("CST", 8*3600)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := replay.Log(f, replay.Options{Tariff: "flat:1.00", Location: cst})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	type line struct {
		id      string
		payload []byte
		at      time.Time
	}
	var lines []line
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	last := map[string]time.Time{}
	var logClock time.Time
	for sc.Scan() {
		topic, payload, ok := strings.Cut(sc.Text(), " ")
		if strings.HasPrefix(sc.Text(), "{") {
			// A log of one topic, named in its file name: JSON alone.
			topic, payload, ok = "MQTT_ENY_NOW", sc.Text(), strings.HasPrefix(filepath.Base(path), "MQTT_ENY_NOW")
		}
		if !ok || topic != "MQTT_ENY_NOW" {
			continue
		}
		var m struct {
			ID   string `json:"id"`
			Time string `json:"time"`
		}
		if err := json.Unmarshal([]byte(payload), &m); err != nil {
			t.Fatal(err)
		}
		// As replay times them: the meter's clock where it can be right,
		// else the log's clock so far; a meter's times always advance.
		at := logClock
		if c, err := time.ParseInLocation("20060102150405", m.Time, cst); err == nil && c.Year() >= 2020 {
			at = c
			if c.After(logClock) {
				logClock = c
			}
		}
		if p, ok := last[m.ID]; ok && !at.After(p) {
			at = p.Add(time.Second)
		}
		last[m.ID] = at
		lines = append(lines, line{m.ID, []byte(payload), at})
	}
	f.Close()
	if len(lines) == 0 {
		t.Fatalf("%s: no MQTT_ENY_NOW message", path)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "site: {name: Test Mall}\nstorage: {path: %s}\n", filepath.Join(t.TempDir(), "m.db"))
	yaml.WriteString("http:\n  listen: '127.0.0.1:0'\n  tokens:\n" +
		"    - {name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}\n" +
		"buses:\n  - {name: f3, type: compere-mqtt, listen: '" + addr + "', username: kpm,\n" +
		"     password_sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b}\nmeters:\n")
	for _, m := range want.Meters {
		// Public meters: their energy is recorded, with no account to cut off.
		fmt.Fprintf(&yaml, "  - {id: M-%s, bus: f3, address: '%s', model: kpm33b, role: public}\n", m.Meter, m.Meter)
	}
	cfg, err := config.Parse("test.yaml", []byte(yaml.String()), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var (
		mu  sync.Mutex
		now = lines[0].at
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Config: cfg, Log: newCheckedLog(t), Listener: hl, Version: "test", Now: clock})
	}()
	base := "http://" + hl.Addr().String()
	waitFor(t, 10*time.Second, "the broker", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	clients := map[string]paho.Client{}
	for _, m := range want.Meters {
		opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(m.Meter).SetUsername("kpm").SetPassword("secret").
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("meter %s: %v", m.Meter, tok.Error())
		}
		defer c.Disconnect(100)
		clients[m.Meter] = c
	}
	sent := map[string]int64{}
	for i, l := range lines {
		mu.Lock()
		now = l.at
		mu.Unlock()
		if tok := clients[l.id].Publish("MQTT_ENY_NOW", 1, false, l.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("line %d: publish: %v", i, tok.Error())
		}
		sent[l.id]++
		// Taken at this clock before the next is sent.
		waitFor(t, 5*time.Second, fmt.Sprintf("message %d of %s taken", i, l.id), func() bool {
			var v struct {
				Stats struct {
					Requests int64 `json:"requests"`
				} `json:"stats"`
			}
			getJSON(t, base+"/api/v1/meters/M-"+l.id, &v)
			return v.Stats.Requests == sent[l.id]
		})
	}
	// The last cycle committed: the readings' energy is in the store.
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	db, err := store.Open(cfg.Storage.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	latest, err := db.LatestReadings()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := db.EventsAfter(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range want.Meters {
		// The same counter events (resets, clocks gone back, spikes …), in
		// the same order, and the same last counter taken.
		var wantKinds, gotKinds []string
		for _, e := range m.Events {
			wantKinds = append(wantKinds, string(e.Kind))
		}
		for _, e := range evs {
			if e.Meter == "M-"+m.Meter && counterKinds[e.Kind] {
				gotKinds = append(gotKinds, e.Kind)
			}
		}
		if fmt.Sprint(gotKinds) != fmt.Sprint(wantKinds) {
			t.Errorf("meter %s: counter events %v; billing replay has %v", m.Meter, gotKinds, wantKinds)
		}
		if got := latest["M-"+m.Meter].ImportWh; m.Known && got != m.LastWh {
			t.Errorf("meter %s: last counter %d Wh; billing replay's %d", m.Meter, got, m.LastWh)
		}
		slots, err := db.Intervals("M-"+m.Meter, lines[0].at.Add(-24*time.Hour), logClock.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var wh int64
		for _, s := range slots {
			wh += s.Wh
		}
		if wh != m.AcceptedWh {
			t.Errorf("meter %s: the daemon recorded %d Wh; billing replay bills %d Wh", m.Meter, wh, m.AcceptedWh)
		}
		t.Logf("meter %s: %d messages, %d Wh accepted by both, rejected %v", m.Meter, sent[m.Meter], m.AcceptedWh, m.Rejected)
	}
}
