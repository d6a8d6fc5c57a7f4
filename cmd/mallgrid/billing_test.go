package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// compereLogs are the logs captured from real KPM33B meters, kept with the
// gateway's tests.
var compereLogs = filepath.Join("..", "..", "gateway", "replay", "testdata", "compere-mqtt")

// replayJSON is what a script reads from billing replay --json.
type replayJSON struct {
	Meter       string         `json:"meter"`
	AcceptedKWh string         `json:"accepted_kwh"`
	Charge      string         `json:"charge"`
	FirstKWh    *string        `json:"first_kwh"`
	Rejected    map[string]int `json:"rejected"`
}

func TestBillingReplay_JSON(t *testing.T) {
	code, out, errOut := mallgrid(t, "billing", "replay", "--format", "compere-mqtt",
		filepath.Join(compereLogs, "MQTT_ENY_NOW_20260112-1535.log"), "--tariff", "flat:1.00", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q; want 0", code, errOut)
	}
	var got []replayJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	// Per meter: its last real counter less its first (see the gateway's
	// TestReplay_CapturedLogs), at 1.00 yuan/kWh, to the nearest fen.
	want := []struct {
		meter, kwh, charge string
		zero, dup          int
		known              bool
	}{
		{"33B1225950027", "50.707", "50.71", 0, 0, true},
		{"33B1225950028", "0.000", "0.00", 208, 206, true},
		{"33B1225950029", "20.501", "20.50", 414, 163, true},
		{"33B1225950030", "0.000", "0.00", 414, 0, false},
	}
	if len(got) != len(want) {
		t.Fatalf("%d meters; want %d:\n%s", len(got), len(want), out)
	}
	for i, w := range want {
		g := got[i]
		if g.Meter != w.meter || g.AcceptedKWh != w.kwh || g.Charge != w.charge ||
			g.Rejected["zero_frame"] != w.zero || g.Rejected["duplicate"] != w.dup || (g.FirstKWh != nil) != w.known {
			t.Errorf("meter %d = %+v; want %s: %s kWh, charge %s, zero_frame %d, duplicate %d, known %v",
				i, g, w.meter, w.kwh, w.charge, w.zero, w.dup, w.known)
		}
	}
}

func TestBillingReplay_Text(t *testing.T) {
	code, out, errOut := mallgrid(t, "billing", "replay", filepath.Join(compereLogs, "MQTT_ENY_NOW_20260117-2020.log"), "--tariff", "flat:0.8523")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q; want 0", code, errOut)
	}
	for _, want := range []string{"meter 33B1225950027", "163.486 → 163.486 kWh", "rejected duplicate", "meter 33B1225950030", "none accepted", "10 lines"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBillingReplay_Errors(t *testing.T) {
	log := filepath.Join(compereLogs, "MQTT_ENY_NOW_20260117-2020.log")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no tariff", []string{log}, `"tariff" not set`},
		{"tariff kind", []string{log, "--tariff", "tou:x"}, "want flat:PRICE"},
		{"price", []string{log, "--tariff", "flat:abc"}, "not a decimal amount"},
		{"format", []string{log, "--tariff", "flat:1", "--format", "csv"}, "unknown format"},
		{"no file", []string{filepath.Join(t.TempDir(), "absent.log"), "--tariff", "flat:1"}, "no such file"},
		{"zone", []string{log, "--tariff", "flat:1", "--tz", "Mars/Olympus"}, "--tz"},
		{"two files", []string{log, log, "--tariff", "flat:1"}, "accepts 1 arg"},
	} {
		code, _, errOut := mallgrid(t, append([]string{"billing", "replay"}, tt.args...)...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tt.name, code, errOut, tt.want)
		}
	}
}
