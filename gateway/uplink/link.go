package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
	"golang.org/x/net/proxy"

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
// command is done with — its result stored, refused or not. An error
// leaves the message unacknowledged: the link tries it again a few times
// (the handler is idempotent per command id), then ends the connection so
// that the broker sends it again on the next one.
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
	cmdRetry time.Duration // first wait before a failed command is tried again; doubles up to cmdMax
	cmdMax   time.Duration
	cmdTries int // tries of a command before the connection is ended for the broker to send it again
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
	// 1+2+4+8+15+15 s: a store busy for a minute is waited out on the
	// same connection; a command that still fails goes back to the broker.
	cmdRetry: time.Second,
	cmdMax:   15 * time.Second,
	cmdTries: 7,
}

// downLimit bounds the commands received and not yet handled. The broker
// sends no more than its inflight window unacknowledged (mosquitto's
// max_inflight_messages, 20 by default; EMQX's max_inflight, 32), so the
// bound is not reached in practice; beyond it a command is not taken and
// the connection is ended, so that the broker sends them all again.
const downLimit = 1000

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

	// queue holds the commands received and not yet handled, in the
	// order they came: receive appends (it must never block paho's
	// router, which reads the PUBACKs and PINGRESPs too), one goroutine
	// handles them in order — an invoice_status follows its topup.
	qmu    sync.Mutex
	queue  []paho.Message
	queued chan struct{} // a token when queue may have something
	// resend carries why the connection is ended so that the broker sends
	// the unacknowledged commands again.
	resend chan error
}

// NewLink returns the link of cfg (a broker is set) over out; h takes the
// downlink commands (nil: no subscription), encode makes the payloads and
// now stamps the status. It fails only for TLS files that cannot be read,
// which configuration checks rule out.
func NewLink(cfg config.Uplink, out Outbox, h Handler, encode Encoder, log zerolog.Logger, now func() time.Time) (*Link, error) {
	l := &Link{cfg: cfg, out: out, h: h, encode: encode, log: log, now: now, t: defaultTimings,
		queued: make(chan struct{}, 1), resend: make(chan error, 1)}
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
// and the client certificate when one is given; nil for tcp://. It is
// always made for ssl://, with the broker's host as ServerName: through a
// proxy (all_proxy) paho has no host of its own to check the certificate
// against, and never connected.
func tlsConfig(cfg config.Uplink) (*tls.Config, error) {
	u, err := url.Parse(cfg.Broker)
	if err != nil || u.Scheme != "ssl" {
		return nil, nil //nolint:nilerr // tcp:// (or a broker the configuration refuses): no TLS
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
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
func (l *Link) options(ctx context.Context, lost chan<- error) *paho.ClientOptions {
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
	o.SetCustomOpenConnectionFn(func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) { return l.dial(ctx, uri) })
	return o
}

// dial opens the connection to the broker at uri, through the proxy of
// all_proxy when one is set, with TLS for ssl://. The connection is closed
// when ctx ends: paho cannot be told to stop waiting for a CONNACK (a
// broker that took the connection and never answers held it for the
// connect timeout after Run was stopped).
func (l *Link) dial(ctx context.Context, uri *url.URL) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, l.t.connect)
	defer cancel()
	d := proxy.FromEnvironmentUsing(&net.Dialer{})
	var conn net.Conn
	var err error
	if cd, ok := d.(proxy.ContextDialer); ok {
		conn, err = cd.DialContext(dctx, "tcp", uri.Host)
	} else {
		conn, err = d.Dial("tcp", uri.Host)
	}
	if err != nil {
		return nil, err
	}
	if l.tls != nil {
		tc := tls.Client(conn, l.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &ctxConn{Conn: conn, stop: context.AfterFunc(ctx, func() { _ = conn.Close() })}, nil
}

// ctxConn is a connection closed when a context ends; closed before, it
// forgets the context (Run's lasts for months of reconnections).
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// session is one connection: it connects, subscribes, publishes until the
// connection is lost, a PUBACK is late or ctx ends, and returns why.
func (l *Link) session(ctx context.Context, acks *acker) error {
	lost := make(chan error, 1)
	pc := paho.NewClient(l.options(ctx, lost))
	tok := pc.Connect()
	if err := wait(ctx, tok, l.t.connect, nil); err != nil {
		pc.Disconnect(0)
		return fmt.Errorf("connect: %w", err)
	}
	// A give-back of the connection before is done with: it is gone.
	select {
	case <-l.resend:
	default:
	}
	l.connected.Store(true)
	l.since.Store(l.now().UnixNano())
	l.connects.Add(1)
	defer func() {
		// The commands still queued came on this connection: their PUBACKs
		// would be dropped, and the broker sends them again on the next.
		l.qmu.Lock()
		l.queue = nil
		l.qmu.Unlock()
		l.connected.Store(false)
		l.since.Store(l.now().UnixNano())
	}()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := wait(sctx, pc.Publish(StatusTopic(l.cfg.SiteID), 1, true, statusPayload(l.cfg.SiteID, "online")), l.t.publish, lost); err != nil {
		pc.Disconnect(0)
		return fmt.Errorf("publish the status: %w", err)
	}
	// A session the broker kept keeps its subscription. Subscribing again
	// there could take a packet id a command still in flight to us holds
	// (its PUBACK waits for the handler), which mochi refuses (code 145):
	// the session would end and begin again for ever.
	if !tok.(*paho.ConnectToken).SessionPresent() {
		if err := l.subscribe(sctx, pc, lost); err != nil {
			pc.Disconnect(0)
			return err
		}
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
	case why = <-l.resend:
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
		_ = wait(context.Background(), pc.Publish(StatusTopic(l.cfg.SiteID), 1, true, statusPayload(l.cfg.SiteID, "offline")), time.Second, lost)
	}
	pc.Disconnect(250)
	if why == nil && ctx.Err() == nil {
		why = errors.New("publisher stopped")
	}
	return why
}

// subscribe makes the QoS 1 subscription to the commands, on every
// connection: a broker that lost the session has none.
func (l *Link) subscribe(ctx context.Context, pc paho.Client, lost <-chan error) error {
	if l.h == nil {
		return nil
	}
	topic := DownTopic(l.cfg.SiteID)
	tok := pc.Subscribe(topic, 1, l.receive)
	if err := wait(ctx, tok, l.t.connect, lost); err != nil {
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
	if q := tok.(*paho.SubscribeToken).Result()[topic]; q > 1 {
		return fmt.Errorf("subscribe %s: refused by the broker (code %d)", topic, q)
	}
	return nil
}

// receive queues a command for the handler. It never blocks: paho runs it
// on the goroutine that reads every packet (SetOrderMatters), so a handler
// behind would hold back the PUBACKs and PINGRESPs and break the link.
func (l *Link) receive(_ paho.Client, m paho.Message) {
	if m.Topic() != DownTopic(l.cfg.SiteID) || l.h == nil {
		m.Ack() // not ours: a subscription of an older configuration
		return
	}
	l.qmu.Lock()
	full := len(l.queue) >= downLimit
	if !full {
		l.queue = append(l.queue, m)
	}
	l.qmu.Unlock()
	if full {
		l.log.Error().Int("waiting", downLimit).Uint16("message_id", m.MessageID()).
			Msg("uplink: too many commands waiting; the connection is ended for the broker to send them again")
		l.giveBack(fmt.Errorf("%d commands waiting to be handled", downLimit))
		return
	}
	select {
	case l.queued <- struct{}{}:
	default:
	}
}

// next takes the oldest command queued; false when there is none.
func (l *Link) next() (paho.Message, bool) {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if len(l.queue) == 0 {
		return nil, false
	}
	m := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	return m, true
}

// giveBack drops the commands queued, unacknowledged, and ends the
// connection: the broker sends them again, in their order, on the next.
func (l *Link) giveBack(why error) {
	l.qmu.Lock()
	l.queue = nil
	l.qmu.Unlock()
	select {
	case l.resend <- why:
	default:
	}
}

// handleCommands hands the commands to the handler one at a time, in the
// order they came, and acknowledges each it returned nil for.
func (l *Link) handleCommands(ctx context.Context) {
	for {
		if ctx.Err() != nil {
			return // what is queued is not acknowledged: the broker sends it again
		}
		m, ok := l.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-l.queued:
			}
			continue
		}
		if l.handle(ctx, m) {
			m.Ack()
		}
	}
}

// handle runs the handler on m until it returns nil, cmdTries times at
// most with a doubling wait, holding the commands behind it; true when it
// did. A command still failing is given back to the broker.
func (l *Link) handle(ctx context.Context, m paho.Message) bool {
	wait := l.t.cmdRetry
	for try := 1; ; try++ {
		err := l.h.Handle(ctx, m.Payload())
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if try >= l.t.cmdTries {
			l.log.Error().Err(err).Uint16("message_id", m.MessageID()).Int("tries", try).
				Msg("uplink command not handled; the connection is ended for the broker to send it again")
			l.giveBack(fmt.Errorf("a command not handled in %d tries: %w", try, err))
			return false
		}
		l.log.Warn().Err(err).Uint16("message_id", m.MessageID()).Str("retry_in", wait.String()).
			Msg("uplink command not handled; tried again")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, l.t.cmdMax)
	}
}

// wait waits for tok, at most d, while ctx lasts and the connection is not
// lost (lost nil: not watched), and returns its error.
func wait(ctx context.Context, tok paho.Token, d time.Duration, lost <-chan error) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker in %s", d)
	case err := <-lost:
		return fmt.Errorf("connection lost: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}
