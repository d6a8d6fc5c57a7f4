package mqttlink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// Timings of the client link; variables so that tests can shorten them.
var (
	connectTimeout   = 10 * time.Second // TCP, TLS and CONNACK of one attempt
	maxReconnectWait = 30 * time.Second // cap of the doubling wait between attempts
	connectRetryWait = 2 * time.Second  // between attempts before the first connection
	keepAlive        = 30 * time.Second
	subscribeTimeout = 10 * time.Second
)

// Client is the link of a compere-mqtt bus through the mall's broker.
type Client struct {
	bus     config.Bus
	log     zerolog.Logger
	ids     idSet
	msgs    chan Message
	dropped atomic.Int64
	tls     *tls.Config
	c       atomic.Pointer[paho.Client]
	ctx     context.Context // Run's; set before connecting
}

func newClient(b config.Bus, ids []string, log zerolog.Logger) (*Client, error) {
	cl := &Client{bus: b, log: log, ids: newIDSet(ids), msgs: make(chan Message, queueSize), ctx: context.Background()}
	if b.CAFile != "" {
		pem, err := os.ReadFile(b.CAFile)
		if err != nil {
			return nil, fmt.Errorf("bus %s: %w", b.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bus %s: %s holds no PEM certificate", b.Name, b.CAFile)
		}
		cl.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return cl, nil
}

// Messages implements Link.
func (c *Client) Messages() <-chan Message { return c.msgs }

// Dropped implements Link.
func (c *Client) Dropped() int64 { return c.dropped.Load() }

// Connected implements Link: whether the link to the broker is up.
func (c *Client) Connected() bool {
	p := c.c.Load()
	return p != nil && (*p).IsConnectionOpen()
}

// Run implements Link. A broker that cannot be reached, or that refuses
// the connection, is tried again with a doubling wait up to
// maxReconnectWait, each failure a warning, until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	c.ctx = ctx
	o := paho.NewClientOptions().
		AddBroker(c.bus.Broker).
		SetClientID(c.bus.ClientID).
		SetUsername(c.bus.Username).
		SetPassword(c.bus.Password).
		// The broker keeps the session (subscriptions, QoS 1 messages
		// for us) while the link is down; the stable client id finds it.
		SetCleanSession(false).
		SetOrderMatters(true). // a KPM37's split reading must stay in order
		// A message is acknowledged when the bus takes it (Message.Ack),
		// not when it is queued: the broker keeps what the gateway had
		// not taken when it stopped, and holds back the rest (its
		// inflight window) while the bus is slow, so receive need not
		// block paho's reading of the connection (and its keepalive).
		SetAutoAckDisabled(true).
		// Losses after the first connection; the first is connect's.
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnectWait).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(connectTimeout).
		SetKeepAlive(keepAlive).
		SetPingTimeout(connectTimeout).
		// Messages of the session arrive right after CONNACK, before
		// the subscriptions below are made again: the default handler
		// takes them.
		SetDefaultPublishHandler(c.receive).
		SetOnConnectHandler(c.subscribe).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn().Err(err).Str("broker", c.bus.Broker).Msg("mqtt link lost; reconnecting")
		})
	if c.tls != nil {
		o.SetTLSConfig(c.tls)
	}
	pc := paho.NewClient(o)
	c.c.Store(&pc)
	tok := c.connect(ctx, pc)
	<-ctx.Done()
	// Disconnect also ends an attempt still under way; its wait for the
	// broker to take the DISCONNECT is bounded.
	pc.Disconnect(250)
	if tok != nil && tok.WaitTimeout(connectTimeout) && tok.Error() != nil && !errors.Is(tok.Error(), paho.ErrNotConnected) {
		c.log.Debug().Err(tok.Error()).Msg("mqtt connect ended")
	}
	return nil
}

// connect makes the first connection, until ctx ends, and returns the
// last attempt's token. paho's own retry (SetConnectRetry) retries in
// silence: a wrong password or a broker that is not there would show only
// as meters gone silent, so each failed attempt is reported here.
func (c *Client) connect(ctx context.Context, pc paho.Client) paho.Token {
	wait := connectRetryWait
	for {
		tok := pc.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return tok
		}
		err := tok.Error()
		if err == nil {
			return nil
		}
		c.log.Warn().Err(err).Str("broker", c.bus.Broker).Str("client_id", c.bus.ClientID).Str("retry_in", wait.String()).
			Msg("mqtt connect failed")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, maxReconnectWait)
	}
}

// subscribe makes the QoS 1 subscriptions to the meter topics, on every
// (re)connection: a broker that lost the session (restarted without
// persistence) has none.
func (c *Client) subscribe(pc paho.Client) {
	filters := make(map[string]byte, len(MeterTopics))
	for _, t := range MeterTopics {
		filters[t] = 1
	}
	tok := pc.SubscribeMultiple(filters, c.receive)
	if !tok.WaitTimeout(subscribeTimeout) {
		c.log.Error().Str("broker", c.bus.Broker).Msg("mqtt subscribe: no SUBACK in time")
		return
	}
	if err := tok.Error(); err != nil {
		c.log.Error().Err(err).Str("broker", c.bus.Broker).Msg("mqtt subscribe")
		return
	}
	for t, q := range tok.(*paho.SubscribeToken).Result() {
		if q > 1 {
			c.log.Error().Str("topic", t).Int("code", int(q)).Msg("mqtt subscribe refused by the broker")
		}
	}
	c.log.Info().Str("broker", c.bus.Broker).Str("client_id", c.bus.ClientID).Msg("mqtt link up")
}

// receive queues a meter's message, acknowledged when it is taken. It
// blocks only while the queue is full, which a broker's inflight window
// (mosquitto: 20) smaller than the queue never lets happen. It gives up
// only when Run's context ends: the message, unacknowledged, is sent again
// on the next connection.
func (c *Client) receive(_ paho.Client, m paho.Message) {
	id := meterID(m.Payload())
	if !c.ids[id] {
		// Another gateway's meter on the mall's broker: acknowledged at
		// once, maybe before earlier messages of ours are taken. MQTT
		// 3.1.1 §4.6 asks a client for PUBACKs in the order received;
		// brokers (mosquitto, EMQX) take them in any order, and queueing
		// every other meter's message behind ours would cost more.
		m.Ack()
		n := c.dropped.Add(1)
		c.log.Debug().Str("topic", m.Topic()).Str("id", id).Int64("dropped", n).Msg("mqtt message dropped: not a meter of this bus")
		return
	}
	select {
	case c.msgs <- Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), ack: m.Ack}:
	case <-c.ctx.Done():
	}
}

// Publish implements Link: it returns once the broker acknowledged.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte) error {
	ctx, cancel := publishContext(ctx)
	defer cancel()
	p := c.c.Load()
	if p == nil {
		return errors.New("mqtt link not running")
	}
	tok := (*p).Publish(topic, 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %s: no PUBACK: %w", topic, ctx.Err())
	}
}
