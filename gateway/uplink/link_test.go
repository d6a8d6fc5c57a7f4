package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/upfeed"
	"mallgrid/store"
)

const site = "test-plaza"

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "mallgrid.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// enqueue stores n event messages; their bodies say their order.
func enqueue(t *testing.T, db *store.DB, n int) {
	t.Helper()
	for n > 0 {
		k := min(n, 500)
		msgs := make([]store.UplinkMessage, k)
		for i := range msgs {
			msgs[i] = store.UplinkMessage{Kind: "event", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Data: json.RawMessage(`{"n":1}`)}
		}
		if _, err := db.EnqueueUplink(msgs, nil); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

func seqOf(payload []byte) uint64 {
	var e struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(payload, &e)
	return e.Seq
}

// recorder is the group's side, in the broker: it records every message
// of the site as the broker takes it, just before its PUBACK. While hold
// is set it keeps the PUBACK back (the client's later packets wait too);
// drop makes the broker take a message without a PUBACK.
type recorder struct {
	mqtt.HookBase
	mu      sync.Mutex
	got     map[uint64]int // seq → times taken
	arrived int            // messages seen, held ones too
	order   []uint64       // seqs in the order taken
	hold    chan struct{}  // closed: PUBACKs go
	drop    func(seq uint64) bool
	at      map[uint64]time.Time
}

func newRecorder() *recorder {
	h := make(chan struct{})
	close(h)
	return &recorder{got: make(map[uint64]int), at: make(map[uint64]time.Time), hold: h}
}

func (r *recorder) ID() string { return "recorder" }

func (r *recorder) Provides(b byte) bool { return b == mqtt.OnPublish }

func (r *recorder) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.TopicName == StatusTopic(site) || pk.TopicName == DownTopic(site) {
		return pk, nil
	}
	seq := seqOf(pk.Payload)
	r.mu.Lock()
	r.arrived++
	hold, drop := r.hold, r.drop
	r.mu.Unlock()
	if drop != nil && drop(seq) {
		return pk, packets.ErrRejectPacket
	}
	<-hold
	r.mu.Lock()
	r.got[seq]++
	r.order = append(r.order, seq)
	if _, ok := r.at[seq]; !ok {
		r.at[seq] = time.Now()
	}
	r.mu.Unlock()
	return pk, nil
}

func (r *recorder) taken(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[seq] > 0
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// broker is an in-process mochi broker with the recorder; restart makes a
// new one on the same port, without the old one's sessions.
type broker struct {
	t    *testing.T
	addr string
	rec  *recorder
	mu   sync.Mutex
	s    *mqtt.Server
}

func startBroker(t *testing.T, rec *recorder) *broker {
	b := &broker{t: t, addr: "127.0.0.1:0", rec: rec}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), InlineClient: true})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		b.t.Fatal(err)
	}
	if err := s.AddHook(b.rec, nil); err != nil {
		b.t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "group", Address: b.addr})
	var err error
	for range 100 { // the port of a broker just closed may take a moment
		if err = s.AddListener(ln); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	b.s, b.addr = s, ln.Address()
	b.mu.Unlock()
}

func (b *broker) stop() {
	b.mu.Lock()
	s := b.s
	b.s = nil
	b.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

func (b *broker) server() *mqtt.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}

// hasClient reports whether client id is connected to the broker now.
func (b *broker) hasClient(id string) bool {
	s := b.server()
	if s == nil {
		return false
	}
	cl, ok := s.Clients.Get(id)
	return ok && !cl.Closed()
}

// dropClient closes the link's connection from the broker's side.
func (b *broker) dropClient(id string) bool {
	s := b.server()
	if s == nil {
		return false
	}
	cl, ok := s.Clients.Get(id)
	if !ok || cl.Closed() {
		return false
	}
	cl.Stop(errors.New("dropped by the test"))
	return true
}

// fast are timings for tests: a broken link is seen and made again within
// the tests' waits.
var fast = timings{connect: time.Second, publish: 2 * time.Second, minRetry: 50 * time.Millisecond, maxRetry: 300 * time.Millisecond,
	stable: time.Second, keep: 5 * time.Second, poll: 20 * time.Millisecond, ackEvery: 50 * time.Millisecond,
	cmdRetry: 50 * time.Millisecond, cmdMax: 200 * time.Millisecond, cmdTries: 4}

func runLink(t *testing.T, db *store.DB, b *broker, cfg config.Uplink, h Handler, tm timings) *Link {
	t.Helper()
	cfg.Broker, cfg.SiteID = "tcp://"+b.addr, site
	l, err := NewLink(cfg, db, h, upfeed.Envelope, zerolog.Nop(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	l.t = tm
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
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
	return l
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// remaining returns the seqs still in the outbox.
func remaining(t *testing.T, db *store.DB) map[uint64]bool {
	t.Helper()
	left := make(map[uint64]bool)
	for after := uint64(0); ; {
		msgs, err := db.UplinkAfter(after, 1000)
		if err != nil {
			t.Error(err)
			return left
		}
		if len(msgs) == 0 {
			return left
		}
		for _, m := range msgs {
			left[m.Seq] = true
			after = m.Seq
		}
	}
}

// checkAcked fails for a seq gone from the outbox that the broker did not
// take: acknowledged without a PUBACK.
func checkAcked(t *testing.T, db *store.DB, rec *recorder) {
	t.Helper()
	st, err := db.UplinkStats()
	if err != nil {
		t.Fatal(err)
	}
	left := remaining(t, db)
	for seq := uint64(1); seq <= st.Head; seq++ {
		if !left[seq] && !rec.taken(seq) {
			t.Fatalf("seq %d removed from the outbox; the broker never acknowledged it", seq)
		}
	}
}

// The link survives its broker closing and coming back on the same port
// (without the sessions), its connection cut mid-publish, and a stretch of
// messages taken without a PUBACK, while messages are queued all along:
// every seq reaches the broker, the outbox empties, and no message leaves
// the outbox before the broker acknowledged it.
func TestLink_Flaps(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	enqueue(t, db, 300)
	l := runLink(t, db, b, config.Uplink{BacklogRate: 2000, Inflight: 10}, nil, fast)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // live news all along
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				enqueue(t, db, 1)
			}
		}
	}()
	step := func(what string, f func()) {
		t.Helper()
		// Up on this broker: the flag alone may be a connection to the
		// broker just closed that the link has not yet seen go.
		waitFor(t, 10*time.Second, what+": link up", func() bool { return l.connected.Load() && b.hasClient("mallgrid-"+site) })
		time.Sleep(100 * time.Millisecond) // mid-publish
		f()
		checkAcked(t, db, rec)
	}
	step("restart", func() { b.stop(); time.Sleep(200 * time.Millisecond); b.start() })
	step("drop", func() {
		if !b.dropClient("mallgrid-" + site) {
			t.Error("no connection to drop")
		}
	})
	step("no PUBACK", func() {
		rec.mu.Lock()
		rec.drop = func(seq uint64) bool { return seq%7 == 0 }
		rec.mu.Unlock()
		time.Sleep(2500 * time.Millisecond) // past the publish deadline
		checkAcked(t, db, rec)
		rec.mu.Lock()
		rec.drop = nil
		rec.mu.Unlock()
	})
	step("restart again", func() { b.stop(); b.start() })
	close(stop)
	wg.Wait()

	waitFor(t, 20*time.Second, "outbox empty", func() bool {
		st, err := db.UplinkStats()
		return err == nil && st.Depth == 0
	})
	checkAcked(t, db, rec)
	st, _ := db.UplinkStats()
	if st.Head < 500 {
		t.Fatalf("head %d; want the live messages queued during the test too", st.Head)
	}
	for seq := uint64(1); seq <= st.Head; seq++ {
		if !rec.taken(seq) {
			t.Errorf("seq %d never reached the broker", seq)
		}
	}
	s, err := l.Status()
	if err != nil || s.Connects < 4 || s.Depth != 0 || s.LastAck.IsZero() || s.Published < int64(st.Head) {
		t.Errorf("status %+v, %v; want 4 or more connections, an empty outbox, a last ack, every message published", s, err)
	}
	t.Logf("%d messages, %d publishes (%d resends), %d connections", st.Head, s.Published, s.Published-int64(st.Head), s.Connects)
}

// A PUBACK held back keeps the message in the outbox: nothing is
// acknowledged before the broker says so.
func TestLink_AckOnlyOnPuback(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	rec.hold = make(chan struct{})
	b := startBroker(t, rec)
	var once sync.Once
	release := func() { once.Do(func() { close(rec.hold) }) }
	t.Cleanup(release) // before the broker closes: its OnPublish waits
	l := runLink(t, db, b, config.Uplink{Inflight: 20}, nil, fast)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	enqueue(t, db, 5)
	waitFor(t, 5*time.Second, "message at the broker", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.arrived >= 1 })
	time.Sleep(500 * time.Millisecond) // ten ack flushes
	if st, _ := db.UplinkStats(); st.Depth != 5 {
		t.Fatalf("depth %d with the PUBACKs held; want 5", st.Depth)
	}
	release()
	waitFor(t, 5*time.Second, "outbox empty", func() bool { st, _ := db.UplinkStats(); return st.Depth == 0 })
}

// With a backlog of 5,000 at connect, sent at 200 a second, a live message
// goes at once and the backlog keeps to its rate.
func TestLink_LiveBesideBacklog(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	enqueue(t, db, 5000)
	const rate = 200
	tm := fast
	tm.poll = 200 * time.Millisecond
	l := runLink(t, db, b, config.Uplink{BacklogRate: rate, Inflight: 20}, nil, tm)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	began := time.Now()
	time.Sleep(time.Second)
	enqueue(t, db, 1)
	queued := time.Now()
	waitFor(t, 2*time.Second, "the live message", func() bool { return rec.taken(5001) })
	rec.mu.Lock()
	latency := rec.at[5001].Sub(queued)
	rec.mu.Unlock()
	elapsed := time.Since(began)
	n := rec.count() - 1
	t.Logf("live message after %s; %d of the backlog in %s", latency, n, elapsed)
	// The poll (200 ms) and room for a busy machine; behind the backlog
	// it would wait 24 s.
	if latency > time.Second {
		t.Errorf("live message published %s after it was queued; want within a second (the poll is 200 ms)", latency)
	}
	if max := int(rate*elapsed.Seconds()) + 2; n > max || n < rate/2 {
		t.Errorf("%d backlog messages in %s; want at most %d (%d a second) and some", n, elapsed, max, rate)
	}
	// The backlog went oldest first.
	rec.mu.Lock()
	back := slices.DeleteFunc(slices.Clone(rec.order), func(s uint64) bool { return s > 5000 })
	rec.mu.Unlock()
	if !slices.IsSorted(back) || back[0] != 1 {
		t.Errorf("backlog order %v…; want 1, 2, 3…", back[:min(10, len(back))])
	}
}

// handler records the commands; it fails the first one it is given.
type handler struct {
	mu    sync.Mutex
	calls [][]byte
	fail  int
}

func (h *handler) Handle(_ context.Context, payload []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, append([]byte(nil), payload...))
	if h.fail > 0 {
		h.fail--
		return errors.New("store down")
	}
	return nil
}

func (h *handler) got() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// Commands wait in the session while the link is down; one the handler
// failed its tries is not acknowledged, the link ends the connection, and
// the broker sends it again on the next.
func TestLink_Commands(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	h := &handler{fail: 1}
	tm := fast
	tm.cmdTries = 1                                                       // given back to the broker at its first failure
	tm.minRetry, tm.maxRetry = 300*time.Millisecond, 300*time.Millisecond // the link down long enough to be seen down
	l := runLink(t, db, b, config.Uplink{}, h, tm)
	const id = "mallgrid-" + site
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	time.Sleep(100 * time.Millisecond) // SUBACK
	if err := b.server().Publish(DownTopic(site), []byte(`{"n":1}`), false, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the command handled (and failed)", func() bool { return len(h.got()) == 1 })
	waitFor(t, 5*time.Second, "the command again", func() bool { return len(h.got()) == 2 })
	// While the link is down, a command waits in the session. The drop is
	// made on the connection as it is now, and the command published once
	// the broker has seen it gone: published to a connection being closed,
	// it could be lost with it (1 in 10 under -race).
	waitFor(t, 5*time.Second, "the link connected to the broker", func() bool { return b.hasClient(id) })
	// Its PUBACK reached the broker: dropped before, the command would
	// come a third time beside the second.
	waitFor(t, 5*time.Second, "the command acknowledged", func() bool { return inflight(b, id) == 0 })
	if !b.dropClient(id) {
		t.Fatal("no connection to drop")
	}
	waitFor(t, 5*time.Second, "the connection gone", func() bool { return !b.hasClient(id) })
	if err := b.server().Publish(DownTopic(site), []byte(`{"n":2}`), false, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the second command", func() bool { return len(h.got()) >= 3 })
	time.Sleep(200 * time.Millisecond)
	got := h.got()
	if len(got) != 3 || !bytes.Equal(got[0], got[1]) || string(got[2]) != `{"n":2}` {
		t.Errorf("handled %q; want the first command twice (failed, then again), then the second once", got)
	}
}

func TestTopics(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{DownTopic("riverside-plaza"), "mallgrid/riverside-plaza/down"},
		{StatusTopic("riverside-plaza"), "mallgrid/riverside-plaza/up/status"},
		{string(statusPayload("riverside-plaza", "offline")), `{"v":1,"site":"riverside-plaza","status":"offline"}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s; want %s", tc.got, tc.want)
		}
	}
}

// Every goroutine the link starts ends with Run: connected, publishing;
// while it waits to connect to a broker that is not there; and while a
// broker that took the connection never answers it.
func TestLink_GoroutinesEndWithContext(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	enqueue(t, db, 200)
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // kept open, never answered
		}
	}()
	t.Cleanup(func() { mute.Close() })
	for _, tc := range []struct {
		broker string
		tm     timings
	}{
		{"tcp://" + b.addr, fast}, {"tcp://127.0.0.1:1", fast}, {"tcp://" + mute.Addr().String(), fast},
		// The service's own timings: a connect of 10 s is not waited out.
		{"tcp://" + b.addr, defaultTimings}, {"tcp://" + mute.Addr().String(), defaultTimings},
	} {
		broker := tc.broker
		base := runtime.NumGoroutine()
		cfg := config.Uplink{Broker: broker, SiteID: site, BacklogRate: 50, Inflight: 5}
		l, err := NewLink(cfg, db, &handler{}, upfeed.Envelope, zerolog.Nop(), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		l.t = tc.tm
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		time.Sleep(300 * time.Millisecond) // connected and publishing, or retrying
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: Run did not return after cancel", broker)
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%s: %d goroutines after Run returned; want at most %d:\n%s", broker, runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A command the handler failed is tried again on the same connection — a
// link may stay up for days, and the broker sends an unacknowledged
// command again only on a new one — and acknowledged once handled.
func TestLink_FailedCommandRetriedOnStableLink(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	h := &handler{fail: 2}
	l := runLink(t, db, b, config.Uplink{}, h, fast)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	time.Sleep(100 * time.Millisecond) // SUBACK
	if err := b.server().Publish(DownTopic(site), []byte(`{"n":1}`), false, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the command handled after two failures", func() bool { return len(h.got()) == 3 })
	waitFor(t, 5*time.Second, "the command acknowledged", func() bool { return inflight(b, "mallgrid-"+site) == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := len(h.got()); n != 3 {
		t.Errorf("handled %d times; want 3 (two failures, then done)", n)
	}
	if s, _ := l.Status(); s.Connects != 1 {
		t.Errorf("%d connections; want the one, kept", s.Connects)
	}
}

// A command that still fails after its tries is given back: the link ends
// the connection, and the broker sends the command again on the next.
func TestLink_FailingCommandGivenBack(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	h := &handler{fail: fast.cmdTries}
	l := runLink(t, db, b, config.Uplink{}, h, fast)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	time.Sleep(100 * time.Millisecond) // SUBACK
	if err := b.server().Publish(DownTopic(site), []byte(`{"n":1}`), false, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the command handled on the next connection", func() bool { return len(h.got()) == fast.cmdTries+1 })
	waitFor(t, 5*time.Second, "the command acknowledged", func() bool { return inflight(b, "mallgrid-"+site) == 0 })
	if s, _ := l.Status(); s.Connects != 2 {
		t.Errorf("%d connections; want 2 (ended after %d tries, made again)", s.Connects, fast.cmdTries)
	}
}

// inflight is how many messages the broker sent client id and awaits its
// PUBACK of; -1 when it has no such client.
func inflight(b *broker, id string) int {
	s := b.server()
	if s == nil {
		return -1
	}
	cl, ok := s.Clients.Get(id)
	if !ok {
		return -1
	}
	return cl.State.Inflight.Len()
}

type slowHandler struct {
	handler
	d time.Duration
}

func (h *slowHandler) Handle(ctx context.Context, p []byte) error {
	time.Sleep(h.d) // a busy store: each command's transaction waits
	return h.handler.Handle(ctx, p)
}

// Commands handled slowly hold back neither the uplink's PUBACKs nor the
// keepalive: paho reads every packet on the goroutine that calls receive.
// They are handled in the order they came.
func TestLink_SlowCommandsDoNotStallPubacks(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	h := &slowHandler{d: 400 * time.Millisecond}
	l := runLink(t, db, b, config.Uplink{}, h, fast)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	time.Sleep(100 * time.Millisecond) // SUBACK
	const n = 20
	for i := range n {
		if err := b.server().Publish(DownTopic(site), []byte(fmt.Sprintf(`{"n":%d}`, i)), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	enqueue(t, db, 5)
	// fast.publish is 2 s: the 20 commands take 8 s.
	waitFor(t, time.Second, "the 5 messages acknowledged", func() bool { st, _ := db.UplinkStats(); return st.Depth == 0 })
	waitFor(t, 15*time.Second, "every command handled", func() bool { return len(h.got()) == n })
	if s, _ := l.Status(); s.Connects != 1 {
		t.Errorf("%d connections; want the one, kept", s.Connects)
	}
	for i, p := range h.got() {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(p) != want {
			t.Fatalf("command %d is %s; want %s (in the order they came)", i, p, want)
		}
	}
}

// With inflight 1 the live messages do not wait for the backlog's rate:
// the backlog takes the window's one slot only when its turn has come.
func TestLink_LiveBesideBacklogInflightOne(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	enqueue(t, db, 100)
	l := runLink(t, db, b, config.Uplink{BacklogRate: 2, Inflight: 1}, nil, fast)
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	time.Sleep(300 * time.Millisecond)
	enqueue(t, db, 10)
	queued := time.Now()
	waitFor(t, 5*time.Second, "the 10 live messages", func() bool {
		for seq := uint64(101); seq <= 110; seq++ {
			if !rec.taken(seq) {
				return false
			}
		}
		return true
	})
	// Behind the backlog's 500 ms a message, they would take 5 s.
	if d := time.Since(queued); d > 2*time.Second {
		t.Errorf("10 live messages took %s beside a backlog at 2 a second; want well under its 5 s", d)
	}
}

// A broker that lost the session (restarted without its store) has no
// subscription: the link makes it again on the new connection, and the
// commands published after come down.
func TestLink_ResubscribesAfterSessionLost(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	h := &handler{}
	l := runLink(t, db, b, config.Uplink{}, h, fast)
	const id = "mallgrid-" + site
	waitFor(t, 5*time.Second, "link up", func() bool { return b.hasClient(id) })
	b.stop()
	b.start() // a new broker: no sessions, no subscriptions
	waitFor(t, 5*time.Second, "the link connected to the new broker", func() bool { return b.hasClient(id) && l.connected.Load() })
	waitFor(t, 5*time.Second, "the subscription made again", func() bool {
		return len(b.server().Topics.Subscribers(DownTopic(site)).Subscriptions) == 1
	})
	if err := b.server().Publish(DownTopic(site), []byte(`{"n":1}`), false, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the command", func() bool { return len(h.got()) == 1 })
}

// wait gives up on a token when the connection is lost, not only at its
// deadline (30 s for a PUBACK).
func TestWait_Lost(t *testing.T) {
	lost := make(chan error, 1)
	lost <- errors.New("EOF")
	began := time.Now()
	err := wait(context.Background(), pendingToken{}, 30*time.Second, lost)
	if err == nil || time.Since(began) > time.Second {
		t.Errorf("wait returned %v after %s; want the lost connection at once", err, time.Since(began))
	}
}

// pendingToken is never done.
type pendingToken struct{}

func (pendingToken) Wait() bool                     { select {} }
func (pendingToken) WaitTimeout(time.Duration) bool { return false }
func (pendingToken) Done() <-chan struct{}          { return nil }
func (pendingToken) Error() error                   { return nil }

// A connection dropped while commands are still in flight to the link (their
// PUBACKs wait for the handler) comes back once: the kept session keeps the
// subscription, so no SUBSCRIBE takes a packet id a command holds (mochi
// refused it, code 145, and the link reconnected for ever, each command
// handled again at every turn). The commands queued from the dropped
// connection are not handled: the broker sends them again on the new one.
func TestLink_ReconnectWithCommandsInFlight(t *testing.T) {
	db := openDB(t)
	rec := newRecorder()
	b := startBroker(t, rec)
	h := &slowHandler{d: 300 * time.Millisecond}
	l := runLink(t, db, b, config.Uplink{}, h, fast)
	const id = "mallgrid-" + site
	waitFor(t, 5*time.Second, "link up", l.connected.Load)
	time.Sleep(100 * time.Millisecond) // SUBACK
	const n = 5
	for i := range n {
		if err := b.server().Publish(DownTopic(site), []byte(fmt.Sprintf(`{"n":%d}`, i)), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the first command handled", func() bool { return len(h.got()) >= 1 })
	if !b.dropClient(id) {
		t.Fatal("no connection to drop")
	}
	waitFor(t, 15*time.Second, "every command acknowledged", func() bool {
		return b.hasClient(id) && inflight(b, id) == 0 && len(h.got()) >= n
	})
	time.Sleep(500 * time.Millisecond)
	if s, _ := l.Status(); s.Connects > 2 {
		t.Errorf("%d connections after one drop; want 2", s.Connects)
	}
	seen := map[string]int{}
	for _, p := range h.got() {
		seen[string(p)]++
	}
	for i := range n {
		// The command in the handler when the connection dropped may be
		// handled twice (its PUBACK was lost with it); no other.
		if c := seen[fmt.Sprintf(`{"n":%d}`, i)]; c < 1 || c > 2 {
			t.Errorf("command %d handled %d times; want once (twice at most for the one being handled at the drop)", i, c)
		}
	}
	if len(h.got()) > n+1 {
		t.Errorf("%d commands handled for %d sent; want at most one handled again", len(h.got()), n)
	}
}
