package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/store"
)

// stmtYAML is a small mall in Shanghai: two tenants with a meter each
// (one with two), one public meter.
const stmtYAML = `site: {name: Harbour Mall, timezone: Asia/Shanghai}
buses: [{name: b, port: /dev/ttyUSB0}]
meters:
  - {id: M-101, bus: b, address: 1, model: kpm33b, tenant: T-101}
  - {id: M-101B, bus: b, address: 2, model: kpm33b, tenant: T-101}
  - {id: M-102, bus: b, address: 3, model: kpm33b, tenant: T-102}
  - {id: M-PUB, bus: b, address: 5, model: kpm33b, role: public}
tenants:
  - {id: T-101, name: Noodle House, category: restaurant, area_m2: 120}
  - {id: T-102, name: "书店 Books", category: retail, area_m2: 80}
`

func stmtZone(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func stmtConfig(t testing.TB, dir, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("mall.yaml", []byte(stmtYAML+extra+"storage: {path: "+filepath.Join(dir, "m.db")+"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func stmtOpen(t testing.TB, cfg *config.Config) *store.DB {
	t.Helper()
	db, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// stmtHistory is what the statement tests post: T-101's October (the
// opening balance), November and a December entry, and T-102's November.
type stmtHistory struct {
	lastOctober, lastNovember store.Entry // T-101's
	reversed                  store.Entry
}

func writeStmtHistory(t testing.TB, db *store.DB) stmtHistory {
	t.Helper()
	loc := stmtZone(t)
	at := func(m time.Month, d, h, min int) time.Time { return time.Date(2026, m, d, h, min, 0, 0, loc) }
	var h stmtHistory
	topUp := func(when time.Time, acct, amount, channel, ref, note string) store.Entry {
		t.Helper()
		e, _, err := db.PostTopUp(store.Entry{Time: when, Account: acct, Amount: yuan(t, amount), Channel: channel, Actor: "till", Ref: ref, Note: note})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	charge := func(when time.Time, acct, meter string, wh int64, window, amount string) store.Entry {
		t.Helper()
		from := when.Add(-15 * time.Minute)
		c := store.Entry{Time: when, Account: acct, Kind: store.Charge, Amount: -yuan(t, amount), Meter: meter, Wh: wh,
			From: &from, To: &when, Window: window, Actor: "gateway"}
		if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{c},
			Energy: []store.IntervalEnergy{{Meter: meter, Time: from, Wh: wh}}}); err != nil {
			t.Fatal(err)
		}
		es, err := db.Entries(acct, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		return es[0]
	}
	post := func(e store.Entry) store.Entry {
		t.Helper()
		var s store.Entry
		var err error
		if e.Ref != "" && e.Kind != store.Allocation { // kept once by its reference
			s, _, err = db.PostCorrection(e)
		} else {
			s, err = db.PostEntry(e)
		}
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	topUp(at(10, 20, 9, 0), "T-101", "500.00", "cash", "C-1020", "")
	h.lastOctober = charge(at(10, 31, 23, 45), "T-101", "M-101", 10_000, "peak", "8.50")

	charge(at(11, 1, 0, 15), "T-101", "M-101", 2_500, "valley", "0.78")
	topUp(at(11, 1, 9, 30), "T-101", "300.00", "wechat", "WX-4200000001", "paid at the counter, 2nd floor")
	charge(at(11, 2, 10, 0), "T-101", "M-101", 12_345, "peak", "10.493")
	charge(at(11, 2, 14, 15), "T-101", "M-101B", 3_001, "flat", "1.85")
	h.reversed = charge(at(11, 4, 3, 0), "T-101", "M-101", 9_000, "valley", "2.79")
	post(store.Entry{Time: at(11, 15, 9, 0), Account: "T-101", Kind: store.Adjustment, Amount: yuan(t, "5.00"),
		Ref: "ADJ-1", Actor: "books", Note: "meter M-101 swapped: 6.02 kWh billed twice"})
	post(store.Entry{Time: at(11, 20, 14, 0), Account: "T-101", Kind: store.Reversal, Amount: yuan(t, "2.79"),
		Reverses: h.reversed.ID, Ref: "REV-1", Actor: "books", Note: "the night test: wrong circuit"})
	allocFrom, allocTo := at(11, 1, 0, 0), at(12, 1, 0, 0)
	h.lastNovember = post(store.Entry{Time: at(11, 30, 23, 59), Account: "T-101", Kind: store.Allocation, Amount: -yuan(t, "12.34"), Wh: 14_517,
		From: &allocFrom, To: &allocTo, Actor: "gateway", Note: "corridors: area 120 of 200 m² (60.00 %)"})
	charge(at(12, 1, 0, 0), "T-101", "M-101", 1_000, "valley", "0.31") // December's: not November's
	post(store.Entry{Time: at(12, 5, 10, 0), Account: "T-101", Kind: store.Reversal, Amount: yuan(t, "8.50"),
		Reverses: h.lastOctober.ID, Ref: "REV-2", Actor: "books", Note: "October's last slot was a test load"})

	topUp(at(11, 3, 11, 0), "T-102", "100.00", "alipay", "ALI-1", "")
	charge(at(11, 3, 12, 0), "T-102", "M-102", 4_000, "peak", "3.40")
	return h
}

func TestStatement_Figures(t *testing.T) {
	cfg := stmtConfig(t, t.TempDir(), "")
	db := stmtOpen(t, cfg)
	h := writeStmtHistory(t, db)
	s, err := BuildStatement(db, cfg, "T-101", "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reconcile(); err != nil {
		t.Fatal(err)
	}
	// The ledger's own running balance agrees: the opening is the balance
	// after October's last entry, the closing after November's.
	if s.Opening != h.lastOctober.Balance || s.Closing != h.lastNovember.Balance {
		t.Errorf("opening %s, closing %s; want %s and %s (the ledger's balances)", s.Opening, s.Closing, h.lastOctober.Balance, h.lastNovember.Balance)
	}
	want := map[string]billing.Money{
		"opening": yuan(t, "491.50"), "topups": yuan(t, "300.00"), "charges": -yuan(t, "15.913"),
		"allocations": -yuan(t, "12.34"), "corrections": yuan(t, "7.79"), "closing": yuan(t, "771.037"),
	}
	got := map[string]billing.Money{"opening": s.Opening, "topups": s.Totals.TopUps, "charges": s.Totals.Charges,
		"allocations": s.Totals.Allocations, "corrections": s.Totals.Corrections, "closing": s.Closing}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %s; want %s", k, got[k], w)
		}
	}
	if len(s.Days) != 30 || s.Days[0].Date != "2026-11-01" || s.Days[29].Date != "2026-11-30" {
		t.Fatalf("days %d, %s..%s; want the 30 days of November", len(s.Days), s.Days[0].Date, s.Days[len(s.Days)-1].Date)
	}
	// Both meters' energy, by the day its slot starts in (the site's day,
	// not UTC's: 00:15 on the 1st is October 31st in UTC).
	day := func(d int) StatementDay { return s.Days[d-1] }
	if day(1).Wh != 2_500 || day(2).Wh != 12_345+3_001 || day(4).Wh != 9_000 || day(3).Wh != 0 {
		t.Errorf("energy by day 1..4 = %d %d %d %d; want 2500 15346 0 9000", day(1).Wh, day(2).Wh, day(3).Wh, day(4).Wh)
	}
	if day(2).Charge != -yuan(t, "12.343") {
		t.Errorf("charges on the 2nd = %s; want -12.343", day(2).Charge)
	}
	// The slot of 23:45 on the 30th is November's energy, billed by a
	// charge of December's first minute.
	if s.Totals.Wh != 2_500+12_345+3_001+9_000+1_000 || s.Totals.ChargedWh != 2_500+12_345+3_001+9_000 || day(30).Wh != 1_000 {
		t.Errorf("energy %d Wh (the 30th %d), charged %d Wh; want 27846 (1000), 26846", s.Totals.Wh, day(30).Wh, s.Totals.ChargedWh)
	}
	windows := map[string]StatementWindow{}
	for _, w := range s.Windows {
		windows[w.Window] = w
	}
	if w := windows["valley"]; w.Wh != 11_500 || w.Charge != -yuan(t, "3.57") {
		t.Errorf("valley %+v; want 11500 Wh, -3.57", w)
	}
	if len(s.TopUps) != 1 || s.TopUps[0].Note != "paid at the counter, 2nd floor" || s.TopUps[0].Receipt == 0 ||
		s.TopUps[0].ReceiptNo != store.ReceiptNumber(s.TopUps[0].Receipt) {
		t.Errorf("top-ups %+v; want the one of November with its note and receipt number", s.TopUps)
	}
	if len(s.Corrections) != 2 || s.Corrections[1].ReversesKind != store.Charge || s.Corrections[1].Reverses != h.reversed.ID {
		t.Errorf("corrections %+v; want the adjustment, then the reversal of a charge", s.Corrections)
	}
	if len(s.Allocations) != 1 || s.Allocations[0].Wh != 14_517 {
		t.Errorf("allocations %+v; want the corridors' share", s.Allocations)
	}

	// December's opening is November's closing: consecutive statements chain.
	dec, err := BuildStatement(db, cfg, "T-101", "2026-12")
	if err != nil {
		t.Fatal(err)
	}
	if dec.Opening != s.Closing || dec.Totals.Charges != -yuan(t, "0.31") {
		t.Errorf("December: opening %s, charges %s; want %s and -0.31", dec.Opening, dec.Totals.Charges, s.Closing)
	}
	// A reversal of an entry of an earlier month says what it reverses,
	// though the loader kept none of that month's entries.
	decAll, err := BuildStatements(db, cfg, "2026-12")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Statement{dec, decAll[0]} {
		if len(d.Corrections) != 1 || d.Corrections[0].ReversesKind != store.Charge || d.Corrections[0].Reverses != h.lastOctober.ID {
			t.Errorf("December's corrections %+v; want the reversal of October's charge, with its kind", d.Corrections)
		}
	}
	// All tenants at once give the same statements as one by one.
	all, err := BuildStatements(db, cfg, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	// Through differs by design: the whole ledger's highest id against the
	// tenant's own.
	if all[0].Through < s.Through {
		t.Errorf("through %d, below the tenant's own %d", all[0].Through, s.Through)
	}
	t101 := all[0]
	t101.Through = s.Through
	one, _ := json.Marshal(s)
	many, _ := json.Marshal(t101)
	if len(all) != 2 || !bytes.Equal(one, many) {
		t.Errorf("BuildStatements' T-101 differs from BuildStatement's:\n%s\n%s", many, one)
	}
	if err := all[1].Reconcile(); err != nil || all[1].Closing != yuan(t, "96.60") {
		t.Errorf("T-102: closing %s, %v; want 96.60, reconciled", all[1].Closing, err)
	}
}

// The same entries in any order give the same statement: the loaders
// stream them newest first (one tenant's index) or in id order (the
// whole ledger).
func TestComputeStatement_AnyOrder(t *testing.T) {
	cfg := stmtConfig(t, t.TempDir(), "")
	db := stmtOpen(t, cfg)
	writeStmtHistory(t, db)
	var entries []store.Entry
	if err := db.EachEntry(func(e store.Entry) error {
		if e.Account == "T-101" {
			entries = append(entries, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	in, err := statementInput(cfg, "T-101", "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	in.Entries, in.Intervals = entries, map[string][]store.Interval{}
	for _, m := range in.Meters {
		if in.Intervals[m], err = db.Intervals(m, in.From, in.To); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := json.Marshal(ComputeStatement(in))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		if got, _ := json.Marshal(ComputeStatement(in)); !bytes.Equal(got, want) {
			t.Fatalf("another order, another statement:\n%s\n%s", got, want)
		}
	}
	if built, err := BuildStatement(db, cfg, "T-101", "2026-11"); err != nil {
		t.Fatal(err)
	} else if got, _ := json.Marshal(built); !bytes.Equal(got, want) {
		t.Errorf("BuildStatement differs from ComputeStatement over the whole ledger:\n%s\n%s", got, want)
	}
}

// Reconcile must catch figures that do not add up, or the check in the
// figures test proves nothing.
func TestStatement_Reconcile_Broken(t *testing.T) {
	cfg := stmtConfig(t, t.TempDir(), "")
	db := stmtOpen(t, cfg)
	writeStmtHistory(t, db)
	s, err := BuildStatement(db, cfg, "T-101", "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	for name, break_ := range map[string]func(*Statement){
		"closing":    func(s *Statement) { s.Closing += billing.Fen },
		"a day":      func(s *Statement) { s.Days[3].Charge -= billing.MicroYuan },
		"a window":   func(s *Statement) { s.Windows[0].Charge += billing.Fen },
		"a top-up":   func(s *Statement) { s.TopUps[0].Amount += billing.Yuan },
		"day energy": func(s *Statement) { s.Days[0].Wh++ },
	} {
		b := s
		b.Days = append([]StatementDay(nil), s.Days...)
		b.Windows = append([]StatementWindow(nil), s.Windows...)
		b.TopUps = append([]StatementLine(nil), s.TopUps...)
		break_(&b)
		if b.Reconcile() == nil {
			t.Errorf("%s changed: Reconcile found nothing", name)
		}
	}
}

func TestStatementMonth(t *testing.T) {
	loc := stmtZone(t)
	from, to, err := StatementMonth("2026-02", loc)
	if err != nil || !from.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, loc)) || !to.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, loc)) {
		t.Errorf("2026-02: %v..%v %v", from, to, err)
	}
	for _, bad := range []string{"", "2026-13", "2026-1", "26-11", "2026-11-01"} {
		if _, _, err := StatementMonth(bad, loc); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func stmtIssue(t testing.TB, tenant string) (Issue, *StatementRenderer) {
	cfg := stmtConfig(t, t.TempDir(), "")
	db := stmtOpen(t, cfg)
	writeStmtHistory(t, db)
	s, err := BuildStatement(db, cfg, tenant, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewStatementRenderer(cfg.Location)
	if err != nil {
		t.Fatal(err)
	}
	return Issue{Statement: s, Generated: time.Date(2026, 12, 1, 1, 0, 0, 0, cfg.Location), Issued: true}, r
}

func TestStatement_HTML(t *testing.T) {
	is, r := stmtIssue(t, "T-101")
	for _, c := range []struct {
		lang i18n.Lang
		want []string
	}{
		{i18n.En, []string{`lang="en"`, "Opening balance", "¥491.50", "Closing balance", "¥771.04", "Public-area shares",
			"corridors: area 120 of 200 m² (60.00 %)", "Reverses Electricity charge, entry", "the night test: wrong circuit",
			"paid at the counter, 2nd floor", "R00000002", "WeChat Pay", "Consumption by tariff window", "Valley", "<svg", "2026-11-30",
			"rounded to the fen (¥0.01), each on its own"}},
		{i18n.ZhCN, []string{`lang="zh-CN"`, "期初余额", "期末余额", "公摊费用", "¥771.04", "corridors: area 120 of 200 m² (60.00 %)",
			"冲正电费", "分时段用电", "<svg", "微信", "金额各自四舍五入到分"}},
	} {
		var buf bytes.Buffer
		if err := r.HTML(&buf, is, c.lang); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		for _, w := range c.want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: the page lacks %q", c.lang, w)
			}
		}
		if strings.Contains(page, "<script") || strings.Contains(page, "statement.") {
			t.Errorf("%s: a script or a message id on the page", c.lang)
		}
		// The browser applies the style sheet only if its text hashes to
		// the one the CSP names (checked in chromium once; this keeps it so).
		_, css, _ := strings.Cut(page, "<style>")
		css, _, _ = strings.Cut(css, "</style>")
		sum := sha256.Sum256([]byte(css))
		if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(StatementCSP, want) || len(css) < 100 {
			t.Errorf("%s: the page's style sheet hashes to %s; the CSP is %s", c.lang, want, StatementCSP)
		}
	}
	if err := i18n.CheckTemplates(statementAssets, "assets/*.tmpl"); err != nil {
		t.Error(err)
	}
}

// utf16be is how fpdf writes text in the embedded (Identity-H) font.
func utf16be(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

func TestStatement_PDF(t *testing.T) {
	is, r := stmtIssue(t, "T-102")
	for _, lang := range i18n.Langs() {
		var buf bytes.Buffer
		if err := r.PDF(&buf, is, lang, PDFOptions{NoCompression: true}); err != nil {
			t.Fatal(err)
		}
		pdf := buf.Bytes()
		if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf[len(pdf)-64:], []byte("%%EOF")) {
			t.Fatalf("%s: not a whole PDF", lang)
		}
		// The name is 书店 Books: the Chinese in the embedded font, the
		// Latin in Helvetica, both in the text layer.
		if !bytes.Contains(pdf, utf16be("书店")) || !bytes.Contains(pdf, []byte(`Books \(T-102\)`)) {
			t.Errorf("%s: the tenant's name is not in the text", lang)
		}
		if !bytes.Contains(pdf, []byte("/FontFile2")) {
			t.Errorf("%s: the CJK font is not embedded", lang)
		}
	}
	// What a tenant's name or a note may hold must not stop the PDF:
	// emoji beyond the 16-bit plane, control characters, letters neither
	// font has.
	odd := is
	odd.Statement.Name = "Café ☕ Łódź 🍜 \x00\x1b \u200b"
	odd.Statement.TopUps = []StatementLine{{ID: 1, Kind: store.TopUp, Amount: billing.Yuan, Note: "付了 🎉 ≈ ∑ ‰\r\nsecond line"}}
	for _, lang := range i18n.Langs() {
		var buf bytes.Buffer
		if err := r.PDF(&buf, odd, lang, PDFOptions{NoCompression: true}); err != nil {
			t.Fatalf("%s: odd text: %v", lang, err)
		}
		if !bytes.Contains(buf.Bytes(), []byte("Caf\xe9 ")) { // cp1252, as Helvetica is set
			t.Errorf("%s: the name's Latin part is not in the text", lang)
		}
	}
	var zh bytes.Buffer
	if err := r.PDF(&zh, is, i18n.ZhCN, PDFOptions{NoCompression: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(zh.Bytes(), utf16be("期初余额")) {
		t.Error("zh-CN: 期初余额 is not in the text")
	}
	// Each figure is rounded to the fen on its own: the statement says so.
	if !bytes.Contains(zh.Bytes(), utf16be("金额各自")) || !bytes.Contains(zh.Bytes(), utf16be("微元")) { // 舍 holds a \r byte, escaped in the stream
		t.Error("zh-CN: the note on rounding is not in the text")
	}
	var en bytes.Buffer
	if err := r.PDF(&en, is, i18n.En, PDFOptions{NoCompression: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(en.Bytes(), []byte("rounded to the fen")) {
		t.Error("en: the note on rounding is not in the text")
	}
}

// A tenant's name and notes of any length stay on the page: a name of 300
// characters wraps (it ran off the right edge), a note taller than a page
// is cut with an ellipsis (its row ran over the footer and off the
// bottom), and no text is drawn past the margins.
func TestStatement_PDF_LongText(t *testing.T) {
	is, r := stmtIssue(t, "T-101")
	var words []string
	for i := 0; len(strings.Join(words, " ")) < 300; i++ {
		words = append(words, fmt.Sprintf("Name%03d", i))
	}
	long := is
	long.Statement.Name = strings.Join(words, " ")
	note := strings.Repeat("note ", 60) // 300 characters
	huge := strings.Repeat("a very long payment note ", 400)
	long.Statement.TopUps = append(slices.Clone(long.Statement.TopUps),
		StatementLine{ID: 90, Kind: store.TopUp, Amount: billing.Yuan, Note: note, Ref: strings.Repeat("R", 300)},
		StatementLine{ID: 91, Kind: store.TopUp, Amount: billing.Yuan, Note: huge})
	long.Statement.Totals.TopUps += 2 * billing.Yuan
	long.Statement.Corrections = append(slices.Clone(long.Statement.Corrections),
		StatementLine{ID: 92, Kind: store.Adjustment, Amount: billing.Yuan, Note: "长备注" + strings.Repeat("这是一条很长的调整说明。", 600)})
	long.Statement.Totals.Corrections += billing.Yuan
	late := StatementLine{ID: 93, Time: long.Statement.From.Add(-time.Second), Kind: store.Charge, Amount: -billing.Yuan, Meter: "M-101", Wh: 1200}
	long.Statement.Late = []StatementLine{late}
	long.Statement.Totals.Late = late.Amount
	long.Statement.Closing = long.Statement.Opening + long.Statement.Movement()
	if err := long.Statement.Reconcile(); err != nil {
		t.Fatal(err)
	}
	const pageH, bottom = 297.0, 297.0 - 18
	for _, lang := range i18n.Langs() {
		var drawn []drawnText
		var buf bytes.Buffer
		if err := r.PDF(&buf, long, lang, PDFOptions{NoCompression: true, onText: func(d drawnText) { drawn = append(drawn, d) }}); err != nil {
			t.Fatal(err)
		}
		pdf := buf.Bytes()
		for _, w := range words {
			if !bytes.Contains(pdf, []byte(w)) {
				t.Errorf("%s: %s of the name is not in the text", lang, w)
			}
		}
		ellipses, lateNoted := 0, false
		for _, d := range drawn {
			lateNoted = lateNoted || d.text == r.lateNote(lang, late)
			if d.x < pdfLeft-0.01 || d.x+d.w > pdfLeft+pdfWidth+0.01 {
				t.Errorf("%s: page %d: %.1f mm wide from x %.1f, past the side margins: %.40q", lang, d.page, d.w, d.x, d.text)
			}
			if !d.footer && d.y+d.h > bottom+0.01 {
				t.Errorf("%s: page %d: text down to %.1f mm, past the bottom margin (%.0f): %.40q", lang, d.page, d.y+d.h, bottom, d.text)
			}
			if d.footer && (d.y < bottom || d.y+d.h > pageH) {
				t.Errorf("%s: page %d: the footer at %.1f mm", lang, d.page, d.y)
			}
			if strings.HasSuffix(d.text, "…") {
				ellipses++
			}
		}
		if !lateNoted {
			t.Errorf("%s: the late line is not drawn as such (%q)", lang, r.lateNote(lang, late))
		}
		if ellipses != 2 {
			t.Errorf("%s: %d cells cut with an ellipsis; want the two notes taller than a page", lang, ellipses)
		}
	}
}
