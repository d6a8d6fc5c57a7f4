package compere

import (
	"testing"
	"time"
)

// FuzzParse: no payload makes parsing, joining, decoding or building a
// reading panic, and what parses without error has a proper id.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"id":"33B1225950027","zygsz":163.486,"zyjsz":8.668,"time":"20260117211500","isend":"1"}`,
		`{"id":"33B1225950027","ua":"229.1","pa":2.2229,"ig":1.3,"time":"20050101000000","isend":"0"}`,
		`{"id":"3071225010001","value":"00000003@00000003","time":"20200108104555"}`,
		`{"id":"3071225010001","do2":"1","oprid":"0123456789abcdef0123456789abcdef","code":"02","msg":"x"}`,
		`{"id":"33B1225950027","zygsz":1e9999,"zyfsz":"-0.000","time":"2026011217000"}`,
		`[]`, `null`, `{"id":1}`,
	} {
		for _, topic := range []string{"MQTT_ENY_NOW", "MQTT_RT_DATA", "MQTT_TELEIND", "MQTT_TELECTRL_REP", "MQTT_DAY_DATA", "MQTT_METER_TIME_REP"} {
			f.Add(topic, []byte(s))
		}
	}
	loc := time.FixedZone("UTC+8", 8*3600)
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		var j Joiner
		for range 3 { // the same packet thrice: joins, and loses sets, too
			p, err := Parse(topic, payload)
			if err != nil {
				return
			}
			if len(p.ID) != IDLen {
				t.Fatalf("Parse took id %q", p.ID)
			}
			msg, ok, _ := j.Add(p)
			if !ok {
				continue
			}
			m, err := Decode(msg, loc)
			if err != nil {
				continue
			}
			switch m := m.(type) {
			case *RTData:
				NewReading(m, nil)
			case *Energy:
				r := NewReading(nil, m)
				if wh, ok := r.ImportWh(); ok && (wh < 0 || wh > maxCounterWh) {
					t.Fatalf("import %d Wh", wh)
				}
			}
		}
		j.Flush()
	})
}
