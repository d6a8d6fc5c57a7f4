package mqttlink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

const (
	meterA = "33B1225950027"
	meterB = "33B1225950028"
	meterX = "33B9999999999" // on no bus
)

func rtData(id string, ua float64) []byte {
	return fmt.Appendf(nil, `{"id":"%s","time":"20261130120000","isend":"1","ua":%.1f}`, id, ua)
}

// startEmbedded runs an embedded broker for meterA and meterB with user
// kpm, password secret, on a free port of 127.0.0.1.
func startEmbedded(t *testing.T) (*Embedded, string) {
	t.Helper()
	sum := sha256.Sum256([]byte("secret"))
	b := config.Bus{Name: "f3", Type: config.BusCompereMQTT, Listen: "127.0.0.1:0", Username: "kpm", PasswordSHA256: hex.EncodeToString(sum[:])}
	l, err := New(b, []string{meterA, meterB}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e := l.(*Embedded)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for e.Addr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("broker not listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !e.Connected() {
		t.Error("Connected() = false while listening")
	}
	return e, "tcp://" + e.Addr().String()
}

// meter connects a paho client playing a Compere meter.
func meter(t *testing.T, broker, clientID, user, pass string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(false).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second).SetWriteTimeout(3 * time.Second)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect: no CONNACK")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("token: no reply in 5 s")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

// next takes the next message, as the gateway's bus does: read and
// acknowledged.
func next(t *testing.T, l Link) Message {
	t.Helper()
	select {
	case m := <-l.Messages():
		m.Ack()
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message in 5 s")
		return Message{}
	}
}

func TestEmbedded_Authentication(t *testing.T) {
	_, addr := startEmbedded(t)
	cases := []struct{ name, user, pass string }{
		{"wrong password", "kpm", "guess"},
		{"wrong user", "admin", "secret"},
		{"anonymous", "", ""},
		{"user without password", "kpm", ""},
	}
	for _, tc := range cases {
		if _, err := meter(t, addr, "m-"+strings.ReplaceAll(tc.name, " ", "-"), tc.user, tc.pass); err == nil {
			t.Errorf("%s: connected; want refused", tc.name)
		}
	}
	if _, err := meter(t, addr, "m-good", "kpm", "secret"); err != nil {
		t.Errorf("the right credentials: %v", err)
	}
}

func TestEmbedded_MessagesOfTheBusMetersOnly(t *testing.T) {
	e, addr := startEmbedded(t)
	m, err := meter(t, addr, "kpm-a", "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	// A meter not on the bus first: had it been delivered, it would be
	// the first message out.
	wait(t, m.Publish("MQTT_RT_DATA", 1, false, rtData(meterX, 1)))
	wait(t, m.Publish("MQTT_RT_DATA", 1, false, `{"time":"20261130120000"}`)) // no id at all
	tok := m.Publish("MQTT_RT_DATA", 1, false, rtData(meterA, 229.5))
	got := next(t, e)
	wait(t, tok)
	if got.Topic != "MQTT_RT_DATA" || string(got.Payload) != string(rtData(meterA, 229.5)) || got.ClientID != "kpm-a" {
		t.Errorf("got %+v; want meter A's RT_DATA from client kpm-a", got)
	}
	if n := e.Dropped(); n != 2 {
		t.Errorf("Dropped() = %d; want 2 (the unknown id, the message without one)", n)
	}
	select {
	case extra := <-e.Messages():
		t.Errorf("extra message %s %s", extra.Topic, extra.Payload)
	default:
	}
}

func TestEmbedded_PublishToAnOtherTopicDisconnects(t *testing.T) {
	e, addr := startEmbedded(t)
	m, err := meter(t, addr, "kpm-a", "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	// A meter pretending to be the gateway: a relay command to another
	// meter. MQTT 3.1.1 has no refusal in PUBACK; the broker hangs up.
	tok := m.Publish(CommandTopic("MQTT_TELECTRL_", meterB), 1, false, `{"id":"`+meterA+`","do1":"0"}`)
	tok.WaitTimeout(2 * time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for m.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.IsConnectionOpen() {
		t.Error("still connected after publishing to a command topic")
	}
	select {
	case got := <-e.Messages():
		t.Errorf("delivered %s %s; want nothing", got.Topic, got.Payload)
	default:
	}
}

func TestEmbedded_SubscribeOnlyToOwnBusCommands(t *testing.T) {
	_, addr := startEmbedded(t)
	m, err := meter(t, addr, "kpm-a", "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		topic string
		ok    bool
	}{
		{CommandTopic("MQTT_TELECTRL_", meterA), true},
		{CommandTopic("MQTT_SETTIME_", meterB), true},
		{CommandTopic("MQTT_TELECTRL_", meterX), false}, // a meter of no bus
		{"MQTT_TELECTRL_#", false},
		{"MQTT_RT_DATA", false}, // another meter's readings
		{"#", false},
	}
	for _, tc := range cases {
		tok := m.Subscribe(tc.topic, 1, func(paho.Client, paho.Message) {})
		wait(t, tok)
		code := tok.(*paho.SubscribeToken).Result()[tc.topic]
		if granted := code <= 1; granted != tc.ok {
			t.Errorf("subscribe %s: code %#x; want granted %v", tc.topic, code, tc.ok)
		}
	}
}

func TestEmbedded_PublishReachesTheMeter(t *testing.T) {
	e, addr := startEmbedded(t)
	ctx := context.Background()
	topic := CommandTopic("MQTT_TELECTRL_", meterA)
	if err := e.Publish(ctx, topic, []byte(`{"do1":"0"}`)); err == nil {
		t.Error("Publish with no meter subscribed: nil; want ErrNoSubscriber")
	}
	m, err := meter(t, addr, "kpm-a", "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan paho.Message, 1)
	wait(t, m.Subscribe(topic, 1, func(_ paho.Client, msg paho.Message) { got <- msg }))
	cmd := `{"do1":"0","oprid":"0123456789abcdef0123456789abcdef"}`
	if err := e.Publish(ctx, topic, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-got:
		if string(msg.Payload()) != cmd || msg.Qos() != 1 {
			t.Errorf("meter got %q QoS %d; want %q QoS 1", msg.Payload(), msg.Qos(), cmd)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the meter got no command")
	}
}

// A meter's message is acknowledged only once the consumer has taken it,
// so one still queued when the gateway stops is sent again. A consumer
// that stops taking holds a message only so long: the broker then refuses
// it without PUBACK and goes on serving.
func TestEmbedded_AckedOnlyWhenTaken(t *testing.T) {
	defer func(n int, w time.Duration) { queueSize, enqueueWait = n, w }(queueSize, enqueueWait)
	queueSize, enqueueWait = 1, 400*time.Millisecond
	e, addr := startEmbedded(t)
	m, err := meter(t, addr, "kpm-a", "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	first := m.Publish("MQTT_RT_DATA", 1, false, rtData(meterA, 1))
	if first.WaitTimeout(200 * time.Millisecond) {
		t.Fatalf("acknowledged (err %v) before the consumer took it", first.Error())
	}
	if got := next(t, e); string(got.Payload) != string(rtData(meterA, 1)) {
		t.Errorf("got %s", got.Payload)
	}
	wait(t, first)

	// Not taken within the wait: no PUBACK.
	start := time.Now()
	second := m.Publish("MQTT_RT_DATA", 1, false, rtData(meterA, 2))
	if second.WaitTimeout(time.Second) {
		t.Errorf("second message acknowledged (err %v) though never taken; want no PUBACK", second.Error())
	}
	// The queue is full (the second is still in it): a message of another
	// meter waits for room, then is refused too.
	m2, err := meter(t, addr, "kpm-b", "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	third := m2.Publish("MQTT_RT_DATA", 1, false, rtData(meterB, 3))
	if third.WaitTimeout(time.Second) {
		t.Errorf("third message acknowledged (err %v) with the queue full; want no PUBACK", third.Error())
	}
	// The broker is not stuck: the second is still handed over, and with
	// room again a message goes through, acknowledged when taken.
	if got := next(t, e); string(got.Payload) != string(rtData(meterA, 2)) {
		t.Errorf("got %s; want the second", got.Payload)
	}
	fourth := m2.Publish("MQTT_RT_DATA", 1, false, rtData(meterB, 4))
	if got := next(t, e); string(got.Payload) != string(rtData(meterB, 4)) {
		t.Errorf("after the refusals: got %s; want meter B's", got.Payload)
	}
	wait(t, fourth)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %s", d)
	}
}

// A client asking for a Will is refused: the broker would publish it past
// the ACL, so a Will on another meter's command topic would switch its
// relay behind the gateway's back.
func TestEmbedded_WillRefused(t *testing.T) {
	_, addr := startEmbedded(t)
	victim, err := meter(t, addr, meterB, "kpm", "secret")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	wait(t, victim.Subscribe(CommandTopic("MQTT_TELECTRL_", meterB), 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }))
	o := paho.NewClientOptions().AddBroker(addr).SetClientID(meterA).SetUsername("kpm").SetPassword("secret").
		SetAutoReconnect(false).SetConnectTimeout(3*time.Second).
		SetWill(CommandTopic("MQTT_TELECTRL_", meterB), `{"do1":"0","oprid":"0123456789abcdef0123456789abcdef"}`, 1, false)
	c := paho.NewClient(o)
	tok := c.Connect()
	if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(0) // not clean for the broker: it would send the Will
		t.Fatal("a client with a Will was admitted")
	}
	select {
	case p := <-got:
		t.Errorf("the victim got %s", p)
	case <-time.After(300 * time.Millisecond):
	}
}
