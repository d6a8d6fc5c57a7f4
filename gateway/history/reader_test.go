package history

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// fixture is a site in Shanghai (+08:00) with meter M-1 of tenant T-1, a
// real database, and a web server answering from a Reader over it.
type fixture struct {
	t   *testing.T
	db  *store.DB
	cfg *config.Config
	srv *httptest.Server
}

// day0 is 2026-11-27 00:00 in Shanghai.
var (
	shanghai = mustZone("Asia/Shanghai")
	day0     = time.Date(2026, 11, 27, 0, 0, 0, 0, shanghai)
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	src := "site: {name: x, timezone: Asia/Shanghai}\nstorage: {path: " + filepath.Join(dir, "h.db") + "}\n" +
		"buses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters: [{id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}]\n" +
		"tenants: [{id: T-1, name: Noodles}]\n" +
		"http: {tokens: [{name: v, role: viewer, sha256: " + viewerHash + "}]}\n"
	cfg, err := config.Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := web.New(staticSource{}, web.Options{Log: zerolog.Nop(), History: &Reader{DB: db, Config: cfg},
		Tokens: []web.Token{{Name: "v", Role: web.RoleViewer, SHA256: viewerHash}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, db: db, cfg: cfg, srv: srv}
}

// viewerHash is the SHA-256 of "secret".
const viewerHash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"

type staticSource struct{}

func (staticSource) Status() web.StatusView  { return web.StatusView{} }
func (staticSource) Meters() []web.MeterView { return nil }

func (f *fixture) commit(c store.Cycle) {
	f.t.Helper()
	if _, err := f.db.CommitCycle(c); err != nil {
		f.t.Fatal(err)
	}
}

// get asks the API as the viewer and decodes a 200 answer into into; it
// returns the status and the body.
func (f *fixture) get(path string, into any) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			f.t.Fatalf("%s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

// tenMinutes stores M-1's samples of 10:00..10:09 (site time): power
// 1000 + 10·m W (±5), the counter 17 Wh a minute from 1,000 Wh; 10:07's
// counter was not read.
func (f *fixture) tenMinutes() {
	var c store.Cycle
	for m := 0; m < 10; m++ {
		w := int64(1000 + 10*m)
		s := store.Sample{Meter: "M-1", Minute: day0.Add(10*time.Hour + time.Duration(m)*time.Minute), Readings: 6, AvgW: w, MinW: w - 5, MaxW: w + 5,
			ImportWh: 1000 + 17*int64(m)}
		if m == 7 {
			s.ImportWh = store.UnknownWh
		}
		c.Samples = append(c.Samples, s)
	}
	f.commit(c)
}

type point struct {
	T    time.Time `json:"t"`
	AvgW *int64    `json:"avg_w"`
	MinW *int64    `json:"min_w"`
	MaxW *int64    `json:"max_w"`
	KWh  *string   `json:"kwh"`
}

type history struct {
	Meter  string    `json:"meter"`
	From   time.Time `json:"from"`
	Step   string    `json:"step"`
	Points []point   `json:"points"`
}

func (f *fixture) history(meter, from, to, step string) history {
	f.t.Helper()
	var h history
	path := "/api/v1/meters/" + meter + "/history?from=" + strings.ReplaceAll(from, "+", "%2B") + "&to=" + strings.ReplaceAll(to, "+", "%2B") + "&step=" + step
	if code, body := f.get(path, &h); code != http.StatusOK {
		f.t.Fatalf("GET %s = %d %s", path, code, body)
	}
	return h
}

func str(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

func num(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestMeterHistory_Minutes(t *testing.T) {
	f := newFixture(t)
	f.tenMinutes()
	h := f.history("M-1", "2026-11-27T10:01:00+08:00", "2026-11-27T10:09:00+08:00", "1m")
	if len(h.Points) != 8 || h.Step != "1m" || h.Meter != "M-1" {
		t.Fatalf("%d points, step %s, meter %s; want 8 of 1m for M-1", len(h.Points), h.Step, h.Meter)
	}
	// Energy is the counter's rise from the minute before; 10:07 has no
	// counter, so neither it nor 10:08 (which rises from it) has energy.
	wantKWh := []string{"0.017", "0.017", "0.017", "0.017", "0.017", "0.017", "null", "null"}
	for i, p := range h.Points {
		m := i + 1
		if _, off := p.T.Zone(); off != 8*3600 || !p.T.Equal(day0.Add(10*time.Hour+time.Duration(m)*time.Minute)) {
			t.Errorf("point %d at %v; want 10:%02d+08:00", i, p.T, m)
		}
		if w := int64(1000 + 10*m); num(p.AvgW) != w || num(p.MinW) != w-5 || num(p.MaxW) != w+5 {
			t.Errorf("10:%02d power %v/%v/%v; want %d ±5", m, num(p.AvgW), num(p.MinW), num(p.MaxW), w)
		}
		if str(p.KWh) != wantKWh[i] {
			t.Errorf("10:%02d kwh %s; want %s", m, str(p.KWh), wantKWh[i])
		}
	}
}

func TestMeterHistory_FiveMinutes(t *testing.T) {
	f := newFixture(t)
	f.tenMinutes()
	// from is not on a step: the first point is the step holding it.
	h := f.history("M-1", "2026-11-27T09:57:30+08:00", "2026-11-27T10:10:00+08:00", "5m")
	if len(h.Points) != 3 || !h.From.Equal(day0.Add(9*time.Hour+55*time.Minute)) {
		t.Fatalf("points %+v from %v; want 3 from 09:55", h.Points, h.From)
	}
	empty, first, second := h.Points[0], h.Points[1], h.Points[2]
	if empty.AvgW != nil || empty.KWh != nil {
		t.Errorf("09:55 with no samples = %v W, %s kWh; want nulls", num(empty.AvgW), str(empty.KWh))
	}
	// 10:00..10:04: mean 1020, least 995, greatest 1045; no counter before it.
	if num(first.AvgW) != int64(1020) || num(first.MinW) != int64(995) || num(first.MaxW) != int64(1045) || first.KWh != nil {
		t.Errorf("10:00 = %v/%v/%v W, %s kWh; want 1020/995/1045, null", num(first.AvgW), num(first.MinW), num(first.MaxW), str(first.KWh))
	}
	// 10:09's counter (1,153) less 10:04's (1,068).
	if str(second.KWh) != "0.085" || num(second.AvgW) != int64(1070) {
		t.Errorf("10:05 = %v W, %s kWh; want 1070, 0.085", num(second.AvgW), str(second.KWh))
	}
}

// Steps of 15 minutes and more take their energy from the interval energy
// billing accepted; a day is the site's day, not UTC's.
func TestMeterHistory_HoursAndDaysFromIntervals(t *testing.T) {
	f := newFixture(t)
	at := func(h, m int) time.Time { return day0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	f.commit(store.Cycle{Energy: []store.IntervalEnergy{
		{Meter: "M-1", Time: at(10, 0), Wh: 5}, {Meter: "M-1", Time: at(10, 15), Wh: 7}, {Meter: "M-1", Time: at(10, 45), Wh: 11},
		{Meter: "M-1", Time: at(23, 45), Wh: 1000}, // the site's day 27, UTC's 27 too
		{Meter: "M-1", Time: at(24, 0), Wh: 2000},  // the site's day 28, UTC's 27 still
	}})
	h := f.history("M-1", "2026-11-27T09:00:00+08:00", "2026-11-27T12:00:00+08:00", "1h")
	if got := []string{str(h.Points[0].KWh), str(h.Points[1].KWh), str(h.Points[2].KWh)}; strings.Join(got, " ") != "null 0.023 null" {
		t.Errorf("hours 09, 10, 11 = %v; want null 0.023 null", got)
	}
	q := f.history("M-1", "2026-11-27T10:00:00+08:00", "2026-11-27T11:00:00+08:00", "15m")
	if got := []string{str(q.Points[0].KWh), str(q.Points[1].KWh), str(q.Points[2].KWh), str(q.Points[3].KWh)}; strings.Join(got, " ") != "0.005 0.007 null 0.011" {
		t.Errorf("quarters = %v; want 0.005 0.007 null 0.011", got)
	}
	d := f.history("M-1", "2026-11-27T00:00:00+08:00", "2026-11-29T00:00:00+08:00", "1d")
	if len(d.Points) != 2 || str(d.Points[0].KWh) != "1.023" || str(d.Points[1].KWh) != "2.000" || !d.Points[1].T.Equal(at(24, 0)) {
		t.Errorf("days = %+v; want 1.023 on the 27th and 2.000 on the 28th (site time)", d.Points)
	}
}

func TestMeterHistory_Unknown(t *testing.T) {
	f := newFixture(t)
	// A meter gone from the configuration keeps its samples, and its chart.
	f.commit(store.Cycle{Samples: []store.Sample{{Meter: "M-OLD", Minute: day0, ImportWh: 5}}})
	q := "/history?from=2026-11-27T00:00:00Z&to=2026-11-27T01:00:00Z&step=1h"
	if code, body := f.get("/api/v1/meters/M-OLD"+q, nil); code != http.StatusOK {
		t.Errorf("a removed meter with samples = %d %s; want 200", code, body)
	}
	if code, body := f.get("/api/v1/meters/M-NONE"+q, nil); code != http.StatusNotFound || !strings.Contains(body, "M-NONE") {
		t.Errorf("an unknown meter = %d %s; want 404 naming it", code, body)
	}
	// A configured meter with nothing stored yet has a chart of nulls.
	var h history
	if code, body := f.get("/api/v1/meters/M-1"+q, &h); code != http.StatusOK || len(h.Points) != 1 || h.Points[0].AvgW != nil {
		t.Errorf("a meter with no data = %d %s; want one null point", code, body)
	}
}

func TestUsage_ByDayAndWindow(t *testing.T) {
	f := newFixture(t)
	charge := func(from time.Time, window string, wh int64, fen int64) store.Entry {
		to := from.Add(10 * time.Minute)
		return store.Entry{Time: to, Account: "T-1", Kind: store.Charge, Amount: -billing.Money(fen) * billing.Fen, Meter: "M-1",
			Wh: wh, From: &from, To: &to, Window: window}
	}
	at := func(d, h, m int) time.Time {
		return day0.AddDate(0, 0, d).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	if _, _, err := f.db.PostTopUp(store.Entry{Account: "T-1", Amount: 500 * billing.Yuan, Ref: "PAY-1", Time: at(0, 9, 0)}); err != nil {
		t.Fatal(err)
	}
	f.commit(store.Cycle{Charges: []store.Entry{
		charge(at(0, 10, 0), "peak", 1000, 120),
		charge(at(0, 2, 0), "valley", 500, 20),
		charge(at(0, 23, 50), "peak", 100, 12), // 15:50 UTC: the site's 27th
		charge(at(1, 9, 0), "flat", 300, 26),
		charge(at(2, 9, 0), "flat", 999, 99), // after to
	}})
	var u web.UsageView
	if code, body := f.get("/api/v1/accounts/T-1/usage?from=2026-11-27T00:00:00%2B08:00&to=2026-11-29T00:00:00%2B08:00&step=day", &u); code != http.StatusOK {
		t.Fatalf("usage = %d %s", code, body)
	}
	if len(u.Days) != 2 || u.Days[0].Date != "2026-11-27" || u.Days[1].Date != "2026-11-28" || !u.Days[1].T.Equal(at(1, 0, 0)) {
		t.Fatalf("days %+v; want the 27th and the 28th", u.Days)
	}
	d0 := u.Days[0]
	if d0.KWh != "1.600" || d0.Amount != "1.52" || len(d0.Windows) != 2 ||
		d0.Windows[0] != (web.UsageWindow{Window: "peak", KWh: "1.100", Amount: "1.32"}) ||
		d0.Windows[1] != (web.UsageWindow{Window: "valley", KWh: "0.500", Amount: "0.20"}) {
		t.Errorf("the 27th = %+v; want 1.600 kWh, 1.52: peak 1.100/1.32, valley 0.500/0.20", d0)
	}
	if d1 := u.Days[1]; d1.KWh != "0.300" || d1.Amount != "0.26" || len(d1.Windows) != 1 {
		t.Errorf("the 28th = %+v; want flat 0.300, 0.26", d1)
	}
	if u.Total.KWh != "1.900" || u.Total.Amount != "1.78" {
		t.Errorf("total = %+v; want 1.900 kWh, 1.78", u.Total)
	}
	// A day with no charges is there, at zero.
	var empty web.UsageView
	f.get("/api/v1/accounts/T-1/usage?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02T00:00:00%2B08:00", &empty)
	if len(empty.Days) != 1 || empty.Days[0].KWh != "0.000" || empty.Days[0].Amount != "0.00" || empty.Days[0].Windows == nil {
		t.Errorf("a day without charges = %+v; want 0.000 kWh, 0.00, no windows", empty.Days)
	}
	if code, _ := f.get("/api/v1/accounts/T-NONE/usage?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", nil); code != http.StatusNotFound {
		t.Errorf("an unknown tenant = %d; want 404", code)
	}
}

// Entries are read a page at a time: a ledger longer than a page is read
// whole.
func TestUsage_ManyPages(t *testing.T) {
	f := newFixture(t)
	var c store.Cycle
	for i := 0; i < usagePage*2+7; i++ {
		from := day0.Add(time.Duration(i) * 10 * time.Second)
		to := from.Add(10 * time.Second)
		c.Charges = append(c.Charges, store.Entry{Time: to, Account: "T-GONE", Kind: store.Charge, Amount: -billing.Fen, Wh: 1, From: &from, To: &to, Window: "flat"})
	}
	f.commit(c)
	// T-GONE is not configured: an archived tenant's usage is still read.
	var u web.UsageView
	if code, body := f.get("/api/v1/accounts/T-GONE/usage?from=2026-11-27T00:00:00%2B08:00&to=2026-11-28T00:00:00%2B08:00", &u); code != http.StatusOK {
		t.Fatalf("usage = %d %s", code, body)
	}
	if u.Total.KWh != "2.007" || u.Total.Amount != "20.07" {
		t.Errorf("total of %d charges = %+v; want 2.007 kWh, 20.07", usagePage*2+7, u.Total)
	}
}

func TestReader_StepsLimit(t *testing.T) {
	f := newFixture(t)
	r := &Reader{DB: f.db, Config: f.cfg}
	_, err := r.MeterHistory("M-1", day0, day0.Add(2001*time.Minute), web.StepMinute)
	if !errors.Is(err, web.ErrInvalid) {
		t.Errorf("2,001 minutes = %v; want ErrInvalid", err)
	}
	if _, err := r.MeterHistory("M-1", day0, day0.Add(2000*time.Minute), web.StepMinute); err != nil {
		t.Errorf("2,000 minutes = %v; want an answer", err)
	}
	// Days are the site's: 2,000 of them from its midnight are answered;
	// from a minute before, they are 2,001, refused with a 400.
	end := day0.AddDate(0, 0, 2000).Format(time.RFC3339)
	path := func(from time.Time) string {
		return "/api/v1/accounts/T-1/usage?from=" + strings.ReplaceAll(from.Format(time.RFC3339), "+", "%2B") + "&to=" + strings.ReplaceAll(end, "+", "%2B")
	}
	var u web.UsageView
	if code, body := f.get(path(day0), &u); code != http.StatusOK || len(u.Days) != 2000 {
		t.Errorf("2,000 days = %d, %d days; want 200 with 2,000 (%.200s)", code, len(u.Days), body)
	}
	if code, body := f.get(path(day0.Add(-time.Minute)), nil); code != http.StatusBadRequest || !strings.Contains(body, "2000") {
		t.Errorf("2,001 days = %d %s; want 400 naming the limit", code, body)
	}
}

func TestPruner_KeepsRecentSamples(t *testing.T) {
	f := newFixture(t)
	var c store.Cycle
	for h := 0; h < 48; h++ {
		c.Samples = append(c.Samples, store.Sample{Meter: "M-1", Minute: day0.Add(time.Duration(h) * time.Hour), ImportWh: int64(h)})
	}
	f.commit(c)
	now := day0.Add(48 * time.Hour)
	p := &Pruner{DB: f.db, Keep: 24 * time.Hour, Now: func() time.Time { return now }, Log: zerolog.Nop(), Batch: 5, Pause: time.Millisecond}
	n, err := p.Prune(context.Background())
	if err != nil || n != 24 {
		t.Errorf("Prune = %d, %v; want the 24 hours of the first day", n, err)
	}
	left, err := f.db.Samples("M-1", day0, now)
	if err != nil {
		t.Fatal(err)
	}
	// Keep 0 (a configuration never validated) is not "keep nothing".
	p.Keep = 0
	if n, err := p.Prune(context.Background()); n != 0 || err != nil {
		t.Errorf("Prune with Keep 0 = %d, %v; want nothing deleted", n, err)
	}
	if len(left) != 24 || !left[0].Minute.Equal(day0.Add(24*time.Hour)) {
		t.Errorf("%d samples left, first %v; want 24 from the second day", len(left), left[0].Minute)
	}
}

// Run prunes at once and returns when its context ends, also in the
// middle of a long prune.
func TestPruner_RunStopsOnCancel(t *testing.T) {
	f := newFixture(t)
	var c store.Cycle
	for h := 0; h < 50; h++ {
		c.Samples = append(c.Samples, store.Sample{Meter: "M-1", Minute: day0.Add(time.Duration(h) * time.Hour), ImportWh: int64(h)})
	}
	f.commit(c)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pruner{DB: f.db, Keep: time.Hour, Now: func() time.Time { return day0.Add(100 * time.Hour) }, Log: zerolog.Nop(), Batch: 1, Pause: time.Hour}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// The first batch goes at once; the next waits an hour, so cancel ends it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, err := f.db.Samples("M-1", day0, day0.Add(100*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 49 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d samples left after 5 s; want the first batch pruned", len(left))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of its context's end")
	}
}

// The ledger is read back only to a little before the range: older pages
// are left alone, and a charge committed long after the energy it bills
// (a meter back after days offline) is still counted on the day it was
// used.
func TestUsage_StopsBeforeOldLedger(t *testing.T) {
	f := newFixture(t)
	var c store.Cycle
	old := day0.AddDate(0, 0, -30)
	for i := 0; i < usagePage*3; i++ { // a month before: three pages, never in range
		from := old.Add(time.Duration(i) * 10 * time.Second)
		to := from.Add(10 * time.Second)
		c.Charges = append(c.Charges, store.Entry{Time: to, Account: "T-GONE", Kind: store.Charge, Amount: -billing.Fen, Wh: 1, From: &from, To: &to, Window: "flat"})
	}
	f.commit(c)
	from := day0.Add(time.Hour)
	to := from.Add(time.Hour)
	late := day0.AddDate(0, 0, 5) // committed five days later
	f.commit(store.Cycle{Charges: []store.Entry{{Time: late, Account: "T-GONE", Kind: store.Charge, Amount: -5 * billing.Yuan, Wh: 4_000,
		From: &from, To: &to, Window: "peak"}}})
	var u web.UsageView
	if code, body := f.get("/api/v1/accounts/T-GONE/usage?from=2026-11-27T00:00:00%2B08:00&to=2026-11-28T00:00:00%2B08:00", &u); code != http.StatusOK {
		t.Fatalf("usage = %d %s", code, body)
	}
	if u.Total.KWh != "4.000" || u.Total.Amount != "5.00" {
		t.Errorf("total = %+v; want the late charge's 4.000 kWh, 5.00, and none of the month before", u.Total)
	}
}

// A chart of 90 days by the day sums 129,600 one-minute samples as they are
// read: it holds an hour of them at a time, not all. Holding them all, with
// the slice's growth, allocated about 80 MB; summing them as read, each
// hour decoded and dropped, about 24.
func TestMeterHistory_LongRangeInLittleMemory(t *testing.T) {
	f := newFixture(t)
	start := day0.AddDate(0, 0, -90)
	for d := range 90 {
		var c store.Cycle
		for m := range 1440 {
			c.Samples = append(c.Samples, store.Sample{Meter: "M-1", Minute: start.AddDate(0, 0, d).Add(time.Duration(m) * time.Minute),
				Readings: 6, AvgW: 1000 + int64(m%7), MinW: 900, MaxW: 1100, ImportWh: int64(d*1440+m) * 17})
		}
		f.commit(c)
	}
	r := &Reader{DB: f.db, Config: f.cfg}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := r.MeterHistory("M-1", start, day0, web.StepDay)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Points) != 90 || v.Points[0].AvgW == nil || *v.Points[0].MaxW != 1100 || *v.Points[89].MinW != 900 {
		t.Fatalf("90 days by the day = %d points, first %+v; want 90 with power", len(v.Points), v.Points[0])
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 40<<20 {
		t.Errorf("a 90-day chart allocated %d MB; want it summed as read, under 40 MB", got>>20)
	}
}
