package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

func TestLink_SignVerify(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	l := Link{Tenant: "T-101", Month: "2026-11", Expires: now.Add(time.Hour)}
	token, err := SignLink(key, l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyLink(key, token, now)
	if err != nil || got.Tenant != "T-101" || got.Month != "2026-11" || !got.Expires.Equal(l.Expires) {
		t.Fatalf("valid: %+v, %v", got, err)
	}
	if _, err := VerifyLink(key, token, l.Expires); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("at its expiry: %v; want ErrLinkExpired", err)
	}
	// Another tenant's link made by changing the payload: the MAC no
	// longer matches.
	payload, mac, _ := strings.Cut(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	other := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte("T-101"), []byte("T-102"), 1))
	later := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte("s1\x00T-101\x002026-11\x001"), []byte("s1\x00T-101\x002026-11\x009"), 1))
	flipped := []byte(mac)
	flipped[3] ^= 1
	for name, bad := range map[string]string{
		"another tenant":        other + "." + mac,
		"a later expiry":        later + "." + mac,
		"a changed MAC":         payload + "." + string(flipped),
		"no MAC":                payload,
		"a cut MAC":             payload + "." + mac[:20],
		"empty":                 "",
		"signed by another key": mustSign(t, bytes.Repeat([]byte{8}, 32), l),
	} {
		if _, err := VerifyLink(key, bad, now); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("%s: %v; want ErrLinkInvalid", name, err)
		}
	}
	// Expired and altered is altered: the MAC is judged first.
	if _, err := VerifyLink(key, other+"."+mac, l.Expires.Add(time.Hour)); !errors.Is(err, ErrLinkInvalid) {
		t.Errorf("altered and expired: %v; want ErrLinkInvalid", err)
	}
}

func mustSign(t *testing.T, key []byte, l Link) string {
	t.Helper()
	s, err := SignLink(key, l)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stmtService(t *testing.T, now *atomic.Pointer[time.Time]) (*Statements, *store.DB) {
	t.Helper()
	// T-103 has no ledger: it gets no statement.
	cfg := stmtConfig(t, t.TempDir(), "  - {id: T-103, name: Not Yet Open}\n")
	db := stmtOpen(t, cfg)
	writeStmtHistory(t, db)
	r, err := NewStatementRenderer(cfg.Location)
	if err != nil {
		t.Fatal(err)
	}
	return &Statements{DB: db, Config: cfg, Renderer: r, Now: func() time.Time { return *now.Load() }, Log: zerolog.Nop()}, db
}

func setNow(p *atomic.Pointer[time.Time], t time.Time) { p.Store(&t) }

func TestStatements_IssueDue_Once(t *testing.T) {
	var now atomic.Pointer[time.Time]
	loc := stmtZone(t)
	setNow(&now, time.Date(2026, 12, 1, 0, 30, 0, 0, loc)) // November ended, but not IssueDelay ago
	svc, db := stmtService(t, &now)
	n, err := svc.IssueDue(context.Background(), *now.Load())
	if err != nil {
		t.Fatal(err)
	}
	// October's is due for T-101 (its ledger starts on October 20th), none
	// for T-102 (its starts in November); November's not yet.
	if months, _ := db.StatementMonths("T-101"); n != 1 || len(months) != 1 || months[0] != "2026-10" {
		t.Fatalf("issued %d, T-101's months %v; want T-101's October", n, months)
	}
	setNow(&now, time.Date(2026, 12, 1, 1, 0, 0, 0, loc))
	if n, err = svc.IssueDue(context.Background(), *now.Load()); err != nil || n != 2 {
		t.Fatalf("at 01:00: issued %d, %v; want November's two", n, err)
	}
	first, err := db.Statement("T-101", "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	// A later entry dated in November (a late posting) does not change the
	// statement issued, and issuing again (a restart) stores nothing.
	if _, err := db.PostEntry(store.Entry{Time: time.Date(2026, 11, 30, 12, 0, 0, 0, loc), Account: "T-101", Kind: store.Adjustment,
		Amount: billing.Yuan, Actor: "books", Note: "late"}); err != nil {
		t.Fatal(err)
	}
	setNow(&now, time.Date(2026, 12, 15, 0, 0, 0, 0, loc))
	if n, err = svc.IssueDue(context.Background(), *now.Load()); err != nil || n != 0 {
		t.Fatalf("again: issued %d, %v; want none", n, err)
	}
	again, _ := db.Statement("T-101", "2026-11")
	if !bytes.Equal(again.Figures, first.Figures) || !again.Generated.Equal(first.Generated) {
		t.Error("the issued statement changed")
	}
}

// After downtime the gateway issues every month it missed.
func TestStatements_IssueDue_AfterDowntime(t *testing.T) {
	var now atomic.Pointer[time.Time]
	setNow(&now, time.Date(2027, 2, 10, 0, 0, 0, 0, stmtZone(t)))
	svc, db := stmtService(t, &now)
	n, err := svc.IssueDue(context.Background(), *now.Load())
	if err != nil {
		t.Fatal(err)
	}
	months, _ := db.StatementMonths("T-102")
	if n != 7 || strings.Join(months, " ") != "2026-11 2026-12 2027-01" {
		t.Errorf("issued %d; T-102's months %v; want October to January for T-101, November on for T-102", n, months)
	}
	if months, _ := db.StatementMonths("T-103"); len(months) != 0 {
		t.Errorf("T-103, without a ledger: %v", months)
	}
	// All from one pass; only the last month leaves Later for the next to
	// start from, but each says what it read (Through), for the late lines.
	dec, _ := svc.issued("T-101", "2026-12")
	last, _ := svc.issued("T-101", "2027-01")
	if dec.Statement.Through != last.Statement.Through || dec.Statement.Later != nil || !dec.Statement.LaterOmitted ||
		last.Statement.Through == 0 || last.Statement.LaterOmitted {
		t.Errorf("through: December %d (later %v, omitted %v), January %d (omitted %v); want both the ledger's last id, December's Later omitted",
			dec.Statement.Through, dec.Statement.Later, dec.Statement.LaterOmitted, last.Statement.Through, last.Statement.LaterOmitted)
	}
	jan, err := svc.issued("T-101", "2027-01")
	if err != nil || jan.Statement.Opening != jan.Statement.Closing || jan.Statement.Opening == 0 {
		t.Errorf("January, a month without entries: %+v, %v; want the balance carried", jan.Statement.Totals, err)
	}
}

// A cancelled context stops the build: a shutdown does not wait for a
// ledger of years to be read.
func TestStatements_IssueDue_Cancelled(t *testing.T) {
	var now atomic.Pointer[time.Time]
	setNow(&now, time.Date(2026, 12, 3, 0, 0, 0, 0, stmtZone(t)))
	svc, db := stmtService(t, &now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := svc.IssueDue(ctx, *now.Load()); !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("issued %d, %v; want none, context.Canceled", n, err)
	}
	if months, _ := db.StatementMonths("T-101"); len(months) != 0 {
		t.Errorf("stored %v", months)
	}
}

func TestStatements_Run_IssuesAndStops(t *testing.T) {
	var now atomic.Pointer[time.Time]
	setNow(&now, time.Date(2026, 12, 3, 0, 0, 0, 0, stmtZone(t)))
	svc, db := stmtService(t, &now)
	var ready atomic.Bool
	svc.Ready = ready.Load
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	// Nothing before the buses have cycled (StartDelay is an hour): their
	// first cycles post the charges held over the stop.
	time.Sleep(1500 * time.Millisecond)
	if ok, _ := db.HasStatement("T-102", "2026-11"); ok {
		t.Fatal("issued before the buses cycled")
	}
	ready.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, _ := db.HasStatement("T-102", "2026-11"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run issued nothing in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v; want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// Cancelled while it waits to start: it returns at once.
	ready.Store(false)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- svc.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v; want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel in its start delay")
	}
	// A bus that never cycles holds it up StartDelay at most.
	svc, db = stmtService(t, &now)
	svc.Ready, svc.StartDelay = func() bool { return false }, 300*time.Millisecond
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- svc.Run(ctx) }()
	deadline = time.Now().Add(5 * time.Second)
	for ok := false; !ok; ok, _ = db.HasStatement("T-102", "2026-11") {
		if time.Now().After(deadline) {
			t.Fatal("Run issued nothing in 5 s with StartDelay 300 ms")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// An entry dated in a month already issued — a charge dated by its reading
// at 23:59:59.9 committed after November's statements were issued (a
// restart: the pipeline posts the open charge at its first cycle) — is on
// December's statement as a late line, and December opens with November's
// closing: whether December is issued from November's statement (the month
// after) or in the whole-ledger pass (after downtime, with January).
func TestStatements_LateEntry_ChainHolds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		issue time.Time // when December is issued
	}{{"from November's", time.Date(2027, 1, 1, 2, 0, 0, 0, stmtZone(t))},
		{"after downtime", time.Date(2027, 2, 10, 0, 0, 0, 0, stmtZone(t))}} {
		t.Run(tc.name, func(t *testing.T) {
			loc := stmtZone(t)
			var now atomic.Pointer[time.Time]
			setNow(&now, time.Date(2026, 12, 1, 2, 0, 0, 0, loc))
			svc, db := stmtService(t, &now)
			if _, err := svc.IssueDue(context.Background(), *now.Load()); err != nil {
				t.Fatal(err)
			}
			nov, err := svc.issued("T-101", "2026-11")
			if err != nil {
				t.Fatal(err)
			}
			read := time.Date(2026, 11, 30, 23, 59, 59, 900_000_000, loc)
			from := read.Add(-store.IntervalLength)
			late := store.Entry{Time: read, Account: "T-101", Kind: store.Charge, Amount: -yuan(t, "1.23"), Meter: "M-101", Wh: 1500,
				From: &from, To: &read, Window: "valley", Actor: "gateway"}
			if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{late}}); err != nil {
				t.Fatal(err)
			}
			setNow(&now, tc.issue)
			if _, err := svc.IssueDue(context.Background(), tc.issue); err != nil {
				t.Fatal(err)
			}
			dec, err := svc.issued("T-101", "2026-12")
			if err != nil {
				t.Fatal(err)
			}
			d := dec.Statement
			if d.Opening != nov.Statement.Closing {
				t.Errorf("December opens with %s; November closed with %s", d.Opening, nov.Statement.Closing)
			}
			if len(d.Late) != 1 || d.Late[0].Amount != late.Amount || !d.Late[0].Time.Equal(read) || d.Totals.Late != late.Amount {
				t.Errorf("December's late lines %+v (total %s); want the charge of %s dated %s", d.Late, d.Totals.Late, late.Amount, read)
			}
			if err := d.Reconcile(); err != nil {
				t.Error(err)
			}
			// What the ledger holds now (whole: dated before January) is
			// December's closing: the entry counted once.
			whole, err := BuildStatement(db, svc.Config, "T-101", "2027-01")
			if err != nil {
				t.Fatal(err)
			}
			if whole.Opening != d.Closing {
				t.Errorf("December closes with %s; the ledger's balance at January is %s", d.Closing, whole.Opening)
			}
			for _, lang := range []i18n.Lang{i18n.En, i18n.ZhCN} {
				var buf bytes.Buffer
				if err := svc.Renderer.HTML(&buf, dec, lang); err != nil {
					t.Fatal(err)
				}
				if want := svc.Renderer.lateNote(lang, d.Late[0]); !strings.Contains(buf.String(), want) {
					t.Errorf("%s: the page does not say %q", lang, want)
				}
			}
		})
	}
}

// A statement whose opening is not the closing of the one before is not
// issued (the others are), and is logged.
func TestStatements_IssueDue_RefusesBrokenChain(t *testing.T) {
	loc := stmtZone(t)
	for _, tc := range []struct {
		name  string
		forge func(*Statement)
	}{
		// Closing a yuan off what its own lines add up to: December, from
		// it, would open with that yuan.
		{"closing off its lines", func(s *Statement) { s.Closing += billing.Yuan }},
		// Adding up, but a yuan off the ledger (a line no entry holds):
		// December, read from the ledger (Later omitted), opens without it.
		{"off the ledger", func(s *Statement) {
			s.Closing += billing.Yuan
			s.Totals.Corrections += billing.Yuan
			s.Corrections = append(s.Corrections, StatementLine{ID: 999, Kind: store.Adjustment, Amount: billing.Yuan})
			s.Later, s.LaterOmitted = nil, true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var now atomic.Pointer[time.Time]
			setNow(&now, time.Date(2026, 12, 1, 2, 0, 0, 0, loc))
			svc, db := stmtService(t, &now)
			// November's statement of T-101 as an older gateway, or a
			// damaged file, might have left it.
			nov, err := BuildStatement(db, svc.Config, "T-101", "2026-11")
			if err != nil {
				t.Fatal(err)
			}
			tc.forge(&nov)
			figures, _ := json.Marshal(nov)
			if _, _, err := db.PutStatement(store.StoredStatement{Tenant: "T-101", Month: "2026-11", Generated: *now.Load(), Figures: figures}); err != nil {
				t.Fatal(err)
			}
			var refused []string
			svc.onRefused = func(st Statement) { refused = append(refused, st.Tenant+" "+st.Month) }
			// December and January missing (downtime): January is not
			// issued after a refused December either.
			setNow(&now, time.Date(2027, 2, 1, 2, 0, 0, 0, loc))
			if _, err := svc.IssueDue(context.Background(), *now.Load()); err != nil {
				t.Fatal(err)
			}
			if has, _ := db.HasStatement("T-101", "2026-12"); has || strings.Join(refused, ",") != "T-101 2026-12" {
				t.Errorf("T-101's December stored %v, refused %v; want refused", has, refused)
			}
			if has, _ := db.HasStatement("T-101", "2027-01"); has {
				t.Error("T-101's January was issued after its December was refused")
			}
			for _, m := range []string{"2026-12", "2027-01"} {
				if has, _ := db.HasStatement("T-102", m); !has {
					t.Errorf("T-102's %s was not issued", m)
				}
			}
		})
	}
}

func TestStatements_ListAndShared(t *testing.T) {
	var now atomic.Pointer[time.Time]
	loc := stmtZone(t)
	setNow(&now, time.Date(2026, 12, 2, 0, 0, 0, 0, loc))
	svc, _ := stmtService(t, &now)
	if _, err := svc.IssueDue(context.Background(), *now.Load()); err != nil {
		t.Fatal(err)
	}
	list, err := svc.List("T-101")
	if err != nil || len(list) != 2 || list[0].Month != "2026-11" || list[0].Closing != "771.037" {
		t.Fatalf("list %+v, %v; want November then October, November closing 771.037", list, err)
	}
	token := strings.TrimPrefix(list[0].Link, "/s/")
	doc, err := svc.Shared(token, "html", i18n.En)
	if err != nil || !bytes.Contains(doc.Body, []byte("Noodle House")) || doc.CSP != StatementCSP {
		t.Fatalf("shared: %v", err)
	}
	pdf, err := svc.Shared(token, "pdf", i18n.ZhCN)
	if err != nil || !bytes.HasPrefix(pdf.Body, []byte("%PDF-")) || pdf.ContentType != "application/pdf" {
		t.Fatalf("shared PDF: %v", err)
	}
	// An issued statement's PDF is drawn once: opened again it is the
	// same file, and nothing is drawn (without a renderer it would panic).
	renderer := svc.Renderer
	svc.Renderer = nil
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("the PDF was drawn again: %v", r)
			}
		}()
		again, err := svc.Shared(token, "pdf", i18n.ZhCN)
		if err != nil || !bytes.Equal(again.Body, pdf.Body) {
			t.Errorf("the PDF again: %v, same %v", err, bytes.Equal(again.Body, pdf.Body))
		}
	}()
	svc.Renderer = renderer
	setNow(&now, list[0].LinkExpires)
	if _, err := svc.Shared(token, "html", i18n.En); !errors.Is(err, web.ErrLinkExpired) {
		t.Errorf("expired: %v; want web.ErrLinkExpired", err)
	}
	if _, err := svc.List("T-999"); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
	// A month not issued yet is a preview for staff, never for a link.
	setNow(&now, time.Date(2026, 12, 20, 0, 0, 0, 0, loc))
	dec, err := svc.Statement("T-101", "2026-12", "html", i18n.En)
	if err != nil || !bytes.Contains(dec.Body, []byte("Not issued yet")) {
		t.Errorf("December for staff: %v", err)
	}
	key, _ := svc.DB.StatementKey()
	decToken := mustSign(t, key, Link{Tenant: "T-101", Month: "2026-12", Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, loc)})
	if _, err := svc.Shared(decToken, "html", i18n.En); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("a link to a month not issued: %v; want ErrNotFound", err)
	}
	if _, err := svc.Statement("T-101", "2027-01", "html", i18n.En); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("a month not begun: %v; want ErrInvalid", err)
	}
}

// A gateway down for longer than issueCatchUp months issues the last
// twelve, not the whole history.
func TestStatements_IssueDue_CatchUpBounded(t *testing.T) {
	var now atomic.Pointer[time.Time]
	setNow(&now, time.Date(2028, 6, 10, 0, 0, 0, 0, stmtZone(t)))
	svc, db := stmtService(t, &now)
	if _, err := svc.IssueDue(context.Background(), *now.Load()); err != nil {
		t.Fatal(err)
	}
	months, _ := db.StatementMonths("T-101")
	if len(months) != issueCatchUp || months[0] != "2027-06" || months[len(months)-1] != "2028-05" {
		t.Errorf("T-101's months %v; want 2027-06 to 2028-05", months)
	}
}

// countingStore counts the whole-ledger passes.
type countingStore struct {
	*store.DB
	whole, tails int
}

func (c *countingStore) EachEntry(fn func(store.Entry) error) error {
	c.whole++
	return c.DB.EachEntry(fn)
}

func (c *countingStore) EachEntryAfter(after uint64, fn func(store.Entry) error) error {
	c.tails++
	return c.DB.EachEntryAfter(after, fn)
}

// Each month after the first is issued from the statement before and the
// entries since — and gives what the whole ledger gives (with the late
// lines: where the statement before read to), whatever the entries' times:
// late ones dated in a month already issued (a late line each, and the
// opening the closing before), early ones dated in a month not yet begun,
// reversals of older months' entries.
func TestStatements_IssueNext_SameAsWhole(t *testing.T) {
	loc := stmtZone(t)
	cfg := stmtConfig(t, t.TempDir(), "  - {id: T-103, name: Late Comer}\n")
	db := stmtOpen(t, cfg)
	r, err := NewStatementRenderer(cfg.Location)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{DB: db}
	var clock time.Time
	svc := &Statements{DB: cs, Config: cfg, Renderer: r, Now: func() time.Time { return clock }, Log: zerolog.Nop()}
	rng := rand.New(rand.NewPCG(7, 14))
	tenants := []string{"T-101", "T-102", "T-103"}
	meters := map[string]string{"T-101": "M-101", "T-102": "M-102", "T-103": ""}
	var posted []store.Entry
	issuedAt := map[statementKey]uint64{} // the last entry id when a statement was issued
	ref := 0
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, loc)
	for month := range 6 {
		from := start.AddDate(0, month, 0)
		for range 40 {
			tenant := tenants[rng.IntN(len(tenants))]
			if tenant == "T-103" && month < 3 {
				continue // trades from September
			}
			// Mostly this month; some dated back into the month before
			// (issued already), some a few days into the next.
			when := from.Add(time.Duration(rng.Int64N(int64(31 * 24 * time.Hour))))
			switch rng.IntN(10) {
			case 0:
				when = from.Add(-time.Duration(rng.Int64N(int64(20 * 24 * time.Hour))))
			case 1:
				when = from.AddDate(0, 1, 0).Add(time.Duration(rng.Int64N(int64(3 * 24 * time.Hour))))
			}
			var e store.Entry
			switch k := rng.IntN(6); {
			case k < 2:
				ref++
				e, _, err = db.PostTopUp(store.Entry{Time: when, Account: tenant, Amount: billing.Money(rng.Int64N(500)+1) * billing.Yuan,
					Channel: "cash", Ref: fmt.Sprint("P-", ref), Actor: "till"})
			case k < 4 && meters[tenant] != "":
				f := when.Add(-store.IntervalLength)
				c := store.Entry{Time: when, Account: tenant, Kind: store.Charge, Amount: -billing.Money(rng.Int64N(5_000_000) + 1), Meter: meters[tenant],
					Wh: rng.Int64N(5000), From: &f, To: &when, Window: []string{"peak", "flat", "valley"}[rng.IntN(3)], Actor: "gateway"}
				if _, err = db.CommitCycle(store.Cycle{Charges: []store.Entry{c}, Energy: []store.IntervalEnergy{{Meter: c.Meter, Time: f, Wh: c.Wh}}}); err == nil {
					var es []store.Entry
					es, err = db.Entries(tenant, 0, 1)
					e = es[0]
				}
			case k == 4 && len(posted) > 0:
				old := posted[rng.IntN(len(posted))]
				if old.Kind == store.Reversal {
					continue
				}
				ref++
				e, _, err = db.PostCorrection(store.Entry{Time: when, Account: old.Account, Kind: store.Reversal, Reverses: old.ID,
					Ref: fmt.Sprint("C-", ref), Actor: "books", Note: "test"})
				if errors.Is(err, store.ErrReversed) {
					continue
				}
			default:
				e, err = db.PostEntry(store.Entry{Time: when, Account: tenant, Kind: store.Adjustment, Amount: billing.Money(rng.Int64N(2_000_000) - 1_000_000),
					Actor: "books", Note: "adjust"})
			}
			if err != nil {
				t.Fatal(err)
			}
			posted = append(posted, e)
		}
		// The month ends; its statements are issued.
		clock = from.AddDate(0, 1, 0).Add(IssueDelay)
		if _, err := svc.IssueDue(context.Background(), clock); err != nil {
			t.Fatalf("%s: %v", from.Format("2006-01"), err)
		}
		monthName, prevName := from.Format("2006-01"), from.AddDate(0, -1, 0).Format("2006-01")
		var last uint64
		for _, e := range posted {
			last = max(last, e.ID)
		}
		for _, tenant := range tenants {
			for m := start; m.Before(clock); m = m.AddDate(0, 1, 0) {
				k := statementKey{tenant, m.Format("2006-01")}
				if _, ok := issuedAt[k]; !ok {
					if has, _ := db.HasStatement(k.tenant, k.month); has {
						issuedAt[k] = last
					}
				}
			}
		}
		// The whole ledger's statements, given where each tenant's
		// statement before read to.
		lateAfter := map[statementKey]uint64{}
		prevs := map[string]Statement{}
		for _, tenant := range tenants {
			if p, err := svc.issued(tenant, prevName); err == nil {
				lateAfter[statementKey{tenant, monthName}] = p.Statement.Through
				prevs[tenant] = p.Statement
			}
		}
		built, err := buildMonths(context.Background(), db, cfg, []string{monthName}, lateAfter)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range built[0] {
			is, err := svc.issued(w.Tenant, monthName)
			if errors.Is(err, store.ErrNoStatement) && w.Tenant == "T-103" && month < 3 {
				continue
			}
			if err != nil {
				t.Fatalf("%s %s: %v", w.Tenant, monthName, err)
			}
			got := is.Statement
			// The chain, against a model of the ledger: the opening is
			// the closing before; the late lines are the tenant's entries
			// posted since that statement, dated before the month; the
			// closing is Σ of the entries dated before the month's end
			// posted by the time it was issued.
			var wantLate []uint64
			var wantClosing billing.Money
			p, chained := prevs[w.Tenant]
			for _, e := range posted {
				if e.Account != w.Tenant {
					continue
				}
				if e.Time.Before(got.To) {
					wantClosing += e.Amount
				}
				if chained && e.ID > issuedAt[statementKey{w.Tenant, prevName}] && e.Time.Before(got.From) {
					wantLate = append(wantLate, e.ID)
				}
			}
			var gotLate []uint64
			for _, l := range got.Late {
				gotLate = append(gotLate, l.ID)
			}
			if chained && got.Opening != p.Closing {
				t.Errorf("%s %s opens with %s; %s closed with %s", w.Tenant, monthName, got.Opening, prevName, p.Closing)
			}
			if fmt.Sprint(gotLate) != fmt.Sprint(wantLate) || got.Closing != wantClosing {
				t.Errorf("%s %s: late %v, closing %s; want late %v, closing %s", w.Tenant, monthName, gotLate, got.Closing, wantLate, wantClosing)
			}
			got.Through, w.Through = 0, 0
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(w)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s %s from the month before:\n%s\nfrom the whole ledger:\n%s", w.Tenant, monthName, a, b)
			}
		}
	}
	// The whole ledger was read once for the first month (and once for
	// T-103's first); every other month from the tail.
	if cs.whole != 2 || cs.tails != 5 {
		t.Errorf("whole-ledger passes %d, tail passes %d; want 2 and 5", cs.whole, cs.tails)
	}
}
