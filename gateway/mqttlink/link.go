package mqttlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// Message is one message a meter published.
type Message struct {
	Topic   string
	Payload []byte
	// ClientID is the publishing MQTT client's id (embedded broker only;
	// "" through the mall's broker, which does not tell).
	ClientID string

	// ack acknowledges the message to its sender; nil: nothing to do.
	ack func()
}

// NewMessage returns a message on topic whose Ack calls ack (nil: none),
// for links of other kinds and for tests of consumers.
func NewMessage(topic string, payload []byte, ack func()) Message {
	return Message{Topic: topic, Payload: payload, ack: ack}
}

// Ack acknowledges the message (its PUBACK) once the receiver has taken it
// and will handle it before it stops. Until then the sender keeps it: a
// message the gateway stopped before taking is sent again, not lost. Ack
// may be called more than once.
func (m Message) Ack() {
	if m.ack != nil {
		m.ack()
	}
}

// Link is a compere-mqtt bus's connection to its meters.
type Link interface {
	// Run serves (embedded) or connects and reconnects (client) until ctx
	// ends; it returns nil then, or the error that kept it from starting
	// (an address in use, a bad TLS file).
	Run(ctx context.Context) error
	// Messages are the messages meters published, for the bus's meter ids.
	// Each is acknowledged to its sender only by its Ack.
	Messages() <-chan Message
	// Publish sends payload to topic with QoS 1, bounded by ctx's deadline
	// or DefaultPublishTimeout.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Connected reports, for a client, whether its link to the broker is
	// up; for the embedded broker, whether it is listening.
	Connected() bool
	// Dropped counts the messages refused for a meter id not on the bus.
	Dropped() int64
}

// MeterTopics are the topics Compere meters publish.
var MeterTopics = []string{
	"MQTT_RT_DATA", "MQTT_ENY_NOW", "MQTT_DAY_DATA", "MQTT_TELEIND", "MQTT_TELECTRL_REP",
	"MQTT_METER_TIME_REP", "MQTT_SYS_SET_REP", "MQTT_COMMOD_SET_REP",
}

// CommandTopics are the prefixes of the topics a meter subscribes to; each
// is followed by the last 8 characters of its id (CommandTopic).
var CommandTopics = []string{"MQTT_TELECTRL_", "MQTT_SETTIME_", "MQTT_COMMOD_SET_", "MQTT_SYS_CFG_"}

// CommandTopic returns the topic of command prefix (one of CommandTopics)
// to meter id: MQTT_TELECTRL_25950027 for 33B1225950027.
func CommandTopic(prefix, id string) string {
	if len(id) > config.CommandSuffixLen {
		id = id[len(id)-config.CommandSuffixLen:]
	}
	return prefix + id
}

// Defaults.
const (
	// QueueSize is the capacity of Messages: about a minute of RT_DATA
	// from 2,000 meters reporting every 30 s.
	QueueSize = 4096
	// EnqueueWait is how long the embedded broker holds a meter's message
	// for room in a full queue before refusing it (no PUBACK).
	EnqueueWait = 5 * time.Second
	// DefaultPublishTimeout bounds a Publish whose ctx has no deadline.
	DefaultPublishTimeout = 10 * time.Second
)

// The queue's size and wait; variables so that tests can fill the queue.
var (
	queueSize   = QueueSize
	enqueueWait = EnqueueWait
)

// ErrNoSubscriber is returned by the embedded broker's Publish when no
// client is subscribed to the topic: the meter is not connected and has no
// session, so the message would go nowhere.
var ErrNoSubscriber = errors.New("no meter subscribed to the topic")

// New returns the link of compere-mqtt bus b, whose meters have the ids
// ids (config.Meter.DeviceID).
func New(b config.Bus, ids []string, log zerolog.Logger) (Link, error) {
	if !b.IsMQTT() {
		return nil, fmt.Errorf("bus %s: type %s is not %s", b.Name, b.Type, config.BusCompereMQTT)
	}
	log = log.With().Str("bus", b.Name).Logger()
	if b.Embedded() {
		return newEmbedded(b, ids, log)
	}
	return newClient(b, ids, log)
}

// meterID reads the "id" of a meter's JSON message; "" when there is none.
func meterID(payload []byte) string {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(payload, &m) != nil || len(m.ID) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(m.ID, &s) != nil {
		return ""
	}
	return s
}

// idSet is the meter ids of a bus.
type idSet map[string]bool

func newIDSet(ids []string) idSet {
	s := make(idSet, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

// commandTopics returns every command topic of ids.
func commandTopics(ids []string) map[string]bool {
	t := make(map[string]bool, len(ids)*len(CommandTopics))
	for _, id := range ids {
		for _, p := range CommandTopics {
			t[CommandTopic(p, id)] = true
		}
	}
	return t
}

func isMeterTopic(topic string) bool { return slices.Contains(MeterTopics, topic) }

// publishContext bounds ctx by DefaultPublishTimeout when it has no deadline.
func publishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultPublishTimeout)
}
