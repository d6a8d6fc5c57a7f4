package compere

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var oprid = strings.Repeat("0123456789abcdef", 2)

func TestRelayCommand_AsTheManual(t *testing.T) {
	kpm33b, _ := ModelByName("kpm33b")
	kpm37, _ := ModelByName("kpm37")
	for _, tt := range []struct {
		m             Model
		output        int
		closed        bool
		topic, format string
	}{
		// §4.5: {"dox":"1","oprid":"…"}, "1" on, "0" off, to
		// MQTT_TELECTRL_ and the id's last 8 characters.
		{kpm33b, 1, true, "MQTT_TELECTRL_25950027", `{"do1":"1","oprid":"0123456789abcdef0123456789abcdef"}`},
		{kpm33b, 1, false, "MQTT_TELECTRL_25950027", `{"do1":"0","oprid":"0123456789abcdef0123456789abcdef"}`},
		{kpm37, 2, false, "MQTT_TELECTRL_25950027", `{"do2":"0","oprid":"0123456789abcdef0123456789abcdef"}`},
	} {
		c, err := tt.m.RelayCommand("33B1225950027", tt.output, tt.closed, oprid)
		if err != nil || c.Topic != tt.topic || string(c.Payload) != tt.format {
			t.Errorf("%s do%d %v: %s %s, %v; want %s %s", tt.m.Name, tt.output, tt.closed, c.Topic, c.Payload, err, tt.topic, tt.format)
		}
	}
	for _, tt := range []struct {
		m      Model
		id     string
		output int
		oprid  string
		want   error
	}{
		{kpm33b, "33B1225950027", 2, oprid, ErrCommand}, // do2 is KPM37's only
		{kpm37, "33B1225950027", 3, oprid, ErrCommand},
		{kpm37, "33B1225950027", 0, oprid, ErrCommand},
		{kpm33b, "25950027", 1, oprid, ErrID},
		{kpm33b, "33B1225950027", 1, oprid[:31], ErrCommand},
		{kpm33b, "33B1225950027", 1, oprid[:31] + `"`, ErrCommand},
		{kpm33b, "33B1225950027", 1, oprid[:30] + "é", ErrCommand},
	} {
		if c, err := tt.m.RelayCommand(tt.id, tt.output, true, tt.oprid); !errors.Is(err, tt.want) {
			t.Errorf("%s %s do%d oprid %q: %s %s, %v; want %v", tt.m.Name, tt.id, tt.output, tt.oprid, c.Topic, c.Payload, err, tt.want)
		}
	}
}

func TestSetTime(t *testing.T) {
	at := time.Date(2026, 1, 12, 17, 0, 5, 0, time.FixedZone("UTC+8", 8*3600))
	c, err := SetTime("33B1225950027", at, oprid)
	if err != nil || c.Topic != "MQTT_SETTIME_25950027" || string(c.Payload) != `{"oprid":"`+oprid+`","time":"20260112170005"}` {
		t.Errorf("SetTime = %s %s, %v", c.Topic, c.Payload, err)
	}
	if c, _ := SetTime("33B1225950027", at.UTC(), oprid); !bytes.Contains(c.Payload, []byte(`"time":"20260112090005"`)) {
		t.Errorf("SetTime in UTC = %s; want the UTC wall clock", c.Payload)
	}
	if _, err := SetTime("33B1225950027", time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC), oprid); !errors.Is(err, ErrCommand) {
		t.Errorf("SetTime(2005) = %v; want ErrCommand", err)
	}
}

func TestSetUploadInterval(t *testing.T) {
	for _, tt := range []struct {
		level   Level
		d       time.Duration
		payload string
	}{
		{LevelRealTime, 30 * time.Second, `{"oprid":"` + oprid + `","Cmd":"0000","value":"30","types":"1"}`},
		{LevelRealTime, time.Hour, `{"oprid":"` + oprid + `","Cmd":"0000","value":"3600","types":"1"}`},
		{LevelEnergy, time.Minute, `{"oprid":"` + oprid + `","Cmd":"0001","value":"1","types":"1"}`},
		{LevelEnergy, 24 * time.Hour, `{"oprid":"` + oprid + `","Cmd":"0001","value":"1440","types":"1"}`},
	} {
		c, err := SetUploadInterval("33B1225950027", tt.level, tt.d, oprid)
		if err != nil || c.Topic != "MQTT_COMMOD_SET_25950027" || string(c.Payload) != tt.payload {
			t.Errorf("SetUploadInterval(%d, %s) = %s %s, %v; want %s", tt.level, tt.d, c.Topic, c.Payload, err, tt.payload)
		}
	}
	for _, tt := range []struct {
		level Level
		d     time.Duration
	}{
		{LevelRealTime, 45 * time.Second}, {LevelRealTime, 2 * time.Hour}, {LevelRealTime, 30*time.Second + 1},
		{LevelEnergy, 30 * time.Second}, {LevelEnergy, 2 * time.Minute}, {LevelEnergy, 0}, {Level(7), time.Minute},
	} {
		if _, err := SetUploadInterval("33B1225950027", tt.level, tt.d, oprid); !errors.Is(err, ErrCommand) {
			t.Errorf("SetUploadInterval(%d, %s) = %v; want ErrCommand", tt.level, tt.d, err)
		}
	}
}

func TestNewOprID(t *testing.T) {
	id, err := NewOprID(bytes.NewReader(bytes.Repeat([]byte{0xab, 0x01}, 8)))
	if err != nil || id != strings.Repeat("ab01", 8) || len(id) != OprIDLen {
		t.Errorf("NewOprID = %q, %v; want ab01… of 32", id, err)
	}
	if _, err := NewOprID(bytes.NewReader(make([]byte, 15))); err == nil {
		t.Error("NewOprID from 15 bytes: no error")
	}
	// Every id it makes is one the commands take.
	kpm31, _ := ModelByName("kpm31")
	if _, err := kpm31.RelayCommand("31B1225950001", 1, true, id); err != nil {
		t.Errorf("RelayCommand refused NewOprID's %q: %v", id, err)
	}
}

func TestModels(t *testing.T) {
	for _, tt := range []struct {
		name             string
		phases, outputs  int
		circuits         int
		split, residual  bool
		publishesDayData bool
	}{
		{"kpm31", 1, 1, 1, false, false, false},
		{"kpm33b", 3, 1, 1, false, false, false},
		{"kpm37", 3, 2, 1, true, true, true},
		{"kpm312", 3, 1, 4, true, true, true},
	} {
		m, ok := ModelByName(tt.name)
		day := false
		for _, p := range m.Publishes {
			day = day || p == TopicDayData
		}
		if !ok || m.Phases != tt.phases || m.Outputs != tt.outputs || m.Circuits != tt.circuits || m.Split != tt.split || m.Residual != tt.residual || day != tt.publishesDayData {
			t.Errorf("%s: %+v, %v", tt.name, m, ok)
		}
	}
	if _, ok := ModelByName("kpm33"); ok {
		t.Error("ModelByName(kpm33): want none")
	}
	if got := strings.Join(ModelNames(), ","); got != "kpm31,kpm33b,kpm37,kpm312" {
		t.Errorf("ModelNames = %s", got)
	}
	// ModelByName hands out copies: a caller cannot change the table.
	m, _ := ModelByName("kpm37")
	m.Publishes[0] = "X"
	if m2, _ := ModelByName("kpm37"); m2.Publishes[0] == "X" {
		t.Error("ModelByName shares its table")
	}
}

// The manual (§2): a KPM312 set to 3120208700001 is four meters,
// 3120208700001..3120208700004.
func TestModel_CircuitIDs(t *testing.T) {
	kpm312, _ := ModelByName("kpm312")
	ids, err := kpm312.CircuitIDs("3120208700001")
	if err != nil || strings.Join(ids, ",") != "3120208700001,3120208700002,3120208700003,3120208700004" {
		t.Errorf("CircuitIDs = %v, %v", ids, err)
	}
	if ids, err := kpm312.CircuitIDs("3120208709996"); err != nil || ids[3] != "3120208709999" {
		t.Errorf("CircuitIDs(…9996) = %v, %v; want up to …9999", ids, err)
	}
	for _, bad := range []string{"3120208709997", "312020870000", "31202087000x1"} {
		if ids, err := kpm312.CircuitIDs(bad); !errors.Is(err, ErrID) {
			t.Errorf("CircuitIDs(%s) = %v, %v; want ErrID", bad, ids, err)
		}
	}
	kpm33b, _ := ModelByName("kpm33b")
	if ids, _ := kpm33b.CircuitIDs("33B1225950027"); len(ids) != 1 {
		t.Errorf("kpm33b circuits %v; want its own id only", ids)
	}
}

func TestSubscriptions(t *testing.T) {
	got := Subscriptions()
	for _, want := range []Topic{TopicRTData, TopicEnyNow, TopicDayData, TopicTeleInd, TopicTeleCtrlRep, TopicTimeRep, TopicCommodRep} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("Subscriptions %v lack %s", got, want)
		}
	}
	if TopicOf("mall/3F/MQTT_ENY_NOW") != TopicEnyNow || TopicOf("MQTT_RT_DATA") != TopicRTData {
		t.Error("TopicOf does not take the last level")
	}
}
