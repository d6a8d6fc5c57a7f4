package compere

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mallgrid/drivers/meter"
)

// samples are the messages captured from real KPM33B meters: replay's copy
// of shared/testdata/compere-mqtt, so that the repository holds them once.
var samples = filepath.Join("..", "..", "gateway", "replay", "testdata", "compere-mqtt")

// cst is the zone the meters' clocks are set in.
var cst = time.FixedZone("UTC+8", 8*60*60)

const testID = "33B1225950027"

func mustParse(t *testing.T, topic, payload string) Packet {
	t.Helper()
	p, err := Parse(topic, []byte(payload))
	if err != nil {
		t.Fatalf("Parse(%s, %s): %v", topic, payload, err)
	}
	return p
}

func mustDecode(t *testing.T, p Packet) Message {
	t.Helper()
	m, err := Decode(p, cst)
	if err != nil {
		t.Fatalf("Decode(%s): %v", p.Topic, err)
	}
	return m
}

// sampleLines returns the messages of a captured file: "TOPIC {json}" a
// line, or bare JSON whose topic the file name gives.
func sampleLines(t *testing.T, name string) (topics []string, payloads [][]byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samples, name))
	if err != nil {
		t.Fatal(err)
	}
	fileTopic := string(TopicEnyNow)
	if strings.HasPrefix(name, string(TopicRTData)) {
		fileTopic = string(TopicRTData)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		topic := fileTopic
		if line[0] != '{' {
			tp, rest, _ := bytes.Cut(line, []byte(" "))
			topic, line = string(tp), rest
		}
		topics, payloads = append(topics, topic), append(payloads, bytes.Clone(line))
	}
	return topics, payloads
}

// Every captured message parses and decodes; the logs' zero frames and
// 2005 clocks are reported, counted against an independent reading of the
// text (Python's json, all values == 0).
func TestParse_CapturedSamples(t *testing.T) {
	for _, tt := range []struct {
		file             string
		messages, zeros  int
		wrongClocks      int
		withImport, rtOK int
	}{
		{"MQTT_ENY_NOW.json", 1, 0, 0, 1, 0},
		{"MQTT_ENY_NOW_missing_data.json", 1, 0, 0, 0, 0},
		{"MQTT_RT_DATA.json", 1, 0, 0, 0, 1},
		{"MQTT_RT_DATA_missing_data.json", 1, 0, 0, 0, 1},
		{"MQTT_ENY_NOW_20260112-1535.log", 2072, 1036, 828, 2072, 0},
		{"MQTT_ENY_NOW_20260117-2020.log", 10, 5, 4, 10, 0},
	} {
		t.Run(tt.file, func(t *testing.T) {
			topics, payloads := sampleLines(t, tt.file)
			var j Joiner
			messages, zeros, wrong, withImport, rtOK := 0, 0, 0, 0, 0
			for i := range payloads {
				p, err := Parse(topics[i], payloads[i])
				if err != nil {
					t.Fatalf("message %d: %v", i+1, err)
				}
				msg, ok, lost := j.Add(p)
				if !ok || lost != nil {
					t.Fatalf("message %d: a KPM33B packet is whole; got ok %v, lost %v", i+1, ok, lost)
				}
				m := mustDecode(t, msg)
				messages++
				if errors.Is(m.Head().ClockErr, ErrClock) {
					wrong++
					if m.Head().Clock.Year() != 2005 {
						t.Errorf("message %d: wrong clock %v; want the 2005 it sent", i+1, m.Head().Clock)
					}
				}
				switch m := m.(type) {
				case *Energy:
					if m.ZeroFrame {
						zeros++
					}
					if m.Import.OK {
						withImport++
					}
					if len(m.Bad) != 0 {
						t.Errorf("message %d: bad counters %v", i+1, m.Bad)
					}
				case *RTData:
					if m.Voltage[0].OK && m.Frequency.OK {
						rtOK++
					}
				}
			}
			if messages != tt.messages || zeros != tt.zeros || wrong != tt.wrongClocks || withImport != tt.withImport || rtOK != tt.rtOK {
				t.Errorf("%d messages, %d zero frames, %d wrong clocks, %d with import, %d RT; want %d, %d, %d, %d, %d",
					messages, zeros, wrong, withImport, rtOK, tt.messages, tt.zeros, tt.wrongClocks, tt.withImport, tt.rtOK)
			}
			if left := j.Flush(); len(left) != 0 {
				t.Errorf("open sets at the end: %v", left)
			}
		})
	}
}

func TestDecode_RTDataSample(t *testing.T) {
	_, payloads := sampleLines(t, "MQTT_RT_DATA.json")
	rt := mustDecode(t, mustParse(t, "MQTT_RT_DATA", string(payloads[0]))).(*RTData)
	want := time.Date(2026, 1, 12, 16, 39, 0, 0, cst)
	if rt.ID != testID || !rt.Clock.Equal(want) || rt.ClockErr != nil || rt.ZeroFrame || rt.Packets != 1 {
		t.Errorf("header %+v; want %s at %v, no clock error, not zero", rt.Header, testID, want)
	}
	for _, c := range []struct {
		name string
		got  Value
		want float64
	}{
		{"ua", rt.Voltage[0], 229.097}, {"ic", rt.Current[2], 9.655},
		{"pa", rt.Power[0], 2222.9}, {"zyggl", rt.Power[3], 6690.5},
		{"zwggl", rt.Reactive[3], -493}, {"zszgl", rt.Apparent[3], 6712.2},
		{"pfb", rt.PF[1], 0.996}, {"zglys", rt.PF[3], 0.996}, {"f", rt.Frequency, 49.959},
	} {
		if !c.got.OK || fmt.Sprintf("%.4f", c.got.X) != fmt.Sprintf("%.4f", c.want) {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if rt.Residual.OK || rt.Temp[0].OK || rt.Temp[3].OK {
		t.Errorf("residual %v, temperatures %v: a KPM33B sends none; want them absent", rt.Residual, rt.Temp)
	}
	// The same message without its zyggl: the total power is simply absent.
	_, payloads = sampleLines(t, "MQTT_RT_DATA_missing_data.json")
	rt = mustDecode(t, mustParse(t, "MQTT_RT_DATA", string(payloads[0]))).(*RTData)
	if rt.Power[3].OK || !rt.Power[0].OK || !rt.Reactive[3].OK {
		t.Errorf("missing zyggl: total %v, pa %v, zwggl %v; want only the total absent", rt.Power[3], rt.Power[0], rt.Reactive[3])
	}
}

func TestDecode_EnyNowSample(t *testing.T) {
	_, payloads := sampleLines(t, "MQTT_ENY_NOW.json")
	e := mustDecode(t, mustParse(t, "MQTT_ENY_NOW", string(payloads[0]))).(*Energy)
	want := [4]Counter{{8_668, true}, {25_344, true}, {60_573, true}, {68_898, true}}
	if e.Import != (Counter{163_486, true}) || e.Export != (Counter{0, true}) || e.ReactiveExport != (Counter{11_085, true}) || e.Rates != want {
		t.Errorf("import %v, export %v, reactive export %v, rates %v; want 163486, 0, 11085, %v", e.Import, e.Export, e.ReactiveExport, e.Rates, want)
	}
	_, payloads = sampleLines(t, "MQTT_ENY_NOW_missing_data.json")
	e = mustDecode(t, mustParse(t, "MQTT_ENY_NOW", string(payloads[0]))).(*Energy)
	if e.Import.OK || e.Rates != want || e.ZeroFrame {
		t.Errorf("missing zygsz: import %v, rates %v, zero %v; want import absent, the rates, no zero frame", e.Import, e.Rates, e.ZeroFrame)
	}
}

// Some firmware quotes its numbers: read the same as JSON numbers.
func TestParse_NumbersAsStrings(t *testing.T) {
	p := mustParse(t, "MQTT_ENY_NOW", `{"id":"33B1225950027","zygsz":"31.057","zyjsz":"1.005","zyfsz":2,"zypsz":"0","zyvsz":"4.35","time":"20260112170000","isend":"1"}`)
	e := mustDecode(t, p).(*Energy)
	if e.Import != (Counter{31_057, true}) || e.Rates != [4]Counter{{1_005, true}, {2_000, true}, {0, true}, {4_350, true}} {
		t.Errorf("import %v, rates %v; want 31057, [1005 2000 0 4350]", e.Import, e.Rates)
	}
	rt := mustDecode(t, mustParse(t, "MQTT_RT_DATA", `{"id":"33B1225950027","ua":"229.5","pa":"1.5","ig":"0.03","f":50,"isend":1}`)).(*RTData)
	if rt.Voltage[0] != (Value{229.5, true}) || rt.Power[0] != (Value{1500, true}) || rt.Residual != (Value{30, true}) || rt.Frequency != (Value{50, true}) {
		t.Errorf("ua %v, pa %v, ig %v, f %v; want 229.5 V, 1500 W, 30 mA, 50 Hz", rt.Voltage[0], rt.Power[0], rt.Residual, rt.Frequency)
	}
	// Text that is no decimal is no value: not NaN, not a hex float.
	rt = mustDecode(t, mustParse(t, "MQTT_RT_DATA", `{"id":"33B1225950027","ua":"NaN","ub":"0x1p3","uc":"Inf","ia":"1e400","zygsz":"-1"}`)).(*RTData)
	if rt.Voltage != [3]Value{} || rt.Current[0].OK {
		t.Errorf("voltages %v, ia %v; want all absent", rt.Voltage, rt.Current[0])
	}
	e = mustDecode(t, mustParse(t, "MQTT_ENY_NOW", `{"id":"33B1225950027","zygsz":"-1.000","fygsz":"x","zyjsz":1e13}`)).(*Energy)
	if e.Import.OK || e.Export.OK || e.Rates[0].OK || strings.Join(e.Bad, ",") != "zygsz,fygsz,zyjsz" {
		t.Errorf("import %v, export %v, sharp %v, bad %v; want all absent, bad zygsz,fygsz,zyjsz", e.Import, e.Export, e.Rates[0], e.Bad)
	}
}

func TestParse_Errors(t *testing.T) {
	for _, tt := range []struct {
		payload string
		want    error
		text    string
	}{
		{`{"id":`, ErrPayload, "unexpected EOF"},
		{`[1,2]`, ErrPayload, "array"},
		{`null`, ErrPayload, "null"},
		{``, ErrPayload, "EOF"},
		{`{"id":"33B1225950027"} {"id":"33B1225950028"}`, ErrPayload, "text after"},
		{`{"zygsz":1}`, ErrID, "no meter id"},
		{`{"id":"","zygsz":1}`, ErrID, "no meter id"},
		{`{"id":"33B122595002","zygsz":1}`, ErrID, `"33B122595002" is 12 characters, want 13`},
		{`{"id":"33B12259500270","zygsz":1}`, ErrID, "14 characters"},
	} {
		_, err := Parse("MQTT_ENY_NOW", []byte(tt.payload))
		if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
			t.Errorf("Parse(%s) = %v; want %v saying %q", tt.payload, err, tt.want, tt.text)
		}
	}
	// A wrong id still leaves the packet readable, for logs of any ids.
	p, err := Parse("mall/3F/MQTT_ENY_NOW", []byte(`{"id":"K37","zygsz":1.5,"nested":{"a":1},"flag":true,"isend":"0"}`))
	if v, _ := p.Value("zygsz"); !errors.Is(err, ErrID) || p.ID != "K37" || p.Topic != TopicEnyNow || v != "1.5" || p.End || len(p.Tags()) != 1 {
		t.Errorf("packet %+v, %v; want K37's ENY_NOW, zygsz 1.5, not the end, only zygsz kept, and ErrID", p, err)
	}
	if _, err := Decode(mustParse(t, "MQTT_SYS_REPLY", `{"id":"33B1225950027"}`), cst); !errors.Is(err, ErrTopic) {
		t.Errorf("Decode(MQTT_SYS_REPLY) = %v; want ErrTopic", err)
	}
}

func TestDecode_Clock(t *testing.T) {
	for _, tt := range []struct {
		clock string
		want  time.Time // zero: none
		err   string    // "" : plausible
	}{
		{`"time":"20260112170000",`, time.Date(2026, 1, 12, 17, 0, 0, 0, cst), ""},
		{`"time":"20050101080512",`, time.Date(2005, 1, 1, 8, 5, 12, 0, cst), "before 2010"},
		{`"time":"20091231235959",`, time.Date(2009, 12, 31, 23, 59, 59, 0, cst), "before 2010"},
		{`"time":"20100101000000",`, time.Date(2010, 1, 1, 0, 0, 0, 0, cst), ""},
		{`"time":"20261345170000",`, time.Time{}, "no time"},
		{`"time":"2026011217",`, time.Time{}, "not yyyyMMddHHmmss"},
		{`"time":"-0260112170000",`, time.Time{}, "not yyyyMMddHHmmss"},
		{``, time.Time{}, "no time tag"},
	} {
		e := mustDecode(t, mustParse(t, "MQTT_ENY_NOW", `{"id":"33B1225950027",`+tt.clock+`"zygsz":1}`)).(*Energy)
		if !e.Clock.Equal(tt.want) || (tt.err == "") != (e.ClockErr == nil) ||
			(tt.err != "" && (!errors.Is(e.ClockErr, ErrClock) || !strings.Contains(e.ClockErr.Error(), tt.err))) {
			t.Errorf("%s: clock %v, %v; want %v, %q", tt.clock, e.Clock, e.ClockErr, tt.want, tt.err)
		}
	}
	// Read in the location given: the same text is another instant in UTC.
	p := mustParse(t, "MQTT_ENY_NOW", `{"id":"33B1225950027","time":"20260112170000"}`)
	if m, _ := Decode(p, time.UTC); !m.Head().Clock.Equal(time.Date(2026, 1, 12, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("UTC clock %v; want 17:00 UTC", m.Head().Clock)
	}
}

func TestPacket_ZeroFrame(t *testing.T) {
	for _, tt := range []struct {
		msg  string
		want bool
	}{
		{`{"id":"A","zygsz":0.000,"fwgsz":0,"time":"20260112170000","isend":"1"}`, true},
		{`{"id":"A","zygsz":0.000,"zwgsz":0.011,"time":"20260112170000"}`, false}, // only import is 0: a reading
		{`{"id":"A","zygsz":"0.000","zyjsz":0e5}`, true},
		{`{"id":"A","time":"20260112170000"}`, false},  // no values at all
		{`{"id":"A","zygsz":0.000,"zyjsz":"x"}`, true}, // text is no energy value
		{`{"id":"A","ua":0,"ia":0.000,"f":"0","pfa":-0.0}`, true},
		{`{"id":"A","ua":0,"ia":0.000,"f":49.99}`, false},
	} {
		p, _ := Parse("MQTT_ENY_NOW", []byte(tt.msg))
		if got := p.ZeroFrame(); got != tt.want {
			t.Errorf("ZeroFrame(%s) = %v; want %v", tt.msg, got, tt.want)
		}
	}
}

func TestCounterWh(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"31.057", 31_057},
		{"0.000", 0},
		{"163.486", 163_486},
		{"1.005", 1_005}, // 1.005 × 1000 is 1004.9999999999999 in float64
		{"4.35", 4_350},  // 4349.999999999999
		{"12", 12_000},
		{"12.3456", 12_345}, // below a Wh: dropped
		{"0.0004", 0},
		{"1e3", 1_000_000},
		{"1.5E-3", 1},
		{"2e-10000", 0},
		{"-0.000", 0},
		{"999999999.999", 999_999_999_999},
		{"1000000000", 1_000_000_000_000},
		{"8589934.593", 8_589_934_593},
	} {
		got, err := counterWh(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("counterWh(%s) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "abc", "-1", "-0.001", "1000000000.001", "1e13", "1e99999", ".5", "5.", "0x10", "1e", "1e+", "1e++1", " 1", "1,5",
		"99999999999999999999999", "NaN", "Inf"} {
		if got, err := counterWh(bad); err == nil {
			t.Errorf("counterWh(%q) = %d; want an error", bad, got)
		}
	}
}

// Property: any counter of up to nine integer and six fractional digits
// reads as the integer part × 1000 plus its first three decimals, as
// strconv reads the pieces — to the Wh, where a float path misses some.
func TestCounterWh_MatchesIntegerParsing(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	floatMisses := 0
	for range 200_000 {
		whole := strconv.FormatUint(rng.Uint64N(1_000_000_000), 10)
		frac := ""
		for range rng.IntN(7) {
			frac += strconv.Itoa(rng.IntN(10))
		}
		s := whole
		if frac != "" {
			s += "." + frac
		}
		w, _ := strconv.ParseInt(whole, 10, 64)
		f3, _ := strconv.ParseInt((frac + "000")[:3], 10, 64)
		want := w*1000 + f3
		got, err := counterWh(s)
		if err != nil || got != want {
			t.Fatalf("counterWh(%s) = %d, %v; want %d", s, got, err, want)
		}
		if v, _ := strconv.ParseFloat(s, 64); int64(v*1000) != want {
			floatMisses++
		}
	}
	if floatMisses == 0 {
		t.Error("no value the float path gets wrong: the property proves nothing")
	}
}

// manualKPM37RT is the manual's KPM37 MQTT_RT_DATA over WiFi (§4.1): nine
// packets, the last with "isend":"1".
func manualKPM37RT(id, clock string) []string {
	parts := []string{
		`"ua":220.0,"ub":220.0,"uc":220.0,"ia":5.0,"ib":5.0`,
		`"ic":5.0,"uab":380.0,"ubc":380.0,"uca":380.0,"pa":5.0`,
		`"pb":5.0,"pc":5.0,"zyggl":123.5,"qa":5.0,"qb":5.0`,
		`"qc":5.0,"zwggl":123.456,"sa":5.0,"sb":5.0,"sc":5.0`,
		`"zszgl":123.456,"pfa":0.5,"pfb":0.5,"pfc":0.5,"zglys":0.5,"f":50`,
		`"U0":0.0,"U+":0.0,"U-":0.0,"I0":0.0,"I+":0.0,"I-":0.0`,
		`"UXJA":0.0,"UXJB":0.0,"UXJC":0.0,"IXJA":0.0,"IXJB":0.0,"IXJC":0.0`,
		`"unb":0.6,"inb":0.6,"pdm":10.5,"qdm":5.6,"sdm":15.6,"ig":1.3`,
		`"ta":26.5,"tb":26.5,"tc":26.5,"tn":26.5`,
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		end := "0"
		if i == len(parts)-1 {
			end = "1"
		}
		out[i] = `{"id":"` + id + `",` + p + `,"time":"` + clock + `","isend":"` + end + `"}`
	}
	return out
}

func TestJoiner_KPM37RTDataOverNinePackets(t *testing.T) {
	var j Joiner
	const id = "3071225010001"
	packets := manualKPM37RT(id, "20260112104555")
	for i, s := range packets {
		msg, ok, lost := j.Add(mustParse(t, "MQTT_RT_DATA", s))
		if lost != nil || ok != (i == len(packets)-1) {
			t.Fatalf("packet %d: ok %v, lost %v; want complete only at the ninth", i+1, ok, lost)
		}
		if !ok {
			continue
		}
		rt := mustDecode(t, msg).(*RTData)
		if rt.Packets != 9 || rt.ID != id || rt.ZeroFrame {
			t.Errorf("%d packets from %s, zero %v; want 9 from %s", rt.Packets, rt.ID, rt.ZeroFrame, id)
		}
		r := NewReading(rt, nil)
		for _, c := range []struct {
			q    meter.Quantity
			want float64
		}{
			{meter.VoltageA, 220}, {meter.CurrentC, 5}, {meter.PowerA, 5000}, {meter.Power, 123_500}, {meter.PF, 0.5},
			{meter.Frequency, 50}, {meter.ResidualCurrent, 1300}, {meter.TempA, 26.5}, {meter.TempN, 26.5},
		} {
			if v, ok := r.Value(c.q); !ok || v != c.want {
				t.Errorf("%s = %v, %v; want %v", c.q, v, ok, c.want)
			}
		}
		if n := len(r.Quantities()); n != 3+3+4+4+1+1+4 {
			t.Errorf("%d quantities; want 20: %v", n, r.Quantities())
		}
	}
	// The same set for another meter meanwhile is kept apart.
	a, b := manualKPM37RT(id, "20260112104600"), manualKPM37RT("3071225010002", "20260112104600")
	var done []string
	for i := range a {
		for _, s := range []string{a[i], b[i]} {
			if msg, ok, _ := j.Add(mustParse(t, "MQTT_RT_DATA", s)); ok {
				done = append(done, msg.ID)
			}
		}
	}
	if strings.Join(done, ",") != id+",3071225010002" {
		t.Errorf("interleaved: completed %v; want both meters", done)
	}
}

func TestJoiner_LostEnd(t *testing.T) {
	var j Joiner
	first := manualKPM37RT(testID, "20260112104555")
	for _, s := range first[:4] {
		if _, ok, lost := j.Add(mustParse(t, "MQTT_RT_DATA", s)); ok || lost != nil {
			t.Fatalf("open set: ok %v, lost %v", ok, lost)
		}
	}
	// A packet without a clock joins the open set.
	if _, ok, lost := j.Add(mustParse(t, "MQTT_RT_DATA", `{"id":"`+testID+`","ua":221,"isend":"0"}`)); ok || lost != nil {
		t.Fatalf("clockless packet: ok %v, lost %v", ok, lost)
	}
	// The next upload begins: the open set lost its end.
	next := manualKPM37RT(testID, "20260112104625")
	_, ok, lost := j.Add(mustParse(t, "MQTT_RT_DATA", next[0]))
	want := Lost{Topic: TopicRTData, ID: testID, Clock: "20260112104555", Packets: 5, Reason: LostEnd}
	if ok || lost == nil || *lost != want {
		t.Fatalf("new set: ok %v, lost %+v; want %+v", ok, lost, want)
	}
	var msg Packet
	for _, s := range next[1:] {
		if msg, ok, lost = j.Add(mustParse(t, "MQTT_RT_DATA", s)); lost != nil {
			t.Fatalf("lost %v", lost)
		}
	}
	if rt := mustDecode(t, msg).(*RTData); !ok || rt.Packets != 9 || rt.Voltage[0].X != 220 {
		t.Errorf("second set: ok %v, %d packets, ua %v; want whole, 9, 220 (nothing of the lost one)", ok, rt.Packets, rt.Voltage[0])
	}
	// A whole packet arriving while a set is open ends that set too.
	j.Add(mustParse(t, "MQTT_RT_DATA", first[0]))
	msg, ok, lost = j.Add(mustParse(t, "MQTT_RT_DATA", `{"id":"`+testID+`","ua":230,"time":"20260112110000","isend":"1"}`))
	if !ok || msg.Packets != 1 || lost == nil || lost.Reason != LostEnd {
		t.Errorf("whole packet after an open set: ok %v, %d packets, lost %v; want it through and the set lost", ok, msg.Packets, lost)
	}
	// What is open when the stream ends is reported by Flush.
	j.Add(mustParse(t, "MQTT_ENY_NOW", `{"id":"`+testID+`","zygsz":1,"time":"20260112110000","isend":"0"}`))
	if left := j.Flush(); len(left) != 1 || left[0].Reason != LostPending || left[0].Topic != TopicEnyNow {
		t.Errorf("Flush = %v; want the ENY_NOW set not finished", left)
	}
	if left := j.Flush(); len(left) != 0 {
		t.Errorf("second Flush = %v; want nothing", left)
	}
}

func TestJoiner_Bounded(t *testing.T) {
	j := Joiner{MaxPackets: 4}
	var lost []*Lost
	add := func(s string) (bool, []*Lost) {
		_, ok, l := j.Add(mustParse(t, "MQTT_RT_DATA", s))
		if l != nil {
			lost = append(lost, l)
		}
		return ok, lost
	}
	for _, s := range manualKPM37RT(testID, "20260112104555") {
		if ok, _ := add(s); ok {
			t.Fatal("a set beyond MaxPackets completed; want it dropped to its end")
		}
	}
	if len(lost) != 1 || lost[0].Reason != LostOverflow || lost[0].Packets != 5 {
		t.Fatalf("lost %v; want one set too large at its 5th packet", lost)
	}
	if len(j.sets) != 0 {
		t.Errorf("%d sets kept after the end; want none", len(j.sets))
	}
	// Tags are bounded too, and the joiner works on after a drop.
	j = Joiner{MaxTags: 10}
	lost = nil
	for _, s := range manualKPM37RT(testID, "20260112104625")[:3] {
		add(s)
	}
	if len(lost) != 1 || lost[0].Reason != LostOverflow {
		t.Errorf("lost %v; want the set dropped beyond 10 tags", lost)
	}
	if ok, _ := add(`{"id":"` + testID + `","ua":230,"time":"20260112110000"}`); !ok {
		t.Error("a whole packet after a dropped set did not pass")
	}
}

func TestDecode_Signal(t *testing.T) {
	s := mustDecode(t, mustParse(t, "MQTT_TELEIND", `{"id":"3071225010001","value":"00000003@00000002","time":"20200108104555"}`)).(*Signal)
	if s.DI != 3 || s.Output(1) != meter.RelayOpen || s.Output(2) != meter.RelayClosed || s.Output(3) != meter.RelayOpen || s.Output(0) != meter.RelayUnknown || s.Output(33) != meter.RelayUnknown {
		t.Errorf("DI %x, do1 %v, do2 %v, do3 %v; want 3, open, closed, open", s.DI, s.Output(1), s.Output(2), s.Output(3))
	}
	if s := mustDecode(t, mustParse(t, "MQTT_TELEIND", `{"id":"3071225010001","value":"00000000@80000000"}`)).(*Signal); s.Output(32) != meter.RelayClosed {
		t.Errorf("do32 = %v; want closed", s.Output(32))
	}
	for _, v := range []string{`"value":"3"`, `"value":"@"`, `"value":"00000003@G"`, `"value":"1@123456789"`, `"value":"-1@1"`, `"values":"1@1"`} {
		if _, err := Decode(mustParse(t, "MQTT_TELEIND", `{"id":"3071225010001",`+v+`}`), cst); !errors.Is(err, ErrValue) {
			t.Errorf("TELEIND %s: %v; want ErrValue", v, err)
		}
	}
}

func TestDecode_Replies(t *testing.T) {
	oprid := strings.Repeat("ab", 16)
	c := mustDecode(t, mustParse(t, "MQTT_TELECTRL_REP", `{"id":"3071225010001","do2":"0","oprid":"`+oprid+`","code":"02","msg":"local mode"}`)).(*ControlReply)
	if c.Output != 2 || c.Closed || c.OprID != oprid || c.Done() || c.Code != "02" || c.Msg != "local mode" {
		t.Errorf("reply %+v; want do2 open, failed, local mode", c)
	}
	c = mustDecode(t, mustParse(t, "MQTT_TELECTRL_REP", `{"id":"3071225010001","do1":"1","oprid":"`+oprid+`","code":"01"}`)).(*ControlReply)
	if c.Output != 1 || !c.Closed || !c.Done() {
		t.Errorf("reply %+v; want do1 closed, done", c)
	}
	for _, bad := range []string{`"do1":"1","code":"01"`, `"oprid":"` + oprid + `","code":"01"`, `"do1":"1","do2":"1","oprid":"x"`, `"do0":"1","oprid":"x"`, `"do01":"1","oprid":"x"`} {
		if _, err := Decode(mustParse(t, "MQTT_TELECTRL_REP", `{"id":"3071225010001",`+bad+`}`), cst); !errors.Is(err, ErrValue) {
			t.Errorf("TELECTRL_REP %s: %v; want ErrValue", bad, err)
		}
	}
	for _, topic := range []string{"MQTT_METER_TIME_REP", "MQTT_COMMOD_SET_REP"} {
		r := mustDecode(t, mustParse(t, topic, `{"id":"3071225010001","oprid":"`+oprid+`","code":"01"}`)).(*Reply)
		if r.OprID != oprid || !r.Done() || r.Topic != Topic(topic) {
			t.Errorf("%s: %+v; want done with the oprid", topic, r)
		}
	}
}

func TestNewReading(t *testing.T) {
	_, rtp := sampleLines(t, "MQTT_RT_DATA.json")
	_, enp := sampleLines(t, "MQTT_ENY_NOW.json")
	rt := mustDecode(t, mustParse(t, "MQTT_RT_DATA", string(rtp[0]))).(*RTData)
	e := mustDecode(t, mustParse(t, "MQTT_ENY_NOW", string(enp[0]))).(*Energy)
	r := NewReading(rt, e)
	if wh, ok := r.ImportWh(); !ok || wh != 163_486 {
		t.Errorf("import %d, %v; want 163486 Wh", wh, ok)
	}
	for _, c := range []struct {
		q  meter.Quantity
		wh int64
	}{{meter.Sharp, 8_668}, {meter.Peak, 25_344}, {meter.Flat, 60_573}, {meter.Valley, 68_898}, {meter.Export, 0}} {
		if wh, ok := r.EnergyWh(c.q); !ok || wh != c.wh {
			t.Errorf("%s = %d, %v; want %d", c.q, wh, ok, c.wh)
		}
	}
	if p, ok := r.Value(meter.Power); !ok || fmt.Sprintf("%.1f", p) != "6690.5" {
		t.Errorf("power %v W; want 6690.5 (6.6905 kW)", p)
	}
	if !r.MeterTime.Equal(time.Date(2026, 1, 17, 21, 15, 0, 0, cst)) || r.ClockErr != nil || r.ZeroFrame {
		t.Errorf("meter time %v, %v, zero %v; want the energy message's 2026-01-17 21:15", r.MeterTime, r.ClockErr, r.ZeroFrame)
	}
	zero := mustDecode(t, mustParse(t, "MQTT_ENY_NOW", `{"id":"33B1225950028","zygsz":0.000,"zyjsz":0.000,"time":"20050101080000"}`)).(*Energy)
	r = NewReading(nil, zero)
	if wh, ok := r.ImportWh(); !r.ZeroFrame || !ok || wh != 0 || !errors.Is(r.ClockErr, ErrClock) {
		t.Errorf("zero frame: flagged %v, import %d %v, clock %v; want flagged, 0, the 2005 clock reported", r.ZeroFrame, wh, ok, r.ClockErr)
	}
	if r := NewReading(nil, nil); len(r.Quantities()) != 0 || r.ZeroFrame {
		t.Errorf("nothing: %v", r.Quantities())
	}
}

// The manual's KPM37 MQTT_ENY_NOW over WiFi (§4.2) as printed: eleven
// packets, but the ninth already says "isend":"1". The counters arrive
// whole in the first message; the harmonics after it make a second
// message without counters, which adds nothing to a reading.
func TestJoiner_ManualEnyNowAsPrinted(t *testing.T) {
	const id, clock = "3071225010001", "20200108104555"
	parts := []string{
		`"zygsz":100.00,"fygsz":100.00,"zwgsz":100.00,"fwgsz":100.00`,
		`"zyjsz":10.00,"fyjsz":100.00,"zyfsz":20.00,"fyfsz":100.00`,
		`"zypsz":30.00,"fypsz":100.00,"zyvsz":40.00,"fyvsz":100.00`,
		`"zydvsz":100.00,"fydvsz":100.00,"zy6sz":100.00,"fy6sz":100.00`,
		`"dmpmax":200.00,"dmpmaxoct":1675405205,"dmsmax":260.00`,
		`"uathd":2.00,"ubthd":2.00,"ucthd":2.00,"iathd":2.00,"ibthd":2.00,"icthd":2.00`,
		`"uaxbl3":2.00,"ubxbl3":2.00,"ucxbl3":2.00,"iaxbl3":2.00,"ibxbl3":2.00,"icxbl3":2.00`,
		`"uaxbl5":2.00,"ubxbl5":2.00,"iaxbl5":2.00,"ibxbl5":2.00,"icxbl5":2.00`,
		`"uaxbl7":2.00,"ubxbl7":2.00,"ucxbl7":2.00,"iaxbl7":2.00,"ibxbl7":2.00,"icxbl7":2.00`,
		`"iaxb3":2.00,"ibxb3":2.00,"icxb3":2.00,"iaxb5":2.00,"ibxb5":2.00,"icxb5":2.00`,
		`"iaxb7":2.00,"ibxb7":2.00,"icxb7":2.00`,
	}
	var j Joiner
	var got []*Energy
	for i, part := range parts {
		end := "0"
		if i == 8 || i == 10 {
			end = "1"
		}
		msg, ok, lost := j.Add(mustParse(t, "MQTT_ENY_NOW", `{"id":"`+id+`",`+part+`,"time":"`+clock+`","isend":"`+end+`"}`))
		if lost != nil {
			t.Fatalf("packet %d: lost %v", i+1, lost)
		}
		if ok {
			got = append(got, mustDecode(t, msg).(*Energy))
		}
	}
	if len(got) != 2 || got[0].Packets != 9 || got[1].Packets != 2 {
		t.Fatalf("%d messages; want 2, of 9 and 2 packets", len(got))
	}
	e := got[0]
	if e.Import != (Counter{100_000, true}) || e.Rates != [4]Counter{{10_000, true}, {20_000, true}, {30_000, true}, {40_000, true}} || e.ZeroFrame {
		t.Errorf("first message: import %v, rates %v, zero %v", e.Import, e.Rates, e.ZeroFrame)
	}
	if r := NewReading(nil, got[1]); len(r.Quantities()) != 0 || got[1].ZeroFrame {
		t.Errorf("harmonics message: quantities %v, zero %v; want none, not a zero frame", r.Quantities(), got[1].ZeroFrame)
	}
}

// MQTT_DAY_DATA (§4.3): the counters frozen at 0:00, zygdd the import.
func TestDecode_DayData(t *testing.T) {
	var j Joiner
	var msg Packet
	var ok bool
	for _, s := range []string{
		`{"id":"3071225010001","zygdd":1234.5,"fygdd":0,"zwgdd":1,"fwgdd":2,"time":"20260112000000","isend":"0"}`,
		`{"id":"3071225010001","zyjsz":100,"fyjsz":0,"zyfsz":200,"fyfsz":0,"time":"20260112000000","isend":"0"}`,
		`{"id":"3071225010001","zypsz":300,"fypsz":0,"zyvsz":634.5,"fyvsz":0,"time":"20260112000000","isend":"1"}`,
	} {
		msg, ok, _ = j.Add(mustParse(t, "MQTT_DAY_DATA", s))
	}
	e := mustDecode(t, msg).(*Energy)
	if !ok || e.Topic != TopicDayData || e.Import != (Counter{1_234_500, true}) || e.ReactiveExport != (Counter{2_000, true}) ||
		e.Rates != [4]Counter{{100_000, true}, {200_000, true}, {300_000, true}, {634_500, true}} ||
		!e.Clock.Equal(time.Date(2026, 1, 12, 0, 0, 0, 0, cst)) {
		t.Errorf("day data %+v", e)
	}
}

// A meter that stamps each packet as it sends it may cross a second within
// one set: that is no new set. The next upload is 30 s or more later.
func TestJoiner_ClockTicksWithinASet(t *testing.T) {
	var j Joiner
	packets := manualKPM37RT(testID, "20260112104559")
	for i, s := range packets {
		if i >= 4 {
			s = strings.Replace(s, "20260112104559", "20260112104601", 1)
		}
		msg, ok, lost := j.Add(mustParse(t, "MQTT_RT_DATA", s))
		if lost != nil {
			t.Fatalf("packet %d: lost %v; want one set across the tick", i+1, lost)
		}
		if ok && msg.Packets != 9 {
			t.Errorf("%d packets joined; want 9", msg.Packets)
		}
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"20260112104559", "20260112104613", true},
		{"20260112104559", "20260112104614", false},
		{"20260112104614", "20260112104559", false},
		{"20260112104559", "20260112104629", false},
		{"20260112104559", "", true},
		{"2026011210455x", "2026011210455y", false},
	} {
		if got := sameSet(tt.a, tt.b); got != tt.same {
			t.Errorf("sameSet(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.same)
		}
	}
}
