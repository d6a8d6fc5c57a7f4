package mqttlink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// Embedded is the broker of an embedded compere-mqtt bus.
type Embedded struct {
	bus      config.Bus
	log      zerolog.Logger
	ids      idSet
	commands map[string]bool
	digest   []byte // SHA-256 of the meters' password
	tls      *tls.Config
	msgs     chan Message
	dropped  atomic.Int64

	ctx    context.Context // Run's, for the hook's waits; set before serving
	mu     sync.Mutex
	server *mqtt.Server
	addr   net.Addr
	up     atomic.Bool
}

func newEmbedded(b config.Bus, ids []string, log zerolog.Logger) (*Embedded, error) {
	e := &Embedded{bus: b, log: log, ids: newIDSet(ids), commands: commandTopics(ids), digest: b.PasswordDigest(),
		msgs: make(chan Message, queueSize), ctx: context.Background()}
	if len(e.digest) != sha256.Size || b.Username == "" {
		return nil, fmt.Errorf("bus %s: the embedded broker needs username and password_sha256", b.Name)
	}
	if b.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(b.TLSCert, b.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("bus %s: %w", b.Name, err)
		}
		e.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return e, nil
}

// Messages implements Link.
func (e *Embedded) Messages() <-chan Message { return e.msgs }

// Connected implements Link: whether the broker is listening.
func (e *Embedded) Connected() bool { return e.up.Load() }

// Dropped implements Link.
func (e *Embedded) Dropped() int64 { return e.dropped.Load() }

// Addr returns the address the broker listens on, nil before it does: with
// port 0, the port taken.
func (e *Embedded) Addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Run implements Link.
func (e *Embedded) Run(ctx context.Context) error {
	e.ctx = ctx
	s := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slogger(e.log),
		Capabilities: capabilities(),
		// The broker's own $SYS statistics are of no use to meters and
		// would cost a publish every interval.
		SysTopicResendInterval: 0,
	})
	if err := s.AddHook(&guard{e: e}, nil); err != nil {
		return err
	}
	ln := listeners.NewTCP(listeners.Config{ID: e.bus.Name, Address: e.bus.Listen, TLSConfig: e.tls})
	if err := s.AddListener(ln); err != nil {
		return fmt.Errorf("bus %s: listen %s: %w", e.bus.Name, e.bus.Listen, err)
	}
	if err := s.Serve(); err != nil {
		_ = s.Close()
		return fmt.Errorf("bus %s: %w", e.bus.Name, err)
	}
	addr, _ := net.ResolveTCPAddr("tcp", ln.Address())
	e.mu.Lock()
	e.server, e.addr = s, addr
	e.mu.Unlock()
	e.up.Store(true)
	e.log.Info().Str("listen", ln.Address()).Bool("tls", e.tls != nil).Msg("mqtt broker listening")
	<-ctx.Done()
	e.up.Store(false)
	e.mu.Lock()
	e.server = nil
	e.mu.Unlock()
	// Close stops the listener and disconnects every client; their
	// goroutines end with their connections.
	if err := s.Close(); err != nil {
		e.log.Warn().Err(err).Msg("close mqtt broker")
	}
	return nil
}

// capabilities bound what one client can make the broker hold: the meters
// send a message a minute or so and need no more than a handful in flight.
func capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MaximumInflight = 64             // QoS 1 messages kept for one client awaiting its PUBACK
	c.ReceiveMaximum = 16              // QoS 1 messages a client may have unacknowledged towards the broker
	c.MaximumClientWritesPending = 256 // packets queued to one client's connection; beyond, they are dropped
	c.MaximumMessageExpiryInterval = 24 * 60 * 60
	c.MaximumSessionExpiryInterval = 7 * 24 * 60 * 60
	c.RetainAvailable = 0 // a retained command would switch a relay again at every reconnection
	c.MaximumQos = 1
	return c
}

// Publish implements Link: QoS 1 through the broker's inline client.
func (e *Embedded) Publish(ctx context.Context, topic string, payload []byte) error {
	ctx, cancel := publishContext(ctx)
	defer cancel()
	e.mu.Lock()
	s := e.server
	e.mu.Unlock()
	if s == nil {
		return errors.New("mqtt broker not running")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	subs := s.Topics.Subscribers(topic)
	if len(subs.Subscriptions) == 0 && len(subs.Shared) == 0 {
		return fmt.Errorf("publish %s: %w", topic, ErrNoSubscriber)
	}
	// The inline publish only queues the message to each subscriber's
	// session, which is bounded (MaximumClientWritesPending): it does
	// not block.
	if err := s.Publish(topic, payload, false, 1); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// guard is the broker's hook: authentication, the ACL, and the hand-over
// of meters' messages to Messages.
type guard struct {
	mqtt.HookBase
	e *Embedded
}

func (g *guard) ID() string { return "mallgrid-guard" }

func (g *guard) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish}, []byte{b})
}

// OnConnectAuthenticate admits only the bus's user with its password,
// and no client with a Will: the broker publishes a Will without the ACL
// (OnACLCheck, OnPublish), so a Will on MQTT_TELECTRL_<another meter>
// would switch a relay the gateway never commanded. The meters send none.
func (g *guard) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	e := g.e
	if pk.Connect.WillFlag {
		e.log.Warn().Str("client", cl.ID).Str("remote", remote(cl)).Str("will_topic", pk.Connect.WillTopic).
			Msg("mqtt client refused: it asks for a Will message")
		return false
	}
	sum := sha256.Sum256(pk.Connect.Password)
	userOK := subtle.ConstantTimeCompare(pk.Connect.Username, []byte(e.bus.Username)) == 1
	passOK := subtle.ConstantTimeCompare(sum[:], e.digest) == 1
	if !pk.Connect.UsernameFlag || !pk.Connect.PasswordFlag || !userOK || !passOK {
		e.log.Warn().Str("client", cl.ID).Str("remote", remote(cl)).Bool("anonymous", !pk.Connect.UsernameFlag).
			Msg("mqtt client refused: wrong username or password")
		return false
	}
	return true
}

// OnACLCheck lets a meter publish to meter topics only and subscribe to
// the command topics of the bus's meters only.
func (g *guard) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		if isMeterTopic(topic) {
			return true
		}
		g.e.log.Warn().Str("client", cl.ID).Str("topic", topic).Msg("mqtt publish refused: not a meter topic")
		return false
	}
	if g.e.commands[topic] {
		return true
	}
	g.e.log.Warn().Str("client", cl.ID).Str("topic", topic).Msg("mqtt subscribe refused: not a command topic of this bus's meters")
	return false
}

// OnPublish drops messages for meter ids not on the bus and queues the
// others to Messages; the broker acknowledges them once they are taken.
func (g *guard) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	e := g.e
	if cl.Net.Inline {
		return pk, nil // the gateway's own command
	}
	id := meterID(pk.Payload)
	if !e.ids[id] {
		n := e.dropped.Add(1)
		e.log.Warn().Str("client", cl.ID).Str("topic", pk.TopicName).Str("id", id).Int64("dropped", n).
			Msg("mqtt message dropped: not a meter of this bus")
		// Acknowledged, so that the meter does not send it again, but
		// passed to no one.
		return pk, packets.CodeSuccessIgnore
	}
	taken := make(chan struct{})
	var once sync.Once
	m := Message{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload), ClientID: cl.ID,
		ack: func() { once.Do(func() { close(taken) }) }}
	// The meter gets its PUBACK only once the consumer has taken the
	// message (Ack): one still queued when the gateway stops is sent
	// again by the meter, not lost. Only this meter's connection waits.
	t := time.NewTimer(enqueueWait)
	defer t.Stop()
	select {
	case e.msgs <- m:
	case <-t.C:
		e.log.Warn().Str("client", cl.ID).Str("topic", pk.TopicName).Msg("mqtt message refused: queue full; the meter sends it again")
		return pk, packets.ErrRejectPacket
	case <-e.ctx.Done():
		return pk, packets.ErrRejectPacket
	}
	select {
	case <-taken:
	case <-t.C:
		// Queued, so it will still be handled; without a PUBACK the
		// meter sends it again, a duplicate the consumer handles.
		e.log.Warn().Str("client", cl.ID).Str("topic", pk.TopicName).Msg("mqtt message not taken in time; not acknowledged")
		return pk, packets.ErrRejectPacket
	case <-e.ctx.Done():
		return pk, packets.ErrRejectPacket
	}
	// Only the gateway reads meters' messages; no other client may
	// subscribe to them, so the broker need not route them on.
	return pk, packets.CodeSuccessIgnore
}

func remote(cl *mqtt.Client) string {
	if cl.Net.Conn == nil {
		return ""
	}
	return cl.Net.Conn.RemoteAddr().String()
}
