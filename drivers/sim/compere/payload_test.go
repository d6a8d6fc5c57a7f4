package comperesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

// keys returns a JSON object's keys in the order written.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []string
	if _, err := dec.Token(); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		out = append(out, k.(string))
		if _, err := dec.Token(); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return out
}

// TestEnergy_AsTheLogsWriteIt: a KPM33B's ENY_NOW has the captured
// message's tags in its order, and its counters are the integer Wh with
// exactly three decimals of kWh.
func TestEnergy_AsTheLogsWriteIt(t *testing.T) {
	// A KPM33B's message from ../shared/testdata/compere-mqtt/MQTT_ENY_NOW.json.
	sample := []byte(`{"id":"33B1225950027","zygsz":163.486,"fygsz":0.000,"zwgsz":0.000,"fwgsz":11.085,"zszsz":164.331,"zyjsz":8.668,"fyjsz":0.000,"zyfsz":25.344,"fyfsz":0.000,"zypsz":60.573,"fypsz":0.000,"zyvsz":68.898,"fyvsz":0.000,"zydvsz":0.000,"fydvsz":0.000,"time":"20260117211500","isend":"1"}`)
	c := testCircuit(t, "kpm33b", func(c *Config) { load := 0.0; c.LoadW = &load; c.ImportWh = 31057 })
	s := &session{c: c}
	_, packets := s.energyFields()
	got := encode(c.id, flatten(packets), "20260112170000", "1")
	if want := keys(t, bytes.TrimSpace(sample)); !slices.Equal(keys(t, got), want) {
		t.Errorf("tags\n%v\nwant\n%v", keys(t, got), want)
	}
	if !bytes.Contains(got, []byte(`"zygsz":31.057,`)) || !bytes.Contains(got, []byte(`"fygsz":0.000,`)) {
		t.Errorf("counters in %s; want 31.057 and 0.000", got)
	}
	// And its RT_DATA, from ../shared/testdata/compere-mqtt/MQTT_RT_DATA.json.
	rtSample := []byte(`{"id":"33B1225950027","ia":9.735,"ib":9.658,"ic":9.655,"ua":229.097,"ub":231.567,"uc":232.529,"uab":398.949,"ubc":401.920,"uca":399.784,"pa":2.2229,"pb":2.2293,"pc":2.2382,"zyggl":6.6905,"qa":-0.1648,"qb":-0.1649,"qc":-0.1632,"zwggl":-0.4930,"sa":2.2304,"sb":2.2366,"sc":2.2452,"zszgl":6.7122,"pfa":0.996,"pfb":0.996,"pfc":0.996,"zglys":0.996,"f":49.959,"uxja":0.000,"uxjb":239.774,"uxjc":119.874,"ixja":355.691,"ixjb":235.434,"ixjc":115.615,"unb":1.485,"inb":0.823,"pdm":6.6898,"qdm":-0.4971,"sdm":6.7118,"iadm":9.6838,"ibdm":9.6380,"icdm":9.6717,"time":"20260112163900","isend":"1"}`)
	_, rt := s.rtFields()
	if got, want := keys(t, encode(c.id, flatten(rt), "20260112163900", "1")), keys(t, rtSample); !slices.Equal(got, want) {
		t.Errorf("RT_DATA tags\n%v\nwant\n%v", got, want)
	}
	for _, tt := range []struct {
		wh   int64
		want string
	}{{0, "0.000"}, {5, "0.005"}, {31057, "31.057"}, {1_234_567_890, "1234567.890"}} {
		if f := kwh("k", tt.wh); f.text != tt.want {
			t.Errorf("kwh(%d) = %s; want %s", tt.wh, f.text, tt.want)
		}
	}
	if z := zeroed(flatten(packets)); z[0].text != "0.000" {
		t.Errorf("zero frame counter %s; want 0.000", z[0].text)
	}
}

func testCircuit(t *testing.T, modelName string, edit func(*Config)) *Circuit {
	t.Helper()
	cfg := Config{Model: model(t, modelName), ID: id33b, Broker: "tcp://127.0.0.1:1", Location: time.UTC, Seed: 3}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d.Circuits()[0]
}

// TestFaults_SameSeedSameDraws: the fault generator is the seed's.
func TestFaults_SameSeedSameDraws(t *testing.T) {
	draws := func(seed int64) []bool {
		c := testCircuit(t, "kpm33b", func(c *Config) { c.Seed = seed })
		var out []bool
		for range 64 {
			out = append(out, c.hit(0.5))
		}
		return out
	}
	if !slices.Equal(draws(1), draws(1)) {
		t.Error("one seed drew two sequences")
	}
	if slices.Equal(draws(1), draws(2)) {
		t.Error("two seeds drew one sequence")
	}
}

func TestNew_Refuses(t *testing.T) {
	m := model(t, "kpm312")
	for name, cfg := range map[string]Config{
		"no model":      {ID: id33b, Broker: "tcp://h:1"},
		"http broker":   {Model: m, ID: id312, Broker: "http://h:1"},
		"short id":      {Model: m, ID: "123", Broker: "tcp://h:1"},
		"past 9999":     {Model: m, ID: "3120208709998", Broker: "tcp://h:1"},
		"rate above 1":  {Model: m, ID: id312, Broker: "tcp://h:1", Faults: Faults{Split: 1.5}},
		"negative load": {Model: m, ID: id312, Broker: "tcp://h:1", ImportWh: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v; want ErrConfig", name, err)
		}
	}
}
