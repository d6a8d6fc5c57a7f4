package compere

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Topic is a topic a meter publishes, without any prefix the broker's
// layout adds.
type Topic string

// Topics the meters publish (manual §4).
const (
	TopicRTData      Topic = "MQTT_RT_DATA"        // instantaneous values
	TopicEnyNow      Topic = "MQTT_ENY_NOW"        // energy counters
	TopicDayData     Topic = "MQTT_DAY_DATA"       // counters frozen at 0:00 (KPM37, KPM312)
	TopicTeleInd     Topic = "MQTT_TELEIND"        // DI/DO states on a change
	TopicTeleCtrlRep Topic = "MQTT_TELECTRL_REP"   // reply to a relay command
	TopicTimeRep     Topic = "MQTT_METER_TIME_REP" // reply to MQTT_SETTIME
	TopicCommodRep   Topic = "MQTT_COMMOD_SET_REP" // reply to MQTT_COMMOD_SET
)

// Subscriptions are the topics a gateway subscribes to for its meters.
func Subscriptions() []Topic {
	return []Topic{TopicRTData, TopicEnyNow, TopicDayData, TopicTeleInd, TopicTeleCtrlRep, TopicTimeRep, TopicCommodRep}
}

// TopicOf is the last level of an MQTT topic: a broker's layout may put
// the meters' topics below a prefix ("mall/3F/MQTT_ENY_NOW").
func TopicOf(topic string) Topic {
	return Topic(topic[strings.LastIndexByte(topic, '/')+1:])
}

// IDLen is the length of every Compere meter id (manual §6.1).
const IDLen = 13

// Packet is one MQTT message of a meter, or several joined by a Joiner.
// Its values are kept as the text the meter sent, so that counters can be
// read exactly.
type Packet struct {
	Topic Topic
	ID    string
	Clock string // the "time" tag as sent; "" if absent
	// End is false only for a packet that says "isend":"0": more packets
	// of the same message follow. A packet without isend is whole.
	End bool
	// Packets is how many packets were joined into this one.
	Packets int

	values map[string]string // tag → number text, or string contents
}

// Value returns a tag's value as text, and whether the packet has it as a
// number or a string.
func (p *Packet) Value(tag string) (string, bool) {
	v, ok := p.values[tag]
	return v, ok
}

// Tags returns the packet's tags with a number or string value, sorted.
func (p *Packet) Tags() []string { return slices.Sorted(maps.Keys(p.values)) }

// Parse reads one MQTT message a meter published. topic may carry a prefix
// (TopicOf); a topic this package does not know is kept, for Decode to
// refuse. A payload that is not a single JSON object is ErrPayload. Tags
// whose value is neither a number nor a string (null, true, objects) are
// dropped as unknown.
//
// A missing id, or one not IDLen characters, is ErrID; the packet is then
// still returned filled in, for a reader of logs that keeps such ids.
func Parse(topic string, payload []byte) (Packet, error) {
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // counters are read from their text, never through a float
	if err := dec.Decode(&fields); err != nil {
		return Packet{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if dec.More() {
		return Packet{}, fmt.Errorf("%w: text after the JSON object", ErrPayload)
	}
	if fields == nil {
		return Packet{}, fmt.Errorf("%w: null", ErrPayload)
	}
	p := Packet{Topic: TopicOf(topic), End: true, Packets: 1, values: make(map[string]string, len(fields))}
	for k, v := range fields {
		var s string
		switch v := v.(type) {
		case json.Number:
			s = v.String()
		case string:
			s = v
		default:
			continue
		}
		switch k {
		case "id":
			p.ID = s
		case "time":
			p.Clock = s
		case "isend":
			p.End = s != "0"
		default:
			p.values[k] = s
		}
	}
	switch {
	case p.ID == "":
		return p, fmt.Errorf("%w: no meter id", ErrID)
	case len(p.ID) != IDLen:
		return p, fmt.Errorf("%w: id %q is %d characters, want %d", ErrID, p.ID, len(p.ID), IDLen)
	}
	return p, nil
}

// energyTags are the counters of MQTT_ENY_NOW: by them a bare JSON line of
// a log, without its topic, is known as one.
var energyTags = []string{"zygsz", "fygsz", "zwgsz", "fwgsz", "zszsz", "zyjsz", "zyfsz", "zypsz", "zyvsz", "zydvsz"}

// HasEnergy reports whether p holds an MQTT_ENY_NOW counter, for reading
// logs captured without their topics.
func (p *Packet) HasEnergy() bool {
	return slices.ContainsFunc(energyTags, func(t string) bool { _, ok := p.values[t]; return ok })
}

// ZeroFrame reports whether every numeric value of p is zero, and it has
// some: what a meter sends between real readings (counter 31.057 → 0 →
// 31.057), never a reading of 0. Text that is no number does not count.
func (p *Packet) ZeroFrame() bool {
	n := 0
	for _, v := range p.values {
		zero, ok := isZero(v)
		if !ok {
			continue
		}
		if !zero {
			return false
		}
		n++
	}
	return n > 0
}
