//go:build soak

package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mallgrid/store"
)

// The notification crash test's webhook and routes.
const (
	notifyMinKill = 120 // kill points the test must reach
	notifySecret  = "crash-notify-webhook-secret"
	notifyTimeout = 2 * time.Second // notify.timeout: every slow answer is well under it
)

// notifyRoutes are the configured routes, in order, by event kind: a
// top-up's receipt goes to the tenant (route 0) and to the duty desk
// (route 1), a balance warning to the tenant only. Over one webhook each
// (event, route) is one delivery.
var notifyRoutes = map[string][]int{
	"topup_receipt": {0, 1},
	"warning_1":     {0},
	"warning_2":     {0},
}

// TestCrash_KilledGatewayNotifiesOnce kills the daemon with SIGKILL at
// least notifyMinKill times at random moments while a till sends top-ups
// and the outbox delivers their receipts (and the tenants' balance
// warnings) to a webhook in this process, out of the kills' reach, that
// checks each request as a real receiver does and fails or answers slowly
// at random. Kills fall before a send, during one, and between the
// receiver's acceptance and the write that records it. After a last clean
// run has emptied the outbox it holds the database to what the receiver
// saw: every routed event has its one delivery per route, every delivery is
// delivered, every delivered id reached the receiver and the receiver
// accepted nothing the database does not hold. An id accepted twice (sent
// again after a kill) is allowed — delivery is at least once — and
// reported. mallgrid verify passes.
func TestCrash_KilledGatewayNotifiesOnce(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	hook := newHookReceiver(notifySecret, 12)
	srv := httptest.NewServer(hook)
	defer srv.Close()
	simAddr, _ := crashSim(t)
	httpAddr := freePort(t)
	dbPath := filepath.Join(dir, "g.db")
	cfgPath := writeNotifyConfig(t, dir, dbPath, simAddr, httpAddr, srv.URL)

	till := newTill("http://" + httpAddr)
	sending, stopSending := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	for i := range 2 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			till.run(sending, rand.New(rand.NewPCG(12, uint64(i))))
		}()
	}
	defer func() { stopSending(); senders.Wait() }()

	// Lives of 150 ms – 1.2 s: long enough for most to get past start-up
	// and deliver, short enough that kills land in sends, in slow answers
	// and between an answer and its mark-done.
	rng := rand.New(rand.NewPCG(12, 13))
	kills := 0
	for ; kills < notifyMinKill; kills++ {
		killAfter(t, cfgPath, kills, time.Duration(150+rng.IntN(1050))*time.Millisecond)
	}
	stopSending()
	senders.Wait()
	killPhase := time.Since(began)
	requestsKilled := hook.stats().requests

	// A clean run delivers what the kills left pending; the till has
	// stopped, so nothing new is routed meanwhile.
	cmd, stderr := startGateway(t, cfgPath)
	drained := waitNoPending(t, "http://"+httpAddr, 60*time.Second)
	stopWithin(t, cmd, syscall.SIGTERM, 3*time.Second)
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("the clean run said:\n%s", s)
	}

	code, stdout, errOut := mallgrid(t, "verify", "-c", cfgPath)
	if code != 0 || !strings.Contains(stdout, "ledger ok") {
		t.Errorf("after %d kills, verify = %d, %q; want 0, \"ledger ok\"\n%s", kills, code, strings.TrimSpace(stdout), errOut)
	}

	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	topups := map[string][]store.Entry{}
	err = db.EachEntry(func(e store.Entry) error {
		if e.Kind == store.TopUp {
			topups[e.Ref] = append(topups[e.Ref], e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	till.check(t, topups)
	routed := routedEvents(t, db)
	checkReceipts(t, routed, topups)
	deliveries, err := db.Deliveries("", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	checkDeliveries(t, routed, deliveries)
	dups := hook.check(t, deliveries)

	st := hook.stats()
	byKind := map[string]int{}
	for _, e := range routed {
		byKind[e.Kind]++
	}
	attempts := 0
	for _, d := range deliveries {
		attempts += d.Attempts
	}
	t.Logf("%d kills in %v, outbox drained %v after the last; routed events %v; %d deliveries, %d attempts recorded",
		kills, killPhase.Round(time.Second), drained.Round(100*time.Millisecond), byKind, len(deliveries), attempts)
	t.Logf("webhook: %d requests (%d while killing), %d failed on purpose (500/503), %d answered slowly, %d ids accepted %d times; %d ids accepted more than once (%d resends); whole test %v",
		st.requests, requestsKilled, st.failed, st.slow, len(st.accepted), st.acceptances, len(dups), st.acceptances-len(st.accepted),
		time.Since(began).Round(time.Second))
	if len(dups) > 0 {
		t.Logf("accepted again (at least once, allowed): %s", strings.Join(dups[:min(len(dups), 20)], ", "))
	}
}

// writeNotifyConfig writes the crash test's mall (writeCrashConfig's eight
// metered shops on the minute tariff, the till's token) with a credit
// rating, so that the new accounts' balances raise warnings, and a notify
// section: one webhook to url, fast retries, no cap, no quiet hours.
func writeNotifyConfig(t *testing.T, dir, dbPath, simAddr, httpAddr, url string) string {
	t.Helper()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "site: {name: crash-notify, timezone: Asia/Shanghai}\nstorage: {path: %s}\n", dbPath)
	fmt.Fprintf(&cfg, "http:\n  listen: '%s'\n  tokens: [{name: till, role: operator, sha256: f006509cb63476fb1f057fd2a307f8ebdf839503f055e587051ed3f4ee7bd970}]\n", httpAddr)
	fmt.Fprintf(&cfg, "log: {level: warn}\nbuses:\n  - {name: lan, type: tcp, port: '%s', interval: 1s, pause: 0s}\nmeters:\n", simAddr)
	for a := 1; a <= crashMeters; a++ {
		fmt.Fprintf(&cfg, "  - {id: M-%d, bus: lan, address: %d, model: kpm33b, tenant: T-%d, rated_current: 100}\n", a, a, a)
	}
	// An overdraft no test reaches: warnings, never a cut-off.
	cfg.WriteString("ratings: [{name: A, warning_1: '300.00', warning_2: '100.00', overdraft: '100000.00', grace: 720h, restore: '0'}]\n")
	cfg.WriteString("tenants:\n")
	for a := 1; a <= crashMeters; a++ {
		fmt.Fprintf(&cfg, "  - {id: T-%d, name: Shop %d, tariff: t, credit_rating: A}\n", a, a)
	}
	cfg.WriteString(minuteTOU())
	fmt.Fprintf(&cfg, "notify:\n  channels: [{name: hook, kind: webhook, url: '%s', secret: %s}]\n", url, notifySecret)
	cfg.WriteString("  routes:\n")
	cfg.WriteString("    - {events: [topup_receipt, warning_1, warning_2], to: tenant, channels: [hook]}\n")
	cfg.WriteString("    - {events: [topup_receipt], to: staff, channels: [hook]}\n")
	cfg.WriteString("  staff: [{name: Duty desk, email: duty@plaza.example}]\n")
	fmt.Fprintf(&cfg, "  rate_limit: {per_hour: 0}\n  max_attempts: 100\n  backoff: {base: 1s, max: 2s}\n  timeout: %s\n", notifyTimeout)
	path := filepath.Join(dir, "mallgrid.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitNoPending waits until the gateway lists no pending notification
// and returns how long that took.
func waitNoPending(t *testing.T, base string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < within {
		time.Sleep(200 * time.Millisecond)
		resp, err := getWithToken(base+"/api/v1/notifications?state=pending&limit=1000", "till-secret")
		if err != nil {
			last = err.Error()
			continue
		}
		var list []struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK || err != nil:
			last = fmt.Sprintf("status %d, %v", resp.StatusCode, err)
		case len(list) == 0:
			return time.Since(start)
		default:
			last = fmt.Sprintf("%d pending", len(list))
		}
	}
	t.Fatalf("the outbox still not empty %v into the clean run: %s", within, last)
	return 0
}

// routedEvents returns the stored events of a kind a route names.
func routedEvents(t *testing.T, db *store.DB) []store.Event {
	t.Helper()
	var out []store.Event
	err := db.EachEventBefore(0, func(e store.Event) bool {
		if _, ok := notifyRoutes[e.Kind]; ok {
			out = append(out, e)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkReceipts holds the receipts to the ledger: each top-up credited has
// exactly one topup_receipt event, of its tenant, written with it; none
// without one.
func checkReceipts(t *testing.T, routed []store.Event, topups map[string][]store.Entry) {
	t.Helper()
	receipts := map[string][]store.Event{}
	for _, e := range routed {
		if e.Kind == "topup_receipt" {
			receipts[e.Args["ref"]] = append(receipts[e.Args["ref"]], e)
		}
	}
	for ref, es := range topups {
		rs := receipts[ref]
		if len(rs) != 1 {
			t.Errorf("payment %s: %d topup_receipt events; want 1, written with its entry %d", ref, len(rs), es[0].ID)
			continue
		}
		if rs[0].Tenant != es[0].Account {
			t.Errorf("payment %s: receipt %d for %s; want for %s, whom it credited", ref, rs[0].ID, rs[0].Tenant, es[0].Account)
		}
	}
	for ref, rs := range receipts {
		if _, ok := topups[ref]; !ok {
			t.Errorf("receipt %d of payment %s: no such top-up in the ledger", rs[0].ID, ref)
		}
	}
	if len(receipts) == 0 {
		t.Error("no topup_receipt stored; want the till's top-ups to have caused some")
	}
}

// checkDeliveries holds the outbox to the routes: one delivery per routed
// event and route, over the webhook, to whom the route names, and every
// one of them delivered; none of any other event.
func checkDeliveries(t *testing.T, routed []store.Event, deliveries []store.Delivery) {
	t.Helper()
	type key struct {
		event uint64
		route int
	}
	got := map[key][]store.Delivery{}
	for _, d := range deliveries {
		got[key{d.Event.ID, d.Route}] = append(got[key{d.Event.ID, d.Route}], d)
		if d.State != store.DeliveryDelivered {
			t.Errorf("delivery %s (%s, event %d): %s after %d attempts (%s); want delivered", d.ID, d.Event.Kind, d.Event.ID, d.State, d.Attempts, d.LastError)
		}
	}
	want := map[key]bool{}
	for _, e := range routed {
		for _, ri := range notifyRoutes[e.Kind] {
			k := key{e.ID, ri}
			want[k] = true
			ds := got[k]
			if len(ds) != 1 {
				t.Errorf("event %d (%s of %s), route %d: %d deliveries; want 1", e.ID, e.Kind, e.Tenant, ri, len(ds))
				continue
			}
			d := ds[0]
			to := []string{"tenant", "staff"}[ri]
			if d.Channel != "hook" || d.To != to || d.Tenant != e.Tenant || d.Event.Kind != e.Kind {
				t.Errorf("delivery %s of event %d (%s of %s), route %d: channel %s, to %s, tenant %s, kind %s; want hook, %s, %s, %s",
					d.ID, e.ID, e.Kind, e.Tenant, ri, d.Channel, d.To, d.Tenant, d.Event.Kind, to, e.Tenant, e.Kind)
			}
		}
	}
	for k, ds := range got {
		if !want[k] {
			t.Errorf("delivery %s: of event %d (%s), route %d; want none, the routes name no such event", ds[0].ID, k.event, ds[0].Event.Kind, k.route)
		}
	}
}

// hookReceiver is the mall's app: it believes a request only once it has
// checked it as a real receiver does, records each delivery id it accepts,
// and fails about 30 % of the requests (500 or 503) and answers one in
// ten slowly, so that the outbox retries and kills fall into open sends.
type hookReceiver struct {
	secret string

	mu          sync.Mutex
	rng         *rand.Rand
	accepted    map[string]int      // delivery id → acceptances
	told        map[string]hookNote // delivery id → what the first acceptance said
	acceptances int
	requests    int
	failed      int // refused on purpose
	slow        int
	problems    []string // requests no correct gateway sends
}

// hookNote is what an accepted request told of its event.
type hookNote struct {
	kind  string
	event uint64
}

func newHookReceiver(secret string, seed uint64) *hookReceiver {
	return &hookReceiver{secret: secret, rng: rand.New(rand.NewPCG(seed, 1)), accepted: map[string]int{}, told: map[string]hookNote{}}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	note, err := h.read(r)
	h.mu.Lock()
	h.requests++
	if err != nil {
		h.problems = append(h.problems, err.Error())
		h.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fail, slow := h.rng.IntN(100) < 30, h.rng.IntN(10) == 0
	status := http.StatusOK
	if fail {
		h.failed++
		status = []int{http.StatusInternalServerError, http.StatusServiceUnavailable}[h.rng.IntN(2)]
	} else {
		// Taken before the answer is written: a sender killed while it
		// waits for the answer has delivered without knowing it.
		id := r.Header.Get("X-Mallgrid-Delivery")
		h.accepted[id]++
		h.acceptances++
		if prev, seen := h.told[id]; seen && prev != note {
			h.problems = append(h.problems, fmt.Sprintf("delivery %s: told of %s event %d, before of %s event %d; want the same under one id", id, note.kind, note.event, prev.kind, prev.event))
		} else if !seen {
			h.told[id] = note
		}
	}
	var wait time.Duration
	if slow {
		h.slow++
		wait = time.Duration(200+h.rng.IntN(600)) * time.Millisecond // under half the timeout
	}
	h.mu.Unlock()
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-r.Context().Done(): // the gateway was killed
			return
		}
	}
	if status == http.StatusServiceUnavailable && wait == 0 {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
}

// read checks a request as the receiving system does before believing it:
// a POST of JSON, signed under the shared secret within 5 minutes of now,
// whose body names the delivery of its header and a stored event.
func (h *hookReceiver) read(r *http.Request) (hookNote, error) {
	if r.Method != http.MethodPost {
		return hookNote{}, fmt.Errorf("%s %s; want POST", r.Method, r.URL)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return hookNote{}, fmt.Errorf("content type %q; want application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return hookNote{}, fmt.Errorf("read body: %v", err)
	}
	id := r.Header.Get("X-Mallgrid-Delivery")
	if id == "" {
		return hookNote{}, fmt.Errorf("no X-Mallgrid-Delivery: %s", body)
	}
	if err := h.verify(r.Header.Get("X-Mallgrid-Signature"), body, time.Now()); err != nil {
		return hookNote{}, fmt.Errorf("delivery %s: %v", id, err)
	}
	var b struct {
		Delivery string `json:"delivery"`
		Kind     string `json:"kind"`
		Text     string `json:"text"`
		Event    struct {
			ID   uint64 `json:"id"`
			Kind string `json:"kind"`
		} `json:"event"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return hookNote{}, fmt.Errorf("delivery %s: body %s: %v", id, body, err)
	}
	if _, routed := notifyRoutes[b.Kind]; !routed || b.Delivery != id || b.Event.Kind != b.Kind || b.Event.ID == 0 || b.Text == "" {
		return hookNote{}, fmt.Errorf("delivery %s: body %s; want delivery %s, a routed kind, its event and a text", id, body, id)
	}
	return hookNote{kind: b.Kind, event: b.Event.ID}, nil
}

// verify checks X-Mallgrid-Signature, "t=<unix>,v1=<hex HMAC-SHA256(secret,
// "<t>.<body>")>", as the contract spells it (not with the gateway's own
// code, which would then be checked by itself).
func (h *hookReceiver) verify(header string, body []byte, now time.Time) error {
	var ts, v1 string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || v1 == "" {
		return fmt.Errorf("signature header %q; want t=<unix>,v1=<hex>", header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signed at %d, %v from now; want within 5 minutes", sec, d.Round(time.Second))
	}
	got, err := hex.DecodeString(v1)
	if err != nil {
		return fmt.Errorf("signature header %q: v1 not hex", header)
	}
	m := hmac.New(sha256.New, []byte(h.secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("signature %q does not sign the body under the secret", header)
	}
	return nil
}

type hookStats struct {
	requests, failed, slow, acceptances int
	accepted                            map[string]int
}

func (h *hookReceiver) stats() hookStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hookStats{requests: h.requests, failed: h.failed, slow: h.slow, acceptances: h.acceptances, accepted: maps.Clone(h.accepted)}
}

// check holds what the receiver accepted to the outbox: every delivered
// id accepted at least once and of the event the database names, nothing
// accepted the database does not hold. It returns the ids accepted more
// than once, as "id×n", sorted.
func (h *hookReceiver) check(t *testing.T, deliveries []store.Delivery) (dups []string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.problems {
		t.Error("webhook: " + p)
	}
	byID := map[string]store.Delivery{}
	for _, d := range deliveries {
		byID[d.ID] = d
		if d.State != store.DeliveryDelivered {
			continue // reported by checkDeliveries
		}
		n := h.accepted[d.ID]
		if n == 0 {
			t.Errorf("delivery %s (%s, event %d): delivered in the database, never accepted by the webhook; want at least once", d.ID, d.Event.Kind, d.Event.ID)
			continue
		}
		if note := h.told[d.ID]; note.kind != d.Event.Kind || note.event != d.Event.ID {
			t.Errorf("delivery %s: the webhook was told of %s event %d; want %s event %d", d.ID, note.kind, note.event, d.Event.Kind, d.Event.ID)
		}
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", d.ID, n))
		}
	}
	for id, n := range h.accepted {
		if _, ok := byID[id]; !ok {
			t.Errorf("the webhook accepted delivery %s %d times; the database holds no such delivery", id, n)
		}
	}
	slices.Sort(dups)
	return dups
}
