package uplink

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/live"
	"mallgrid/gateway/verify"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// topUpAt is a top-up command for T-101, issued a minute before at and
// expiring an hour after.
func topUpAt(id, amount, ref string, at time.Time) []byte {
	return vectorCommand(id, vectorSite, fmt.Sprintf(`"tenant":"T-101","amount":%q,"ref":%q,"channel":"wechat"`, amount, ref),
		at.Add(-time.Minute), at.Add(time.Hour))
}

func decodeResult(t *testing.T, data []byte) Result {
	t.Helper()
	var r Result
	if err := strictJSON(data, &r); err != nil {
		t.Fatalf("result %s: %v", data, err)
	}
	return r
}

func (h *harness) result(msg []byte) Result {
	h.t.Helper()
	data, err := h.handle(msg)
	if err != nil {
		h.t.Fatalf("Handle = %v", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) lastEvent() store.Event {
	h.t.Helper()
	evs, err := h.db.LastEvents(1)
	if err != nil || len(evs) != 1 {
		h.t.Fatalf("events = %v, %v", evs, err)
	}
	return evs[0]
}

// Messages that cannot be read or break the command's rules are refused
// as bad_command and credit nothing; one whose id cannot be read is named
// by its SHA-256.
func TestCommands_BadCommand(t *testing.T) {
	key := vectorKey(t)
	h := newHarness(t, t.TempDir())
	good := topUpAt("c-1", "10.00", "P-1", vectorNow)
	sign := func(cmd string) []byte { return signed(key, "k1", []byte(cmd)) }
	cmd := func(fields string) string {
		return `{"id":"c-1","site":"riverside-plaza","kind":"topup",` + fields + `,"issued_at":"2026-12-01T09:59:00+08:00","expires_at":"2026-12-01T10:59:00+08:00"}`
	}
	for _, c := range []struct {
		name   string
		msg    []byte
		wantID string
	}{
		{"not JSON", []byte(`{"key_id":`), ""},
		{"envelope with another field", []byte(`{"key_id":"k1","payload":"e30=","sig":"","v":1}`), ""},
		{"data after the envelope", append(sign(string(good)), []byte(` {}`)...), ""},
		{"payload not base64", []byte(`{"key_id":"k1","payload":"e30","sig":""}`), ""},
		{"too big", append([]byte(`{"key_id":"k1","payload":"`), append([]byte(strings.Repeat("A", MaxCommandBytes)), []byte(`","sig":""}`)...)...), ""},
		{"command not JSON", sign(`{"id":"c-1",`), ""},
		{"amount a number", sign(cmd(`"tenant":"T-101","amount":10,"ref":"P-1","channel":"wechat"`)), "c-1"},
		{"no ref", sign(cmd(`"tenant":"T-101","amount":"10.00","channel":"wechat"`)), "c-1"},
		{"unknown kind", sign(`{"id":"c-1","site":"riverside-plaza","kind":"protection"}`), "c-1"},
		{"invoice_status field in a topup", sign(cmd(`"tenant":"T-101","amount":"10.00","ref":"P-1","channel":"wechat","number":"1"`)), "c-1"},
		{"invoice with another field", sign(cmd(`"tenant":"T-101","amount":"10.00","ref":"P-1","channel":"wechat","invoice":{"title":"A","vat":"1"}`)), "c-1"},
		{"id with a space", sign(strings.Replace(cmd(`"tenant":"T-101","amount":"10.00","ref":"P-1","channel":"wechat"`), `"c-1"`, `"c 1"`, 1)), ""},
		{"no expiry", sign(`{"id":"c-1","site":"riverside-plaza","kind":"topup","tenant":"T-101","amount":"10.00","ref":"P-1","channel":"wechat","issued_at":"2026-12-01T09:59:00+08:00"}`), "c-1"},
		{"time not RFC 3339", sign(cmd(`"tenant":"T-101","amount":"10.00","ref":"P-1","channel":"wechat","issued_at":"yesterday"`)), "c-1"},
	} {
		r := h.result(c.msg)
		if r.Status != StatusRefused || r.Reason != ReasonBadCommand || r.ID != c.wantID {
			t.Errorf("%s: result %+v; want refused bad_command, id %q", c.name, r, c.wantID)
		}
		sum := sha256.Sum256(c.msg)
		if c.wantID == "" && r.PayloadSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: payload_sha256 %q; want the message's", c.name, r.PayloadSHA256)
		}
		if c.wantID != "" && r.PayloadSHA256 != "" {
			t.Errorf("%s: payload_sha256 given with an id", c.name)
		}
		if e := h.lastEvent(); e.Kind != KindCommandRefused || e.Args["reason"] != ReasonBadCommand || e.Args["command"] != c.wantID {
			t.Errorf("%s: event %+v; want uplink_command_refused, bad_command", c.name, e)
		}
	}
	if a, err := h.db.Account("T-101"); !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("account = %+v, %v; want none: nothing credited", a, err)
	}
	// A refusal before the command was trusted is not remembered: the
	// command, sent right, is carried out.
	if r := h.result(sign(string(good))); r.Status != StatusOK {
		t.Errorf("the good command after the bad ones: %+v; want ok", r)
	}
}

// The times: from the future, living too long, expired. A command for
// this site but handled after its expiry is refused; delivered again
// after expiry, a command carried out gets its first answer.
func TestCommands_Times(t *testing.T) {
	key := vectorKey(t)
	h := newHarness(t, t.TempDir())
	n := vectorNow
	mk := func(id string, issued, expires time.Time) []byte {
		return signed(key, "k1", vectorCommand(id, vectorSite, `"tenant":"T-101","amount":"10.00","ref":"P-`+id+`","channel":"wechat"`, issued, expires))
	}
	for _, c := range []struct {
		name            string
		issued, expires time.Time
		reason          string
	}{
		{"issued 6 min ahead", n.Add(6 * time.Minute), n.Add(time.Hour), ReasonBadCommand},
		{"issued 4 min ahead", n.Add(4 * time.Minute), n.Add(time.Hour), ""},
		{"expires at now", n.Add(-time.Hour), n, ReasonExpired},
		{"expires before issued", n.Add(2 * time.Minute), n.Add(time.Minute), ReasonBadCommand},
		{"lives 8 days", n, n.Add(8 * 24 * time.Hour), ReasonBadCommand},
		{"lives 7 days", n, n.Add(7 * 24 * time.Hour), ""},
	} {
		r := h.result(mk(strings.ReplaceAll(c.name, " ", "-"), c.issued, c.expires))
		want := StatusRefused
		if c.reason == "" {
			want = StatusOK
		}
		if r.Status != want || r.Reason != c.reason {
			t.Errorf("%s: %+v; want %s %s", c.name, r, want, c.reason)
		}
	}

	first := mk("c-late", n.Add(-time.Minute), n.Add(time.Minute))
	if r := h.result(first); r.Status != StatusOK {
		t.Fatalf("first = %+v", r)
	}
	h.now = n.Add(2 * time.Minute)
	if r := h.result(first); r.Status != StatusOK || !r.Duplicate {
		t.Errorf("delivered again after expiry: %+v; want the first result, duplicate", r)
	}
	// Past a day after its expiry the record is pruned (on the next
	// command handled). The command then comes past the id's record, to
	// its times: expired — but its payment was credited, so it is
	// answered with that entry (existing), not refused.
	h.now = n.Add(keepSeen + pruneEvery + 2*time.Minute)
	h.restart()
	if r := h.result(mk("c-next", h.now, h.now.Add(time.Hour))); r.Status != StatusOK {
		t.Fatalf("next = %+v", r)
	}
	if _, seen, err := h.db.UplinkCommand("c-late"); seen || err != nil {
		t.Errorf("c-late still recorded (%v, %v); want pruned", seen, err)
	}
	if _, seen, _ := h.db.UplinkCommand("c-next"); !seen {
		t.Error("c-next pruned; want kept")
	}
	if r := h.result(first); r.Status != StatusOK || r.Duplicate || r.Existing == nil || !*r.Existing {
		t.Errorf("after pruning: %+v; want ok, existing, not a duplicate", r)
	}
}

// flakyLedger fails every top-up with an error of the database's until
// healed.
type flakyLedger struct {
	Ledger
	broken bool
}

func (f *flakyLedger) TopUp(ctx context.Context, tenant string, req web.TopUpRequest, actor string) (web.EntryView, bool, error) {
	if f.broken {
		return web.EntryView{}, false, store.ErrNoSpace
	}
	return f.Ledger.TopUp(ctx, tenant, req, actor)
}

// When the ledger cannot write, Handle returns an error and stores
// nothing, so the broker delivers the command again; then it is carried
// out once.
func TestCommands_FailureIsRedelivered(t *testing.T) {
	h := newHarness(t, t.TempDir())
	flaky := &flakyLedger{Ledger: h.ledger, broken: true}
	h.cmds.Ledger = flaky
	msg := signed(vectorKey(t), "k1", topUpAt("c-1", "10.00", "P-1", vectorNow))
	if err := h.cmds.Handle(context.Background(), msg); !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("Handle = %v; want the ledger's error", err)
	}
	if s, _ := h.db.UplinkStats(); s.Head != 0 {
		t.Errorf("outbox head %d; want nothing queued", s.Head)
	}
	if _, seen, _ := h.db.UplinkCommand("c-1"); seen {
		t.Error("the command is recorded; want not")
	}
	flaky.broken = false
	if r := h.result(msg); r.Status != StatusOK || r.Duplicate || r.Existing == nil || *r.Existing {
		t.Errorf("redelivered: %+v; want ok, new", r)
	}
}

// heard records the events published.
type heard struct{ evs []store.Event }

func (h *heard) Publish(evs []store.Event) { h.evs = append(h.evs, evs...) }

// Each refusal is an event for the control room, stored and published;
// one about a trusted top-up names its tenant; a duplicate delivery is
// none.
func TestCommands_RefusalEvents(t *testing.T) {
	h := newHarness(t, t.TempDir())
	hub := &heard{}
	h.cmds.Events = hub
	key := vectorKey(t)
	ok := signed(key, "k1", topUpAt("c-1", "10.00", "P-1", vectorNow))
	h.result(ok)
	r := h.result(signed(key, "k1", topUpAt("c-2", "11.00", "P-1", vectorNow)))
	e := h.lastEvent()
	if r.Reason != ReasonRefConflict || e.Kind != KindCommandRefused || e.Tenant != "T-101" || e.Args["command"] != "c-2" ||
		e.Args["reason"] != ReasonRefConflict || e.Args["key"] != "k1" || e.Args["command_kind"] != KindTopUp || !strings.Contains(e.Text, "c-2") {
		t.Errorf("ref conflict: result %+v, event %+v", r, e)
	}
	// Remembered: sent again, the same refusal as a duplicate.
	if again := h.result(signed(key, "k1", topUpAt("c-2", "11.00", "P-1", vectorNow))); again.Reason != ReasonRefConflict || !again.Duplicate {
		t.Errorf("refused command again: %+v; want its refusal, duplicate", again)
	}
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.result(signed(other, "k1", topUpAt("c-3", "10.00", "P-3", vectorNow)))
	if e := h.lastEvent(); e.Args["reason"] != ReasonBadSignature || e.Tenant != "" {
		t.Errorf("forged: event %+v; want bad_signature, no tenant", e)
	}
	before := h.lastEvent().ID
	h.result(ok)
	if e := h.lastEvent(); e.ID != before {
		t.Errorf("a duplicate stored event %+v; want none", e)
	}
	h.result([]byte("{"))
	if e := h.lastEvent(); e.Args["form"] != "no_id" {
		t.Errorf("no id: event %+v; want the no_id form", e)
	}
	// Each is told in both languages, not by its English Text.
	evs, err := h.db.LastEvents(100)
	if err != nil {
		t.Fatal(err)
	}
	var refused []store.Event
	for _, e := range evs {
		if e.Kind == KindCommandRefused {
			refused = append(refused, e)
		}
	}
	if len(hub.evs) != 3 || len(refused) != 3 || hub.evs[2].ID != refused[2].ID || hub.evs[0].ID == 0 {
		t.Errorf("published %+v; want the 3 refusals stored (%d), each with its id", hub.evs, len(refused))
	}
	for _, e := range evs {
		if err := i18n.CheckEvent(e.Kind, e.Args); err != nil {
			t.Errorf("event %d (%s): %v", e.ID, e.Kind, err)
		}
	}
}

// The same message handled at once by many goroutines is credited once
// and answered once as new, the rest as duplicates.
func TestCommands_Concurrent(t *testing.T) {
	h := newHarness(t, t.TempDir())
	msg := signed(vectorKey(t), "k1", topUpAt("c-1", "10.00", "P-1", vectorNow))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.cmds.Handle(context.Background(), msg); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	msgs, err := h.db.UplinkAfter(0, 100)
	if err != nil || len(msgs) != 8 {
		t.Fatalf("outbox = %d messages, %v; want 8", len(msgs), err)
	}
	dups := 0
	for _, m := range msgs {
		if r := decodeResult(t, m.Data); r.Duplicate {
			dups++
		} else if r.Status != StatusOK || *r.Existing {
			t.Errorf("first result %+v; want ok, new", r)
		}
	}
	if a, _ := h.db.Account("T-101"); dups != 7 || a.Entries != 1 {
		t.Errorf("%d duplicates, %d entries; want 7 and 1", dups, a.Entries)
	}
}

// A top-up's invoice request is stored with it; the platform's
// invoice_status then records the invoice.
func TestCommands_Invoice(t *testing.T) {
	h := newHarness(t, t.TempDir())
	key := vectorKey(t)
	issued, expires := vectorNow.Add(-time.Minute), vectorNow.Add(time.Hour)
	top := vectorCommand("c-1", vectorSite, `"tenant":"T-101","amount":"10.00","ref":"P-1","channel":"alipay","invoice":{"title":"Tea House Ltd","tax_id":"91310000MA1FL0000X","email":"tea@example.com"}`, issued, expires)
	if r := h.result(signed(key, "k1", top)); r.Status != StatusOK {
		t.Fatalf("top-up with an invoice: %+v", r)
	}
	invs, err := h.db.Invoices([]string{"P-1"})
	if err != nil || invs["P-1"].Title != "Tea House Ltd" || invs["P-1"].Status != store.InvoiceRequested {
		t.Fatalf("invoice = %+v, %v; want requested for Tea House Ltd", invs, err)
	}
	st := fmt.Appendf(nil, `{"id":"c-2","site":%q,"kind":"invoice_status","ref":"P-1","status":"issued","number":"0440","url":"https://fp.example/0440","reason":"","issued_at":%q,"expires_at":%q}`,
		vectorSite, issued.Format(time.RFC3339), expires.Format(time.RFC3339))
	if r := h.result(signed(key, "k1", st)); r.Status != StatusOK || r.Ref != "P-1" || r.InvoiceStatus != store.InvoiceIssued {
		t.Errorf("invoice_status: %+v; want ok, issued", r)
	}
	bad := fmt.Appendf(nil, `{"id":"c-3","site":%q,"kind":"invoice_status","ref":"P-1","status":"lost","issued_at":%q,"expires_at":%q}`,
		vectorSite, issued.Format(time.RFC3339), expires.Format(time.RFC3339))
	if r := h.result(signed(key, "k1", bad)); r.Reason != ReasonBadCommand {
		t.Errorf("status lost: %+v; want bad_command", r)
	}
	other := fmt.Appendf(nil, `{"id":"c-4","site":%q,"kind":"invoice_status","ref":"P-1","status":"failed","reason":"late","issued_at":%q,"expires_at":%q}`,
		vectorSite, issued.Format(time.RFC3339), expires.Format(time.RFC3339))
	if r := h.result(signed(key, "k1", other)); r.Reason != ReasonInvoiceIssued {
		t.Errorf("failed after issued: %+v; want invoice_issued", r)
	}
}

// A tenant the configuration no longer has is unknown_tenant, not a
// conflict of the ref.
func TestCommands_UnknownTenant(t *testing.T) {
	h := newHarness(t, t.TempDir())
	cmd := vectorCommand("c-1", vectorSite, `"tenant":"T-999","amount":"10.00","ref":"P-1","channel":"wechat"`, vectorNow.Add(-time.Minute), vectorNow.Add(time.Hour))
	if r := h.result(signed(vectorKey(t), "k1", cmd)); r.Reason != ReasonUnknownTenant {
		t.Errorf("%+v; want unknown_tenant", r)
	}
}

func TestParseKeys(t *testing.T) {
	good := "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	for _, c := range []struct {
		name string
		keys []config.UplinkKey
		ok   bool
	}{
		{"one", []config.UplinkKey{{ID: "k1", Ed25519Public: good}}, true},
		{"no id", []config.UplinkKey{{Ed25519Public: good}}, false},
		{"twice", []config.UplinkKey{{ID: "k1", Ed25519Public: good}, {ID: "k1", Ed25519Public: good}}, false},
		{"short", []config.UplinkKey{{ID: "k1", Ed25519Public: "AAAA"}}, false},
		{"hex", []config.UplinkKey{{ID: "k1", Ed25519Public: vectorSeed}}, false},
		{"no padding", []config.UplinkKey{{ID: "k1", Ed25519Public: strings.TrimSuffix(good, "=")}}, false},
	} {
		if _, err := ParseKeys(c.keys); (err == nil) != c.ok {
			t.Errorf("%s: err = %v; want ok %v", c.name, err, c.ok)
		}
	}
}

// What came down is quoted in a refusal only so far: a field name of 10 KB
// gives a detail of at most maxDetail bytes, still UTF-8.
func TestCommands_DetailBounded(t *testing.T) {
	h := newHarness(t, t.TempDir())
	long := strings.Repeat("字", 4000)
	cmd := `{"id":"c-1","site":"riverside-plaza","kind":"topup","` + long + `":1}`
	r := h.result(signed(vectorKey(t), "k1", []byte(cmd)))
	if r.Reason != ReasonBadCommand || len(r.Detail) > maxDetail+len("…") || !utf8.ValidString(r.Detail) || !strings.Contains(r.Detail, "…") {
		t.Errorf("detail of %d bytes (%q…); want at most %d, cut on a rune", len(r.Detail), r.Detail[:min(40, len(r.Detail))], maxDetail)
	}
	if got := clipTo("ab字", 4); got != "ab…" {
		t.Errorf("clipTo = %q; want ab…", got)
	}
}

// creditThenFail credits the payment and then fails as the database
// would: the gateway stopped between the credit and the command's record.
type creditThenFail struct{ Ledger }

func (c creditThenFail) TopUp(ctx context.Context, tenant string, req web.TopUpRequest, actor string) (web.EntryView, bool, error) {
	if _, _, err := c.Ledger.TopUp(ctx, tenant, req, actor); err != nil {
		return web.EntryView{}, false, err
	}
	return web.EntryView{}, false, store.ErrUnavailable
}

// A command whose payment was credited but whose record was not kept (a
// stop between the two transactions) comes again from the broker after the
// restart: it is answered with the entry already credited, and the
// payment is credited once.
func TestCommands_StopBetweenCreditAndRecord(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.cmds.Ledger = creditThenFail{h.ledger}
	msg := signed(vectorKey(t), "k1", topUpAt("c-1", "10.00", "P-1", vectorNow))
	if err := h.cmds.Handle(context.Background(), msg); err == nil {
		t.Fatal("Handle = nil; want the error, so the broker delivers the command again")
	}
	h.restart()
	r := h.result(msg)
	if r.Status != StatusOK || r.Entry != 1 || r.Existing == nil || !*r.Existing || r.Duplicate {
		t.Errorf("after the restart: %+v; want entry 1, existing", r)
	}
	if a, err := h.db.Account("T-101"); err != nil || a.Entries != 1 || a.Balance.String() != "10.00" {
		t.Errorf("account %+v, %v; want 10.00 credited once", a, err)
	}
	if v, err := verify.Check(h.db); err != nil || len(v) != 0 {
		t.Errorf("verify = %v, %v; want clean", v, err)
	}
}

// BenchmarkCommands_Handle: one new top-up command, carried out and
// answered (two durable transactions: the credit, then the record with its
// result), on a real database file.
func BenchmarkCommands_Handle(b *testing.B) {
	h := newHarness(b, b.TempDir())
	key := vectorKey(b)
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = signed(key, "k1", topUpAt(fmt.Sprintf("c-%d", i), "1.00", fmt.Sprintf("P-%d", i), vectorNow))
	}
	b.ResetTimer()
	for _, m := range msgs {
		if err := h.cmds.Handle(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}

// A command credited but not recorded (a stop between the two
// transactions) comes again after it expired — the broker keeps it
// unacknowledged until the next connection, maybe hours — and is answered
// with the entry credited, not refused expired: the platform would refund
// a payment the tenant has.
func TestCommands_StopThenExpired(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.cmds.Ledger = creditThenFail{h.ledger}
	msg := signed(vectorKey(t), "k1", topUpAt("c-1", "10.00", "P-1", vectorNow))
	if err := h.cmds.Handle(context.Background(), msg); err == nil {
		t.Fatal("Handle = nil; want the error")
	}
	h.now = h.now.Add(61 * time.Minute)
	h.restart()
	r := h.result(msg)
	if r.Status != StatusOK || r.Entry != 1 || r.Existing == nil || !*r.Existing || r.Receipt == "" || r.Balance != "10.00" {
		t.Fatalf("redelivered after expiry: %+v; want ok, entry 1, existing", r)
	}
	if rec, seen, _ := h.db.UplinkCommand("c-1"); !seen || rec.Ref != "P-1" || rec.Tenant != "T-101" || rec.Amount != "10.00" {
		t.Errorf("c-1's record %+v (seen %v); want it, with P-1, T-101, 10.00", rec, seen)
	}
	if r := h.result(msg); r.Status != StatusOK || !r.Duplicate {
		t.Errorf("again: %+v; want the first result, duplicate", r)
	}
	if a, err := h.db.Account("T-101"); err != nil || a.Entries != 1 {
		t.Errorf("account %+v, %v; want one entry", a, err)
	}
	if v, err := verify.Check(h.db); err != nil || len(v) != 0 {
		t.Errorf("verify = %v, %v; want clean", v, err)
	}
}

// Every refusal of a trusted top-up looks its ref up first: a payment
// credited to that tenant and amount is answered ok, existing — expired,
// replayed under another command's id, or of a tenant no longer
// configured; another tenant or amount is still refused.
func TestCommands_RefusalNeverHidesCredit(t *testing.T) {
	h := newHarness(t, t.TempDir())
	key := vectorKey(t)
	if _, _, err := h.ledger.TopUp(context.Background(), "T-101", web.TopUpRequest{Amount: "10.00", Ref: "P-1", Channel: "cash"}, "till"); err != nil {
		t.Fatal(err)
	}
	if r := h.result(signed(key, "k1", topUpAt("c-1", "5.00", "P-2", vectorNow))); r.Status != StatusOK {
		t.Fatalf("c-1: %+v", r)
	}
	old := vectorNow.Add(-2 * time.Hour)
	okExisting := func(name string, r Result) {
		t.Helper()
		if r.Status != StatusOK || r.Entry != 1 || r.Existing == nil || !*r.Existing {
			t.Errorf("%s: %+v; want ok, entry 1, existing", name, r)
		}
	}
	okExisting("expired", h.result(signed(key, "k1", topUpAt("c-2", "10.00", "P-1", old))))
	okExisting("replayed id", h.result(signed(key, "k1", topUpAt("c-1", "10.00", "P-1", vectorNow))))
	if rec, _, _ := h.db.UplinkCommand("c-1"); !strings.Contains(string(rec.Result), `"entry":2`) {
		t.Errorf("c-1's record changed: %s", rec.Result)
	}
	if r := h.result(signed(key, "k1", topUpAt("c-3", "10.01", "P-1", old))); r.Reason != ReasonExpired {
		t.Errorf("another amount, expired: %+v; want refused expired", r)
	}
	other := vectorCommand("c-4", vectorSite, `"tenant":"T-102","amount":"10.00","ref":"P-1","channel":"cash"`, old.Add(-time.Minute), old.Add(time.Hour))
	if r := h.result(signed(key, "k1", other)); r.Reason != ReasonExpired {
		t.Errorf("another tenant, expired: %+v; want refused expired", r)
	}
	// The tenant taken out of the configuration after the payment.
	without := strings.NewReplacer("{id: T-101, name: Tea House}, ", "", "  - {id: M-101, bus: b, address: 1, model: kpm33b, tenant: T-101}\n", "").Replace(harnessYAML)
	cfg, err := config.Parse("t.yaml", []byte(without), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.cmds.Config = cfg
	okExisting("tenant no longer configured", h.result(signed(key, "k1", topUpAt("c-5", "10.00", "P-1", vectorNow))))
	h.cmds.Config = h.cfg
	if a, err := h.db.Account("T-101"); err != nil || a.Entries != 2 || a.Balance.String() != "15.00" {
		t.Errorf("T-101 %+v, %v; want 15.00 in 2 entries", a, err)
	}
	if v, err := verify.Check(h.db); err != nil || len(v) != 0 {
		t.Errorf("verify = %v, %v; want clean", v, err)
	}
}

// The signed text is read as people read it: a name exactly as spelled,
// once per object (the invoice's too), the bytes UTF-8. encoding/json
// alone credited 5,000.00 for "amount":"1.00",…,"amount":"5000.00", T-102
// for "tenant":"T-101","Tenant":"T-102", and took "P-\xff" and "P-\xfe"
// for one ref.
func TestCommands_ExactNames(t *testing.T) {
	h := newHarness(t, t.TempDir())
	key := vectorKey(t)
	iss, exp := vectorNow.Add(-time.Minute), vectorNow.Add(time.Hour)
	for i, extra := range []string{
		`"tenant":"T-101","amount":"1.00","ref":"P-1","channel":"wechat","amount":"5000.00"`,
		`"tenant":"T-101","Tenant":"T-102","amount":"1.00","ref":"P-2","channel":"wechat"`,
		`"TENANT":"T-101","amount":"1.00","ref":"P-3","channel":"wechat"`,
		`"tenant":"T-101","amount":"1.00","ref":"P-4","channel":"wechat","invoice":{"title":"Zhang San","Title":"Li Si","tax_id":"","email":""}`,
		`"tenant":"T-101","amount":"1.00","ref":"P-5","channel":"wechat","invoice":{"title":"Zhang San","title":"Li Si"}`,
		"\"tenant\":\"T-101\",\"amount\":\"1.00\",\"ref\":\"P-\xff\",\"channel\":\"wechat\"",
		"\"tenant\":\"T-101\",\"amount\":\"1.00\",\"ref\":\"P-\xfe\",\"channel\":\"wechat\"",
	} {
		r := h.result(signed(key, "k1", vectorCommand(fmt.Sprintf("c-%d", i), vectorSite, extra, iss, exp)))
		if r.Status != StatusRefused || r.Reason != ReasonBadCommand {
			t.Errorf("%q: %+v; want refused bad_command", extra, r)
		}
	}
	env := fmt.Appendf(nil, `{"key_id":"k1","Key_ID":"k9","payload":"e30=","sig":""}`)
	if r := h.result(env); r.Reason != ReasonBadCommand || !strings.Contains(r.Detail, "Key_ID") {
		t.Errorf("envelope Key_ID: %+v; want bad_command naming it", r)
	}
	for _, tenant := range []string{"T-101", "T-102"} {
		if a, err := h.db.Account(tenant); err == nil && a.Entries != 0 {
			t.Errorf("%s credited: %+v", tenant, a)
		}
	}
	// A good command still goes through, its invoice request with it.
	ok := vectorCommand("c-ok", vectorSite, `"tenant":"T-101","amount":"1.00","ref":"P-9","channel":"wechat","invoice":{"title":"Zhang San","tax_id":"","email":""}`, iss, exp)
	if r := h.result(signed(key, "k1", ok)); r.Status != StatusOK {
		t.Errorf("good command: %+v", r)
	}
}

// A flood of forged messages is answered one result each, but told the
// control room once a minute per key and reason, the merged ones counted
// in the next event; a trusted refusal is always an event.
func TestCommands_FloodOfForgeries(t *testing.T) {
	h := newHarness(t, t.TempDir())
	_, forger, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		evs, err := h.db.EventsAfter(0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Kind == KindCommandRefused {
				n++
			}
		}
		return n
	}
	for i := range 100 {
		r := h.result(signed(forger, "k1", topUpAt(fmt.Sprintf("f-%d", i), "10.00", "P-1", vectorNow)))
		if r.Reason != ReasonBadSignature {
			t.Fatalf("forgery %d: %+v", i, r)
		}
		h.now = h.now.Add(500 * time.Millisecond)
	}
	if n := count(); n != 1 {
		t.Errorf("%d refusal events for 100 forgeries in 50 s; want 1", n)
	}
	h.result(signed(forger, "k9", topUpAt("f-k9", "10.00", "P-1", vectorNow)))
	if n := count(); n != 2 {
		t.Errorf("an unknown key's refusal: %d events; want 2 (another reason)", n)
	}
	h.now = h.now.Add(time.Minute)
	h.result(signed(forger, "k1", topUpAt("f-next", "10.00", "P-1", vectorNow)))
	if e := h.lastEvent(); !strings.Contains(e.Args["detail"], "99 more") {
		t.Errorf("next minute's event %+v; want it to count the 99 merged", e)
	}
	expired := signed(vectorKey(t), "k1", topUpAt("e-1", "10.00", "P-2", vectorNow.Add(-3*time.Hour)))
	expired2 := signed(vectorKey(t), "k1", topUpAt("e-2", "10.00", "P-3", vectorNow.Add(-3*time.Hour)))
	h.result(expired)
	h.result(expired2)
	if n := count(); n != 5 {
		t.Errorf("%d events; want 5: trusted refusals are each an event", n)
	}
}

// A refusal reaches the control room's open pages through Events (the
// live hub): a subscriber hears of it at once.
func TestCommands_RefusalReachesHub(t *testing.T) {
	h := newHarness(t, t.TempDir())
	hub := live.NewHub(h.db, h.cfg)
	h.cmds.Events = hub
	ch, cancel := hub.Subscribe()
	defer cancel()
	h.result(signed(vectorKey(t), "k9", topUpAt("c-1", "10.00", "P-1", vectorNow)))
	select {
	case ev := <-ch:
		if ev.Kind != KindCommandRefused {
			t.Errorf("heard %+v; want %s", ev, KindCommandRefused)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event reached the hub's subscriber")
	}
}
