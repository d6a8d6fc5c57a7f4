package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// Outbox is the durable outbox the link publishes from (*store.DB).
type Outbox interface {
	UplinkAfter(after uint64, limit int) ([]store.UplinkMessage, error)
	AckUplink(seqs ...uint64) error
	UplinkStats() (store.UplinkStats, error)
}

// Handler takes one downlink command: payload is the message as the
// broker delivered it (the signed envelope). It returns nil once the
// command is done with — its result stored, refused or not; an error
// leaves the message unacknowledged, and the broker sends it again on the
// next connection.
type Handler interface {
	Handle(ctx context.Context, payload []byte) error
}

// Encoder gives an outbox message's payload, the same bytes each time it
// is called for the same message (upfeed.Envelope).
type Encoder func(site string, m store.UplinkMessage) ([]byte, error)

// timings are the link's timers; a field so that tests can shorten them.
type timings struct {
	connect  time.Duration // TCP, TLS and CONNACK of one attempt; SUBACK
	publish  time.Duration // a PUBACK's deadline: later, the link is broken
	minRetry time.Duration // first wait before connecting again
	maxRetry time.Duration // cap of the doubling wait
	stable   time.Duration // a connection that lasted this long starts the wait over
	keep     time.Duration // MQTT keepalive
	poll     time.Duration // how often the outbox is read for new messages
	ackEvery time.Duration // how often acknowledgements are written
}

var defaultTimings = timings{
	connect:  10 * time.Second,
	publish:  30 * time.Second,
	minRetry: time.Second,
	maxRetry: 30 * time.Second,
	stable:   30 * time.Second,
	keep:     30 * time.Second,
	poll:     200 * time.Millisecond,
	ackEvery: 100 * time.Millisecond,
}

// downQueue is how many downlink messages wait for the handler; the
// broker holds back the rest (its inflight window).
const downQueue = 8

// Link publishes the outbox to the group's broker and hands the commands
// it takes to a Handler. Status is safe from any goroutine.
type Link struct {
	cfg    config.Uplink
	out    Outbox
	h      Handler
	encode Encoder
	log    zerolog.Logger
	now    func() time.Time
	tls    *tls.Config
	t      timings

	connected atomic.Bool
	since     atomic.Int64 // unix nanoseconds the link last went up or down; 0: not run yet
	lastAck   atomic.Int64 // unix nanoseconds of the last acknowledgement written; 0: none
	published atomic.Int64 // publishes made, resends too
	acked     atomic.Int64 // messages acknowledged by the broker
	connects  atomic.Int64 // connections made

	down chan paho.Message
	stop <-chan struct{} // Run's ctx.Done(), set before any connection
}

// NewLink returns the link of cfg (a broker is set) over out; h takes the
// downlink commands (nil: no subscription), encode makes the payloads and
// now stamps the status. It fails only for TLS files that cannot be read,
// which configuration checks rule out.
func NewLink(cfg config.Uplink, out Outbox, h Handler, encode Encoder, log zerolog.Logger, now func() time.Time) (*Link, error) {
	l := &Link{cfg: cfg, out: out, h: h, encode: encode, log: log, now: now, t: defaultTimings,
		down: make(chan paho.Message, downQueue)}
	if l.cfg.BacklogRate <= 0 {
		l.cfg.BacklogRate = config.DefaultUplinkBacklogRate
	}
	if l.cfg.Inflight <= 0 {
		l.cfg.Inflight = config.DefaultUplinkInflight
	}
	if l.cfg.ClientID == "" {
		l.cfg.ClientID = "mallgrid-" + cfg.SiteID
	}
	t, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	l.tls = t
	return l, nil
}

// tlsConfig is the TLS of an ssl:// broker: the system's roots or CAFile,
// and the client certificate when one is given; nil for tcp://.
func tlsConfig(cfg config.Uplink) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.ClientCert == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink ca_file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if cfg.ClientCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("uplink client_cert: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}

// DownTopic returns the topic site takes its commands from.
func DownTopic(site string) string { return "mallgrid/" + site + "/down" }

// StatusTopic returns the topic of site's retained online/offline status.
func StatusTopic(site string) string { return "mallgrid/" + site + "/up/status" }

// statusPayload is the retained status message: outside the outbox and
// its seqs.
func statusPayload(site, status string) []byte {
	b, _ := json.Marshal(struct {
		V      int    `json:"v"`
		Site   string `json:"site"`
		Status string `json:"status"`
	}{1, site, status}) // cannot fail: strings and an int
	return b
}

// Status describes the link and its outbox for the status page, health and
// metrics.
type Status struct {
	Connected bool `json:"connected"`
	// Since is when the link went up (Connected) or down (zero: it has
	// not run yet); down since its start before its first connection.
	Since time.Time `json:"since,omitzero"`
	// Head is the last seq given, Oldest the oldest unacknowledged (0:
	// none; every seq below it reached the broker), Depth how many wait.
	Head       uint64    `json:"head"`
	Oldest     uint64    `json:"oldest"`
	OldestTime time.Time `json:"oldest_time,omitzero"`
	Depth      int64     `json:"depth"`
	Bytes      int64     `json:"bytes"`
	// LastAck is when an acknowledgement was last written (zero: none
	// since the start).
	LastAck time.Time `json:"last_ack,omitzero"`
	// Published counts publishes since the start, resends too; Acked the
	// PUBACKs; Connects the connections made.
	Published int64 `json:"published"`
	Acked     int64 `json:"acked"`
	Connects  int64 `json:"connects"`
}

// Status returns the link's state and its outbox's; an error only when the
// outbox cannot be read.
func (l *Link) Status() (Status, error) {
	st, err := l.out.UplinkStats()
	if err != nil {
		return Status{}, fmt.Errorf("uplink status: %w", err)
	}
	s := Status{Connected: l.connected.Load(), Head: st.Head, Oldest: st.Oldest, OldestTime: st.OldestTime,
		Depth: st.Depth, Bytes: st.Bytes, Published: l.published.Load(), Acked: l.acked.Load(), Connects: l.connects.Load()}
	if n := l.lastAck.Load(); n != 0 {
		s.LastAck = time.Unix(0, n)
	}
	if n := l.since.Load(); n != 0 {
		s.Since = time.Unix(0, n).In(l.now().Location())
	}
	return s, nil
}

// Run connects, publishes and takes commands until ctx ends; a lost or
// broken connection is made again after a doubling wait (1 s up to 30 s),
// each failure a warning. It returns nil when ctx ends.
func (l *Link) Run(ctx context.Context) error {
	l.stop = ctx.Done()
	l.since.Store(l.now().UnixNano())
	acks := &acker{l: l}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); acks.run(ctx) }()
	go func() { defer wg.Done(); l.handleCommands(ctx) }()
	wait := l.t.minRetry
	for {
		began := time.Now()
		err := l.session(ctx, acks)
		if ctx.Err() != nil {
			break
		}
		if time.Since(began) >= l.t.stable {
			wait = l.t.minRetry
		}
		l.log.Warn().Err(err).Str("broker", l.cfg.Broker).Str("client_id", l.cfg.ClientID).Str("retry_in", wait.String()).
			Msg("uplink down")
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		if ctx.Err() != nil {
			break
		}
		wait = min(2*wait, l.t.maxRetry)
	}
	wg.Wait()
	// The last PUBACKs are written before the database closes: otherwise
	// only sent again on the next start.
	if err := acks.flush(); err != nil {
		l.log.Error().Err(err).Msg("uplink: acknowledgements not written; the messages go again on the next start")
	}
	return nil
}

// options are one connection's: a new paho client each time, so that
// nothing of a lost connection (its message ids, its tokens, its store)
// outlives it — what it left unacknowledged is read again from the outbox.
func (l *Link) options(lost chan<- error) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(l.cfg.Broker).
		SetClientID(l.cfg.ClientID).
		SetUsername(l.cfg.Username).
		SetPassword(l.cfg.Password).
		// The broker keeps the session (the down subscription and the
		// commands for us) while the link is down.
		SetCleanSession(false).
		SetOrderMatters(true).
		// A command is acknowledged once handled, not when it arrives.
		SetAutoAckDisabled(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(l.t.connect).
		SetWriteTimeout(l.t.connect).
		SetKeepAlive(l.t.keep).
		SetPingTimeout(l.t.connect).
		SetBinaryWill(StatusTopic(l.cfg.SiteID), statusPayload(l.cfg.SiteID, "offline"), 1, true).
		// The session's commands arrive right after CONNACK, before the
		// subscription is made again: the default handler takes them.
		SetDefaultPublishHandler(l.receive).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if l.tls != nil {
		o.SetTLSConfig(l.tls)
	}
	return o
}

// session is one connection: it connects, subscribes, publishes until the
// connection is lost, a PUBACK is late or ctx ends, and returns why.
func (l *Link) session(ctx context.Context, acks *acker) error {
	lost := make(chan error, 1)
	pc := paho.NewClient(l.options(lost))
	tok := pc.Connect()
	if err := wait(ctx, tok, l.t.connect); err != nil {
		pc.Disconnect(0)
		return fmt.Errorf("connect: %w", err)
	}
	l.connected.Store(true)
	l.since.Store(l.now().UnixNano())
	l.connects.Add(1)
	defer func() {
		l.connected.Store(false)
		l.since.Store(l.now().UnixNano())
	}()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := wait(sctx, pc.Publish(StatusTopic(l.cfg.SiteID), 1, true, statusPayload(l.cfg.SiteID, "online")), l.t.publish); err != nil {
		pc.Disconnect(0)
		return fmt.Errorf("publish the status: %w", err)
	}
	if err := l.subscribe(sctx, pc); err != nil {
		pc.Disconnect(0)
		return err
	}
	st, err := l.out.UplinkStats()
	if err != nil {
		pc.Disconnect(0)
		return fmt.Errorf("read the outbox: %w", err)
	}
	l.log.Info().Str("broker", l.cfg.Broker).Str("client_id", l.cfg.ClientID).Uint64("backlog_to", st.Head).
		Int64("depth", st.Depth).Msg("uplink up")
	p := &publisher{l: l, pc: pc, acks: acks, boundary: st.Head,
		window: make(chan struct{}, l.cfg.Inflight), backWindow: make(chan struct{}, backlogWindow(l.cfg.Inflight)),
		fail: make(chan error, 1)}
	done := make(chan error, 1)
	go func() { done <- p.run(sctx) }()
	var why error
	select {
	case err := <-lost:
		why = fmt.Errorf("connection lost: %w", err)
	case why = <-done:
		done = nil
	case <-ctx.Done():
	}
	cancel()
	if done != nil {
		<-done
	}
	if err := acks.flush(); err != nil {
		l.log.Error().Err(err).Msg("uplink: acknowledgements not written; retried")
	}
	if ctx.Err() != nil {
		// A clean stop sends no Will: say offline ourselves.
		_ = wait(context.Background(), pc.Publish(StatusTopic(l.cfg.SiteID), 1, true, statusPayload(l.cfg.SiteID, "offline")), time.Second)
	}
	pc.Disconnect(250)
	if why == nil && ctx.Err() == nil {
		why = errors.New("publisher stopped")
	}
	return why
}

// subscribe makes the QoS 1 subscription to the commands, on every
// connection: a broker that lost the session has none.
func (l *Link) subscribe(ctx context.Context, pc paho.Client) error {
	if l.h == nil {
		return nil
	}
	topic := DownTopic(l.cfg.SiteID)
	tok := pc.Subscribe(topic, 1, l.receive)
	if err := wait(ctx, tok, l.t.connect); err != nil {
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
	if q := tok.(*paho.SubscribeToken).Result()[topic]; q > 1 {
		return fmt.Errorf("subscribe %s: refused by the broker (code %d)", topic, q)
	}
	return nil
}

// receive queues a command for the handler. It blocks while the queue is
// full (the broker's window holds back the rest) and gives up only when
// Run ends: unacknowledged, the command comes again.
func (l *Link) receive(_ paho.Client, m paho.Message) {
	if m.Topic() != DownTopic(l.cfg.SiteID) || l.h == nil {
		m.Ack() // not ours: a subscription of an older configuration
		return
	}
	select {
	case l.down <- m:
	case <-l.stop:
	}
}

// handleCommands hands the commands to the handler one at a time and
// acknowledges each it returned nil for.
func (l *Link) handleCommands(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-l.down:
			if err := l.h.Handle(ctx, m.Payload()); err != nil {
				if ctx.Err() == nil {
					l.log.Error().Err(err).Uint16("message_id", m.MessageID()).
						Msg("uplink command not handled; the broker sends it again on the next connection")
				}
				continue
			}
			m.Ack()
		}
	}
}

// wait waits for tok, at most d and while ctx lasts, and returns its error.
func wait(ctx context.Context, tok paho.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker in %s", d)
	case <-ctx.Done():
		return ctx.Err()
	}
}
