package comperesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"mallgrid/drivers/compere"
)

// field is one tag of a payload: a JSON number's text, or a string.
type field struct {
	key, text string
	quoted    bool
}

// num is a number tag with the given decimals, as the logs write them.
func num(key string, v float64, decimals int) field {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if s[0] == '-' && strings0(s[1:]) {
		s = s[1:] // "-0.000" is no number a meter sends
	}
	return field{key: key, text: s}
}

// strings0 reports whether s is only zeros and a point.
func strings0(s string) bool {
	for _, c := range s {
		if c != '0' && c != '.' {
			return false
		}
	}
	return true
}

// kwh is a counter of whole Wh as kWh with exactly 3 decimals: the integer
// is written out digit by digit, never through a float.
func kwh(key string, wh int64) field {
	return field{key: key, text: fmt.Sprintf("%d.%03d", wh/1000, wh%1000)}
}

func str(key, v string) field { return field{key: key, text: v, quoted: true} }

// encode writes {"id":…, fields…, "time":…, "isend":…}; time and isend are
// left out when empty (replies carry neither).
func encode(id string, fields []field, clock, isend string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":`)
	quote(&b, id)
	for _, f := range fields {
		b.WriteByte(',')
		quote(&b, f.key)
		b.WriteByte(':')
		if f.quoted {
			quote(&b, f.text)
		} else {
			b.WriteString(f.text)
		}
	}
	if clock != "" {
		b.WriteString(`,"time":`)
		quote(&b, clock)
	}
	if isend != "" {
		b.WriteString(`,"isend":`)
		quote(&b, isend)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func quote(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// flatten joins packets into the one packet a 4G meter sends.
func flatten(packets [][]field) []field {
	var out []field
	for _, p := range packets {
		out = append(out, p...)
	}
	return out
}

// zeroed is fields with every number 0, in the field's decimals: the
// all-zero frame real meters send between readings.
func zeroed(fields []field) []field {
	out := make([]field, len(fields))
	for i, f := range fields {
		out[i] = f
		if !f.quoted {
			// 0 with the field's decimals: "0.000" for a counter.
			z := "0"
			if _, frac, ok := strings.Cut(f.text, "."); ok {
				z += "." + strings.Repeat("0", len(frac))
			}
			out[i].text = z
		}
	}
	return out
}

// parseCommand reads a command's JSON object; its values as text.
func parseCommand(payload []byte) (map[string]string, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		}
	}
	return out, nil
}

// rtFields is MQTT_RT_DATA now, in the manual's packets (a KPM37's nine
// over WiFi): the split keeps its tags in its order.
func (s *session) rtFields() (compere.Topic, [][]field) {
	m := s.c.cfg.Model
	v := s.c.meter.Snapshot()
	var p, q, sa [3]float64 // kW, kvar, kVA
	for i := range 3 {
		p[i] = v.PhasePower[i] / 1000
		if pf := v.PhasePF[i]; pf > 0 && pf <= 1 {
			sa[i] = math.Abs(p[i]) / pf
			q[i] = math.Sqrt(math.Max(0, sa[i]*sa[i]-p[i]*p[i]))
		}
	}
	pt, qt, st := p[0]+p[1]+p[2], q[0]+q[1]+q[2], sa[0]+sa[1]+sa[2]
	if m.Phases == 1 {
		return compere.TopicRTData, [][]field{{
			num("ua", v.Voltage[0], 3), num("ia", v.Current[0], 3), num("pa", p[0], 4), num("qa", q[0], 4), num("sa", sa[0], 4),
			num("pfa", v.PhasePF[0], 3), num("zyggl", pt, 4), num("zwggl", qt, 4), num("zszgl", st, 4), num("zglys", v.PF, 3),
			num("f", v.Frequency, 3), num("pdm", pt, 4),
		}}
	}
	line := func(a, b float64) float64 { return (a + b) / 2 * math.Sqrt(3) }
	if !m.Split {
		// A KPM33B's one packet, its tags in the captured logs' order.
		return compere.TopicRTData, [][]field{{
			num("ia", v.Current[0], 3), num("ib", v.Current[1], 3), num("ic", v.Current[2], 3),
			num("ua", v.Voltage[0], 3), num("ub", v.Voltage[1], 3), num("uc", v.Voltage[2], 3),
			num("uab", line(v.Voltage[0], v.Voltage[1]), 3), num("ubc", line(v.Voltage[1], v.Voltage[2]), 3), num("uca", line(v.Voltage[2], v.Voltage[0]), 3),
			num("pa", p[0], 4), num("pb", p[1], 4), num("pc", p[2], 4), num("zyggl", pt, 4),
			num("qa", q[0], 4), num("qb", q[1], 4), num("qc", q[2], 4), num("zwggl", qt, 4),
			num("sa", sa[0], 4), num("sb", sa[1], 4), num("sc", sa[2], 4), num("zszgl", st, 4),
			num("pfa", v.PhasePF[0], 3), num("pfb", v.PhasePF[1], 3), num("pfc", v.PhasePF[2], 3), num("zglys", v.PF, 3),
			num("f", v.Frequency, 3),
			num("uxja", 0, 3), num("uxjb", 240, 3), num("uxjc", 120, 3), num("ixja", 0, 3), num("ixjb", 240, 3), num("ixjc", 120, 3),
			num("unb", 0, 3), num("inb", 0, 3), num("pdm", pt, 4), num("qdm", qt, 4), num("sdm", st, 4),
			num("iadm", v.Current[0], 4), num("ibdm", v.Current[1], 4), num("icdm", v.Current[2], 4),
		}}
	}
	packets := [][]field{
		{num("ua", v.Voltage[0], 3), num("ub", v.Voltage[1], 3), num("uc", v.Voltage[2], 3), num("ia", v.Current[0], 3), num("ib", v.Current[1], 3)},
		{num("ic", v.Current[2], 3), num("uab", line(v.Voltage[0], v.Voltage[1]), 3), num("ubc", line(v.Voltage[1], v.Voltage[2]), 3), num("uca", line(v.Voltage[2], v.Voltage[0]), 3), num("pa", p[0], 4)},
		{num("pb", p[1], 4), num("pc", p[2], 4), num("zyggl", pt, 4), num("qa", q[0], 4), num("qb", q[1], 4)},
		{num("qc", q[2], 4), num("zwggl", qt, 4), num("sa", sa[0], 4), num("sb", sa[1], 4), num("sc", sa[2], 4)},
		{num("zszgl", st, 4), num("pfa", v.PhasePF[0], 3), num("pfb", v.PhasePF[1], 3), num("pfc", v.PhasePF[2], 3), num("zglys", v.PF, 3), num("f", v.Frequency, 3)},
		{num("U0", 0, 3), num("U+", v.Voltage[0], 3), num("U-", 0, 3), num("I0", 0, 3), num("I+", v.Current[0], 3), num("I-", 0, 3)},
		{num("UXJA", 0, 3), num("UXJB", 240, 3), num("UXJC", 120, 3), num("IXJA", 0, 3), num("IXJB", 240, 3), num("IXJC", 120, 3)},
		{num("unb", 0, 3), num("inb", 0, 3), num("pdm", pt, 4), num("qdm", qt, 4), num("sdm", st, 4)},
	}
	if m.Residual {
		packets[7] = append(packets[7], num("ig", v.ResidualMA/1000, 3))
	}
	if m.Temperatures {
		packets = append(packets, []field{num("ta", v.Temps[0], 1), num("tb", v.Temps[1], 1), num("tc", v.Temps[2], 1), num("tn", v.Temps[3], 1)})
	}
	return compere.TopicRTData, packets
}

// energyFields is MQTT_ENY_NOW now, in the manual's eleven packets.
func (s *session) energyFields() (compere.Topic, [][]field) {
	v := s.c.meter.Snapshot()
	m := s.c.cfg.Model
	counters := [][]field{
		{kwh("zygsz", v.ImportWh), kwh("fygsz", v.ExportWh), kwh("zwgsz", 0), kwh("fwgsz", 0)},
		{kwh("zyjsz", v.SharpWh), kwh("fyjsz", 0), kwh("zyfsz", v.PeakWh), kwh("fyfsz", 0)},
		{kwh("zypsz", v.FlatWh), kwh("fypsz", 0), kwh("zyvsz", v.ValleyWh), kwh("fyvsz", 0)},
		{kwh("zydvsz", 0), kwh("fydvsz", 0)},
	}
	if !m.Split {
		// One packet, the tags in the captured logs' order.
		c := counters
		return compere.TopicEnyNow, [][]field{{c[0][0], c[0][1], c[0][2], c[0][3], kwh("zszsz", v.ImportWh),
			c[1][0], c[1][1], c[1][2], c[1][3], c[2][0], c[2][1], c[2][2], c[2][3], c[3][0], c[3][1]}}
	}
	counters[3] = append(counters[3], kwh("zy6sz", 0), kwh("fy6sz", 0))
	harmonics := func(suffix string, keys ...string) []field {
		var out []field
		for _, k := range keys {
			out = append(out, num(k+suffix, 2, 2))
		}
		return out
	}
	ph := []string{"ua", "ub", "uc", "ia", "ib", "ic"}
	return compere.TopicEnyNow, append(counters,
		[]field{num("dmpmax", v.Power/1000, 4), num("dmpmaxoct", float64(v.Time.Unix()), 0), num("dmsmax", v.Power/1000, 4), num("dmsmaxoct", float64(v.Time.Unix()), 0)},
		harmonics("thd", ph...),
		harmonics("xbl3", ph...),
		harmonics("xbl5", ph...),
		harmonics("xbl7", ph...),
		append(harmonics("xb3", "ia", "ib", "ic"), harmonics("xb5", "ia", "ib", "ic")...),
		harmonics("xb7", "ia", "ib", "ic"),
	)
}
