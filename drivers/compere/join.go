package compere

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Bounds of a set of packets being joined. A KPM37 over WiFi sends the
// most: 11 packets of up to 7 tags for MQTT_ENY_NOW.
const (
	DefaultMaxPackets = 32
	DefaultMaxTags    = 512
)

// Joiner joins the packets of split messages, per meter and topic. It is
// not safe for concurrent use; its memory is one set per meter and topic,
// each bounded by MaxPackets and MaxTags — so the caller adds only packets
// of meters it knows (the broker admits configured ids only). The zero
// Joiner is ready to use.
type Joiner struct {
	// MaxPackets and MaxTags bound one set: a set that grows beyond either
	// is dropped and reported, and the rest of its packets up to its end
	// are dropped with it. DefaultMaxPackets and DefaultMaxTags if zero.
	MaxPackets, MaxTags int

	sets map[setKey]*set
}

type setKey struct {
	id    string
	topic Topic
}

type set struct {
	p       Packet
	discard bool // overflowed: drop packets up to the end
}

// Lost is a set of packets that never became a message.
type Lost struct {
	Topic   Topic
	ID      string
	Clock   string // of the set's packets
	Packets int
	Reason  string
}

// Lost reasons.
const (
	LostEnd      = "lost_end"     // a new set began before this one's "isend":"1"
	LostOverflow = "too_large"    // beyond MaxPackets or MaxTags
	LostPending  = "not_finished" // still open when the stream ended (Flush)
)

func (l *Lost) Error() string {
	return fmt.Sprintf("compere: %s %s at %q: %d packets dropped: %s", l.ID, l.Topic, l.Clock, l.Packets, l.Reason)
}

// Add takes the next packet of a meter and topic. It returns the complete
// message when p ends one (ok), and the set p displaced, if any: a packet
// whose clock is NewSetAfter or more from the open set's begins a new
// message, so the open one lost its end. Packets without a clock join the
// open set.
func (j *Joiner) Add(p Packet) (msg Packet, ok bool, lost *Lost) {
	k := setKey{p.ID, p.Topic}
	s := j.sets[k]
	if s != nil && !sameSet(s.p.Clock, p.Clock) {
		if !s.discard {
			lost = s.lost(LostEnd)
		}
		delete(j.sets, k)
		s = nil
	}
	if s == nil {
		if p.End {
			return p, true, lost // a whole packet: straight through
		}
		if j.sets == nil {
			j.sets = map[setKey]*set{}
		}
		// The set owns its values: later packets are merged into them.
		p.values = maps.Clone(p.values)
		j.sets[k] = &set{p: p}
		return Packet{}, false, lost
	}
	s.p.Packets++
	if !s.discard {
		maps.Copy(s.p.values, p.values)
		if p.Clock != "" {
			s.p.Clock = p.Clock
		}
		if s.p.Packets > cmp.Or(j.MaxPackets, DefaultMaxPackets) || len(s.p.values) > cmp.Or(j.MaxTags, DefaultMaxTags) {
			lost = s.lost(LostOverflow)
			s.discard, s.p.values = true, nil
		}
	}
	if !p.End {
		return Packet{}, false, lost
	}
	delete(j.sets, k)
	if s.discard {
		return Packet{}, false, lost
	}
	s.p.End = true
	return s.p, true, lost
}

// NewSetAfter is how far apart two packets' clocks are when they belong to
// two uploads. The manual gives a set's packets one time; a meter that
// stamps each packet as it sends it may cross a second within a set, but
// the next upload is at least 30 s later (the shortest interval, §3.1.2).
const NewSetAfter = 15 * time.Second

// sameSet reports whether packets stamped a and b can be of one set.
func sameSet(a, b string) bool {
	if a == "" || b == "" || a == b {
		return true
	}
	ta, errA := time.Parse("20060102150405", a)
	tb, errB := time.Parse("20060102150405", b)
	if errA != nil || errB != nil {
		return false
	}
	d := ta.Sub(tb)
	return -NewSetAfter < d && d < NewSetAfter
}

func (s *set) lost(reason string) *Lost {
	return &Lost{Topic: s.p.Topic, ID: s.p.ID, Clock: s.p.Clock, Packets: s.p.Packets, Reason: reason}
}

// Flush ends the stream: it returns the sets still open, by meter id and
// topic, and forgets them.
func (j *Joiner) Flush() []Lost {
	var out []Lost
	for _, k := range slices.SortedFunc(maps.Keys(j.sets), func(a, b setKey) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.topic, b.topic))
	}) {
		if s := j.sets[k]; !s.discard {
			out = append(out, *s.lost(LostPending))
		}
	}
	clear(j.sets)
	return out
}
