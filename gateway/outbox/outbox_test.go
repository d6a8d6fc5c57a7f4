package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/notify"
	"mallgrid/store"
)

const secret = "s3cret-for-tests"

// testConfig is a site with one tenant (two contacts, one English), one
// member of staff, and notify as given (channels, routes, …; YAML lines
// indented under notify:).
func testConfig(t *testing.T, notifyYAML string) *config.Config {
	t.Helper()
	doc := `site: {name: Test Plaza}
storage: {path: /var/lib/mallgrid/t.db}
buses: [{name: b1, port: /dev/null}]
meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, tenant: T-1}]
tenants:
  - id: T-1
    name: Noodle House
    contacts:
      - {name: Li Wei, phone: "+8613800000101", email: "li@noodle.example"}
      - {name: Ann, email: "ann@noodle.example", language: en}
notify:
` + notifyYAML
	cfg, err := config.Parse("t.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

// fakeClock is the deliverer's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hookServer is a webhook receiver: it checks the signature, answers as
// answer says, and keeps what it was sent.
type hookServer struct {
	mu       sync.Mutex
	answer   func(id string) int
	requests []notify.WebhookBody
	accepted map[string]int // delivery id → 2xx answers given
	late     []string       // ids sent again after a 2xx
	bad      []string       // signature problems
	srv      *httptest.Server
}

func newHook(t *testing.T, answer func(id string) int) *hookServer {
	h := &hookServer{answer: answer, accepted: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b notify.WebhookBody
		_ = json.Unmarshal(body, &b)
		id := r.Header.Get(notify.HeaderDelivery)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := notify.Verify(secret, r.Header.Get(notify.HeaderSignature), body, time.Now(), 24*365*time.Hour*30); err != nil || id != b.Delivery {
			h.bad = append(h.bad, fmt.Sprintf("%s: %v", id, err))
		}
		h.requests = append(h.requests, b)
		if h.accepted[id] > 0 {
			h.late = append(h.late, id)
		}
		code := h.answer(id)
		if code/100 == 2 {
			h.accepted[id]++
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.requests) }

// rig is a database routed by cfg and a deliverer over it.
type rig struct {
	db    *store.DB
	d     *Deliverer
	clock *fakeClock
	path  string
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) // 18:00 in Shanghai

func newRig(t *testing.T, cfg *config.Config) *rig {
	t.Helper()
	rg := &rig{clock: &fakeClock{t: t0}, path: filepath.Join(t.TempDir(), "m.db")}
	rg.open(t, cfg)
	return rg
}

func (rg *rig) open(t *testing.T, cfg *config.Config) {
	t.Helper()
	db, err := store.Open(rg.path, store.Options{Route: Route(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	chs, err := Channels(cfg, rg.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	rg.db = db
	rg.d = &Deliverer{DB: db, Config: cfg, Channels: chs, Now: rg.clock.now, Log: zerolog.Nop(), Batch: 500,
		Jitter: func(d time.Duration) time.Duration { return d / 3 }}
}

func (rg *rig) post(t *testing.T, evs ...store.Event) {
	t.Helper()
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = rg.clock.now()
		}
	}
	if _, err := rg.db.PostEvents(evs...); err != nil {
		t.Fatal(err)
	}
}

func warning(tenant string) store.Event {
	return store.Event{Kind: "warning_1", Tenant: tenant, Text: tenant + ": balance ¥80.00, credit running low (warning 1).",
		Args: map[string]string{"tenant_name": "Noodle House", "balance": "80.00"}}
}

func states(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	all, err := db.Deliveries("", 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range all {
		out[d.State]++
	}
	return out
}

func hookYAML(url, extra string) string {
	return `  channels: [{name: hook, kind: webhook, url: "` + url + `", secret: ` + secret + `}]
  routes:
    - {events: [warning_1], to: tenant, channels: [hook]}
    - {events: [overload], to: staff, channels: [hook]}
  staff: [{name: Duty desk, email: duty@plaza.example, language: en}]
` + extra
}

// 10,000 notices over a channel that fails 30 % of requests at random:
// every one ends delivered or dead-lettered, each delivered one was
// accepted, and none is sent again after it was accepted.
func TestDeliverer_TenThousandWithFailures(t *testing.T) {
	var (
		mu sync.Mutex
		n  uint64 = 88172645463325252
	)
	flaky := func(string) int {
		mu.Lock()
		defer mu.Unlock()
		n ^= n << 13 // xorshift: the same failures every run
		n ^= n >> 7
		n ^= n << 17
		if n%10 < 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	hook := newHook(t, flaky)
	cfg := testConfig(t, hookYAML(hook.srv.URL, "  rate_limit: {per_hour: 0}\n  max_attempts: 4\n  backoff: {base: 1s, max: 4s}\n"))
	rg := newRig(t, cfg)
	const total = 10000
	for i := 0; i < total; i += 1000 {
		evs := make([]store.Event, 1000)
		for j := range evs {
			evs[j] = store.Event{Kind: "overload", Meter: "M-1", Text: "overload"}
		}
		rg.post(t, evs...)
	}
	ctx := context.Background()
	for round := 0; ; round++ {
		if round > 2000 {
			t.Fatalf("still pending after %d rounds: %v", round, states(t, rg.db))
		}
		rg.d.Round(ctx)
		if _, ok, _ := rg.db.NextDue(); !ok {
			break
		}
		rg.clock.add(2 * time.Second)
	}
	st := states(t, rg.db)
	if st[store.DeliveryDelivered]+st[store.DeliveryDead] != total || st[store.DeliveryPending] != 0 {
		t.Fatalf("states = %v; want all %d delivered or dead", st, total)
	}
	if st[store.DeliveryDead] == 0 || st[store.DeliveryDead] > total/10 {
		t.Errorf("dead letters = %d; want some (0.3^4 of %d ≈ 81), not many", st[store.DeliveryDead], total)
	}
	delivered, _ := rg.db.Deliveries(store.DeliveryDelivered, total)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for _, d := range delivered {
		if hook.accepted[d.ID] != 1 {
			t.Fatalf("%s delivered, accepted %d times by the receiver; want once", d.ID, hook.accepted[d.ID])
		}
	}
	if len(hook.late) > 0 || len(hook.bad) > 0 {
		t.Errorf("sent again after acceptance: %d (%.3q); bad signatures: %.3q", len(hook.late), hook.late, hook.bad)
	}
	if len(hook.accepted) != len(delivered) {
		t.Errorf("receiver accepted %d ids; %d marked delivered", len(hook.accepted), len(delivered))
	}
	if alarms, _ := rg.db.Alarms(store.AlarmActive, total); len(alarms) < st[store.DeliveryDead] {
		t.Errorf("%d open alarms; want one per dead letter (%d) at least", len(alarms), st[store.DeliveryDead])
	}
}

// A send the service accepted whose "delivered" never committed (the
// process killed in between; here the database closed under it) is sent
// again after the restart, under the same delivery id, and nothing is
// lost.
func TestDeliverer_KilledBetweenSendAndMarkDone(t *testing.T) {
	hook := newHook(t, func(string) int { return http.StatusOK })
	cfg := testConfig(t, hookYAML(hook.srv.URL, ""))
	rg := newRig(t, cfg)
	rg.post(t, warning("T-1"), store.Event{Kind: "overload", Meter: "M-1", Text: "overload"})
	kill := &killAfterSend{Channel: rg.d.Channels["hook"].Channel, db: rg.db}
	rg.d.Channels["hook"] = Channel{Channel: kill}
	rg.d.Round(context.Background())
	if hook.count() != 1 {
		t.Fatalf("sent %d before the kill; want 1", hook.count())
	}
	rg.open(t, cfg) // the restart
	rg.clock.add(time.Second)
	rg.d.Round(context.Background())
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.requests) != 3 || hook.requests[1].Delivery != hook.requests[0].Delivery {
		t.Fatalf("after the restart: %d requests, ids %v; want the first sent again under its id, then the second", len(hook.requests), ids(hook.requests))
	}
	if st := states(t, rg.db); st[store.DeliveryDelivered] != 2 {
		t.Errorf("states = %v; want both delivered", st)
	}
}

func ids(bs []notify.WebhookBody) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Delivery)
	}
	return out
}

// killAfterSend sends, then closes the database before the deliverer can
// record it: the process's death between the two. A dead process sends
// nothing more.
type killAfterSend struct {
	notify.Channel
	db   *store.DB
	dead bool
}

func (k *killAfterSend) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	if k.dead {
		return notify.Receipt{}, errors.New("the process is gone")
	}
	r, err := k.Channel.Send(ctx, m)
	_ = k.db.Close()
	k.dead = true
	return r, err
}

// Quiet hours delay a tenant's notice until they end, spending no attempt;
// a staff notice due at the same time goes at once.
func TestDeliverer_QuietHours(t *testing.T) {
	hook := newHook(t, func(string) int { return http.StatusOK })
	cfg := testConfig(t, hookYAML(hook.srv.URL, `  quiet_hours: {from: "22:00", to: "08:00"}`+"\n"))
	rg := newRig(t, cfg)
	rg.clock.t = time.Date(2026, 12, 1, 15, 30, 0, 0, time.UTC) // 23:30 in Shanghai
	rg.post(t, warning("T-1"), store.Event{Kind: "overload", Meter: "M-1", Text: "overload"})
	rg.d.Round(context.Background())
	if hook.count() != 1 || hook.requests[0].Kind != "overload" {
		t.Fatalf("sent during quiet hours: %v; want the staff's overload only", ids(hook.requests))
	}
	pending, _ := rg.db.Deliveries(store.DeliveryPending, 10)
	wantDue := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	if len(pending) != 1 || !pending[0].Due.Equal(wantDue) || pending[0].Attempts != 0 {
		t.Fatalf("pending = %+v; want the warning due at %v, no attempt spent", pending, wantDue)
	}
	rg.clock.t = wantDue.Add(-time.Minute)
	rg.d.Round(context.Background())
	if hook.count() != 1 {
		t.Errorf("sent before the quiet hours ended")
	}
	rg.clock.t = wantDue
	rg.d.Round(context.Background())
	if hook.count() != 2 || hook.requests[1].Kind != "warning_1" {
		t.Errorf("after the quiet hours: %v; want the warning sent", ids(hook.requests))
	}
}

// A recipient over rate_limit.per_hour on a channel waits until the oldest
// of its notices within the hour is an hour old.
func TestDeliverer_RateLimit(t *testing.T) {
	hook := newHook(t, func(string) int { return http.StatusOK })
	cfg := testConfig(t, hookYAML(hook.srv.URL, "  rate_limit: {per_hour: 2}\n"))
	rg := newRig(t, cfg)
	for range 3 {
		rg.post(t, warning("T-1"))
		rg.d.Round(context.Background())
		rg.clock.add(time.Minute)
	}
	if hook.count() != 2 {
		t.Fatalf("sent %d; want 2 within the hour", hook.count())
	}
	pending, _ := rg.db.Deliveries(store.DeliveryPending, 10)
	if len(pending) != 1 || !pending[0].Due.Equal(t0.Add(time.Hour)) || pending[0].Attempts != 0 {
		t.Fatalf("pending = %+v; want the third due an hour after the first, no attempt spent", pending)
	}
	rg.clock.t = t0.Add(time.Hour)
	rg.d.Round(context.Background())
	if hook.count() != 3 {
		t.Errorf("sent %d an hour later; want 3", hook.count())
	}
}

// A channel-wide failure pauses the channel with one alarm and spends no
// attempt; the other messages wait; a probe after the wait that gets
// through clears the alarm and the rest follow.
func TestDeliverer_ChannelWidePausesAndRecovers(t *testing.T) {
	var (
		mu     sync.Mutex
		status = http.StatusUnauthorized
	)
	hook := newHook(t, func(string) int { mu.Lock(); defer mu.Unlock(); return status })
	cfg := testConfig(t, hookYAML(hook.srv.URL, "  backoff: {base: 10s, max: 1m}\n"))
	rg := newRig(t, cfg)
	rg.post(t, warning("T-1"), warning("T-1"), warning("T-1"))
	ctx := context.Background()
	rg.d.Round(ctx)
	if hook.count() != 1 {
		t.Fatalf("%d requests; want 1: the others wait for the channel", hook.count())
	}
	open := func() []string {
		var out []string
		as, _ := rg.db.Alarms(store.AlarmActive, 10)
		for _, a := range as {
			out = append(out, a.Kind+" "+a.Subject)
		}
		return out
	}
	if got := open(); len(got) != 1 || got[0] != "notify_channel_down hook" {
		t.Fatalf("alarms = %q; want one notify_channel_down", got)
	}
	for range 3 { // probes that fail: still one alarm
		rg.clock.add(time.Minute)
		rg.d.Round(ctx)
	}
	if hook.count() != 4 || len(open()) != 1 {
		t.Errorf("after 3 probes: %d requests, alarms %q; want 4 requests, one alarm", hook.count(), open())
	}
	for _, d := range must(rg.db.Deliveries("", 10)) {
		if d.Attempts != 0 || d.State != store.DeliveryPending {
			t.Errorf("%s: %s after %d attempts; want pending, none spent", d.ID, d.State, d.Attempts)
		}
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	rg.clock.add(time.Minute)
	rg.d.Round(ctx)
	rg.d.Round(ctx)
	if st := states(t, rg.db); st[store.DeliveryDelivered] != 3 {
		t.Errorf("states = %v; want all 3 delivered once the channel works", st)
	}
	if got := open(); len(got) != 0 {
		t.Errorf("alarms = %q; want the channel's cleared", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A refusal for good is a dead letter at once, with an alarm; an
// operator's resend sends it again under the same id and clears it.
func TestDeliverer_PermanentDeadLetterAndResend(t *testing.T) {
	var (
		mu     sync.Mutex
		status = http.StatusBadRequest
	)
	hook := newHook(t, func(string) int { mu.Lock(); defer mu.Unlock(); return status })
	cfg := testConfig(t, hookYAML(hook.srv.URL, ""))
	rg := newRig(t, cfg)
	rg.post(t, warning("T-1"))
	rg.d.Round(context.Background())
	dead, _ := rg.db.Deliveries(store.DeliveryDead, 10)
	if len(dead) != 1 || dead[0].Attempts != 1 || !strings.Contains(dead[0].LastError, "400") {
		t.Fatalf("dead = %+v; want the warning, after 1 attempt, with the 400", dead)
	}
	if as, _ := rg.db.Alarms(store.AlarmActive, 10); len(as) != 1 || as[0].Kind != store.KindNotifyDeadLetter {
		t.Fatalf("alarms = %+v; want a dead letter's", as)
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	if _, _, err := rg.db.Resend(dead[0].ID, rg.clock.now(), "user:op"); err != nil {
		t.Fatal(err)
	}
	rg.d.Round(context.Background())
	if d, _ := rg.db.Delivery(dead[0].ID); d.State != store.DeliveryDelivered || hook.count() != 2 || hook.requests[1].Delivery != dead[0].ID {
		t.Errorf("after the resend: %+v, %v", d, ids(hook.requests))
	}
	if as, _ := rg.db.Alarms(store.AlarmActive, 10); len(as) != 0 {
		t.Errorf("alarms = %+v; want the dead letter's cleared", as)
	}
}

// The router sends a tenant's event to each contact with an address on
// the channel, in the contact's language; a notice about the outbox never
// goes over the channel it is about, and a dead letter of such a notice
// goes nowhere.
func TestRoute(t *testing.T) {
	cfg := testConfig(t, `  channels:
    - {name: hook, kind: webhook, url: "http://127.0.0.1:9/h", secret: x}
    - {name: mail, kind: email, smtp: "127.0.0.1:25", tls: none, from: "p@plaza.example"}
    - {name: sms, kind: sms, provider: gateway, url: "http://127.0.0.1:9/sms?to={phone}&t={text}"}
  routes:
    - {events: [warning_1], to: tenant, channels: [mail, sms, hook]}
    - {events: [warning_1, notify_channel_down, notify_dead_letter], to: staff, channels: [mail, hook]}
  staff: [{name: Duty desk, email: duty@plaza.example, language: en}]
`)
	route := Route(cfg)
	got := func(e store.Event) []string {
		var out []string
		// The database's identity prefixes every id: another database's
		// event 5 is another notice.
		const dbID = "0123456789abcdef0123456789abcdef"
		for _, d := range route(dbID, e) {
			m := deliveryIDForm.FindStringSubmatch(d.ID)
			if m == nil {
				t.Errorf("delivery id %q: want the database's identity, the event, its token, then the route's parts", d.ID)
				continue
			}
			out = append(out, m[1]+"-"+m[2]+" "+d.Recipient.Name+" "+d.Recipient.Lang)
		}
		return out
	}
	// The tenant route and the staff route both name the hook: two
	// deliveries, each under its own id.
	want := []string{"5-0-mail-t0 Li Wei zh-CN", "5-0-mail-t1 Ann en", "5-0-sms-t0 Li Wei zh-CN", "5-0-hook-hook-tenant tenant T-1 zh-CN",
		"5-1-mail-s0 Duty desk en", "5-1-hook-hook-staff staff en"}
	e := warning("T-1")
	e.ID = 5
	if g := got(e); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Errorf("warning_1 →\n%q; want\n%q", g, want)
	}
	if g := got(store.Event{ID: 6, Kind: "notify_channel_down", Args: map[string]string{"via": "mail"}}); strings.Join(g, "|") != "6-1-hook-hook-staff staff en" {
		t.Errorf("mail down → %q; want over the hook only", g)
	}
	if g := got(store.Event{ID: 7, Kind: "notify_dead_letter", Args: map[string]string{"via": "hook", "kind": "notify_channel_down"}}); len(g) != 0 {
		t.Errorf("dead letter of a notice about the outbox → %q; want nothing", g)
	}
	if g := got(store.Event{ID: 8, Kind: "warning_1", Tenant: "T-9"}); strings.Join(g, "|") != "8-1-mail-s0 Duty desk en|8-1-hook-hook-staff staff en" {
		t.Errorf("unknown tenant → %q; want staff only", g)
	}
}

// deliveryIDForm is a delivery id: the database's identity, the event id,
// the event's token, then route, channel and recipient.
var deliveryIDForm = regexp.MustCompile(`^0123456789ab-([0-9]+)-[0-9a-f]{8}-([0-9]+-[a-z0-9_-]+)$`)

// The same event number in a restored database (the same identity) gets
// other delivery ids: a receiver that drops ids it has seen takes them.
func TestRoute_IDsNotRepeatedAfterARestore(t *testing.T) {
	cfg := testConfig(t, hookYAML("http://127.0.0.1:9/h", ""))
	route := Route(cfg)
	e := warning("T-1")
	e.ID = 5
	first, again := route("0123456789abcdef", e), route("0123456789abcdef", e)
	if len(first) == 0 || len(first) != len(again) {
		t.Fatalf("deliveries %d and %d; want the same, at least one", len(first), len(again))
	}
	for i := range first {
		if first[i].ID == again[i].ID {
			t.Errorf("event 5 routed twice gave %s twice; want another id for the second", first[i].ID)
		}
	}
}

// A message is in the recipient's language, with the kind's word as its
// subject and the template's params in order, times in the site's zone.
func TestMessage(t *testing.T) {
	cfg := testConfig(t, hookYAML("http://127.0.0.1:9/h", ""))
	d := &Deliverer{Config: cfg}
	dl := store.Delivery{ID: "1-0-hook-hook-tenant", Event: store.Event{ID: 1, Kind: "cutoff_scheduled", Time: t0,
		Args: map[string]string{"tenant_name": "Noodle House", "balance": "-1.50", "cut_at": "2026-12-01T18:30:00+08:00"}},
		Recipient: store.Recipient{Name: "Li", Lang: "zh-CN"}}
	m := d.Message(dl, Channel{Params: map[string][]string{"cutoff_scheduled": {"cut_at", "balance"}}})
	if m.Subject == "" || !strings.Contains(m.Text, "-¥1.50") || !strings.Contains(m.Text, "2026-12-01 18:30:00") || m.Lang != "zh-CN" ||
		!strings.ContainsAny(m.Text, "余额") {
		t.Errorf("zh-CN message = %q / %q", m.Subject, m.Text)
	}
	if len(m.Params) != 2 || m.Params[0] != (notify.Param{Key: "cut_at", Value: "2026-12-01 18:30:00"}) || m.Params[1].Value != "-1.50" {
		t.Errorf("params = %+v; want cut_at in the site's zone, then balance", m.Params)
	}
	// A WeChat template names its fields itself: the keys, in the params'
	// order.
	m = d.Message(dl, Channel{Params: map[string][]string{"cutoff_scheduled": {"cut_at", "balance"}},
		Keys: map[string][]string{"cutoff_scheduled": {"time3", "amount2"}}})
	if len(m.Params) != 2 || m.Params[0] != (notify.Param{Key: "time3", Value: "2026-12-01 18:30:00"}) || m.Params[1] != (notify.Param{Key: "amount2", Value: "-1.50"}) {
		t.Errorf("params with keys = %+v; want time3 = cut_at, amount2 = balance", m.Params)
	}
	dl.Recipient.Lang = "en"
	if m := d.Message(dl, Channel{}); !strings.Contains(m.Text, "power will be cut at") || len(m.Params) != 3 {
		t.Errorf("en message = %q, params %+v (every arg by name)", m.Text, m.Params)
	}
}

// The backoff doubles from base to max, less the jitter.
func TestBackoff(t *testing.T) {
	cfg := testConfig(t, hookYAML("http://127.0.0.1:9/h", "  backoff: {base: 30s, max: 5m}\n"))
	d := &Deliverer{Config: cfg, Jitter: func(d time.Duration) time.Duration { return d / 2 }}
	for n, want := range map[int]time.Duration{1: 22500 * time.Millisecond, 2: 45 * time.Second, 3: 90 * time.Second, 5: 225 * time.Second, 9: 225 * time.Second} {
		if got := d.backoff(n, true); got != want {
			t.Errorf("backoff(%d) = %v; want %v", n, got, want)
		}
	}
	if got := d.backoff(3, false); got != 2*time.Minute {
		t.Errorf("backoff(3) without jitter = %v; want 2m", got)
	}
}

// Run returns nil once its ctx ends.
func TestDeliverer_RunStopsOnCancel(t *testing.T) {
	hook := newHook(t, func(string) int { return http.StatusOK })
	rg := newRig(t, testConfig(t, hookYAML(hook.srv.URL, "")))
	rg.d.Poll = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rg.d.Run(ctx) }()
	rg.post(t, warning("T-1"))
	deadline := time.Now().Add(5 * time.Second)
	for hook.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // waiting on the goroutine, not in the logic
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if hook.count() != 1 {
		t.Errorf("%d sent by Run; want 1", hook.count())
	}
}

// The rate limit spares tenants' phones; staff hear of every alarm at
// once however many come.
func TestDeliverer_RateLimitTenantsOnly(t *testing.T) {
	hook := newHook(t, func(string) int { return http.StatusOK })
	cfg := testConfig(t, hookYAML(hook.srv.URL, "  rate_limit: {per_hour: 2}\n"))
	rg := newRig(t, cfg)
	for range 5 {
		rg.post(t, store.Event{Kind: "overload", Meter: "M-1", Text: "overload", Args: map[string]string{"meter": "M-1"}})
		rg.d.Round(context.Background())
		rg.clock.add(time.Minute)
	}
	if hook.count() != 5 {
		t.Errorf("staff sent %d of 5 overloads within the hour; want every one", hook.count())
	}
}

// A send the database did not record (its file moved away: writes
// refused) is never sent again, and the loop waits instead of spinning.
func TestDeliverer_UnrecordedSendNotRepeated(t *testing.T) {
	hook := newHook(t, func(string) int { return http.StatusOK })
	cfg := testConfig(t, hookYAML(hook.srv.URL, ""))
	rg := newRig(t, cfg)
	rg.post(t, warning("T-1"))
	if err := os.Rename(rg.path, rg.path+".away"); err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	for range 5 {
		waits = append(waits, rg.d.Round(context.Background()))
		rg.clock.add(time.Second)
	}
	if hook.count() != 1 {
		t.Errorf("sent %d times with the database refusing writes; want once", hook.count())
	}
	for i, w := range waits {
		if w < time.Second {
			t.Errorf("round %d waits %s; want at least a second while the database fails", i, w)
		}
	}
}

// A paused channel's due messages do not make the loop spin: a round that
// could send nothing waits a second at least.
func TestDeliverer_PausedChannelNoBusyLoop(t *testing.T) {
	hook := newHook(t, func(string) int { return http.StatusUnauthorized }) // channel-wide: credentials
	cfg := testConfig(t, hookYAML(hook.srv.URL, ""))
	rg := newRig(t, cfg)
	for range 20 {
		rg.post(t, warning("T-1"))
	}
	rg.d.Round(context.Background()) // the first is sent and pauses the channel
	for i := range 3 {
		if w := rg.d.Round(context.Background()); w < time.Second {
			t.Errorf("round %d while paused waits %s; want at least a second", i, w)
		}
	}
	if hook.count() != 1 {
		t.Errorf("sent %d while paused; want the one that paused it", hook.count())
	}
}

// A database that fails from the start (here: closed) does not end Run:
// the loop waits and tries again until it is cancelled, so that notices
// wait in the outbox rather than the deliverer stopping for good.
func TestDeliverer_RunOutlivesAFailingDatabase(t *testing.T) {
	rg := newRig(t, testConfig(t, hookYAML("http://127.0.0.1:9/h", "")))
	if err := rg.db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rg.d.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v on a failing database; want it to keep trying", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// Finished notices older than notify.keep are deleted, once an hour; a
// pending one and a dead letter with its alarm open stay however old.
func TestDeliverer_PrunesOldNotices(t *testing.T) {
	fail := false
	hook := newHook(t, func(string) int {
		if fail {
			return http.StatusBadRequest // refused for good: a dead letter
		}
		return http.StatusOK
	})
	cfg := testConfig(t, hookYAML(hook.srv.URL, "  keep: 1d\n  quiet_hours: {from: '00:00', to: '23:59'}\n"))
	rg := newRig(t, cfg)
	rg.post(t, store.Event{Kind: "overload", Meter: "M-1", Text: "overload", Args: map[string]string{"meter": "M-1"}})
	rg.d.Round(context.Background()) // staff: delivered
	fail = true
	rg.post(t, store.Event{Kind: "overload", Meter: "M-2", Text: "overload", Args: map[string]string{"meter": "M-2"}})
	rg.d.Round(context.Background()) // dead, its alarm open
	rg.post(t, warning("T-1"))       // tenant's: held by the quiet hours
	rg.d.Round(context.Background())
	if got := states(t, rg.db); got[store.DeliveryDelivered] != 1 || got[store.DeliveryDead] != 1 || got[store.DeliveryPending] != 1 {
		t.Fatalf("states = %v; want one delivered, one dead, one pending", got)
	}
	rg.clock.add(25 * time.Hour)
	rg.d.Round(context.Background())
	if got := states(t, rg.db); got[store.DeliveryDelivered] != 0 || got[store.DeliveryDead] != 1 || got[store.DeliveryPending] != 1 {
		t.Errorf("states a day later = %v; want the delivered one deleted, the rest kept", got)
	}
	if problems, err := rg.db.CheckOutbox(); err != nil || len(problems) > 0 {
		t.Errorf("CheckOutbox = %q, %v", problems, err)
	}
}
