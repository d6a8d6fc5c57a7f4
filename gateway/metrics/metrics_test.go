package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/store"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func openDB(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "m.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func topUp(t testing.TB, db *store.DB, account, ref string, amount billing.Money) {
	t.Helper()
	if _, _, err := db.PostTopUp(store.Entry{Time: t0, Account: account, Kind: store.TopUp, Amount: amount, Ref: ref, Channel: "cash", Actor: "token:till"}); err != nil {
		t.Fatal(err)
	}
}

func charge(t testing.TB, db *store.DB, account, meter string, amount billing.Money, wh int64) {
	t.Helper()
	if _, err := db.CommitCycle(store.Cycle{Charges: []store.Entry{{Time: t0, Account: account, Kind: store.Charge, Amount: -amount, Meter: meter, Wh: wh}}}); err != nil {
		t.Fatal(err)
	}
}

// scrape GETs /metrics from m's handler over a real HTTP server and parses
// the text as Prometheus would.
func scrape(t testing.TB, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return fams
}

// value is the sample of family name whose labels include want ("k=v"
// pairs), or -1 with ok false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return -1, false
	}
next:
	for _, m := range f.GetMetric() {
		have := make(map[string]string)
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return -1, false
}

func expect(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	if got, ok := value(fams, name, labels...); !ok || got != want {
		t.Errorf("%s%v = %v (found %v); want %v", name, labels, got, ok, want)
	}
}

// source is a generation's meters whose counts a test sets.
type source struct {
	mu     sync.Mutex
	meters []Meter
}

func (s *source) set(ms ...Meter) {
	s.mu.Lock()
	s.meters = ms
	s.mu.Unlock()
}

func (s *source) get() []Meter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Meter(nil), s.meters...)
}

// A scrape reports every family from what was observed, the attached
// meters and the database.
func TestMetrics_Scrape(t *testing.T) {
	db := openDB(t)
	topUp(t, db, "T-1", "OLD-1", 500*billing.Yuan) // before New: not counted
	m := New(Options{DB: db, Version: "1.2.3", Now: func() time.Time { return t0.Add(time.Minute) }, Log: zerolog.Nop()})
	topUp(t, db, "T-1", "PAY-1", 100*billing.Yuan)
	topUp(t, db, "T-2", "PAY-2", 50*billing.Yuan+25*billing.Fen)
	charge(t, db, "T-1", "M-1", 12*billing.Yuan+34*billing.Fen, 1_234)
	if _, err := db.PostEvents(store.Event{Time: t0, Kind: "meter_offline", Meter: "M-2", Tenant: "T-2", Bus: "b"},
		store.Event{Time: t0, Kind: "overload", Meter: "M-1", Tenant: "T-1", Args: map[string]string{"severity": store.SeverityCritical}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnqueueUplink([]store.UplinkMessage{{Kind: "heartbeat", Time: t0, Data: []byte(`{}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	src := &source{}
	src.set(
		Meter{ID: "M-1", Tenant: "T-1", Bus: "a", Online: true, LastSeen: t0, Requests: 40, Errors: map[string]int64{"crc": 1}},
		Meter{ID: "M-3", Bus: "a", Online: true, LastSeen: t0.Add(-time.Second), Requests: 2},
		Meter{ID: "M-2", Tenant: "T-2", Bus: "b", Requests: 7, Errors: map[string]int64{"timeout": 7, "timeout_retried": 3}},
	)
	m.Attach(Sources{Meters: src.get, Uplink: true})
	m.CycleDone("a", 800*time.Millisecond)
	m.CycleDone("a", 1200*time.Millisecond)
	m.Committed(3 * time.Millisecond)
	m.RelayCommand(false, nil)
	m.RelayCommand(true, errors.New("no answer"))

	fams := scrape(t, m)
	expect(t, fams, 42, "mallgrid_bus_transactions_total", "bus=a")
	expect(t, fams, 7, "mallgrid_bus_transactions_total", "bus=b")
	expect(t, fams, 1, "mallgrid_bus_errors_total", "bus=a", "kind=crc")
	expect(t, fams, 0, "mallgrid_bus_errors_total", "bus=a", "kind=timeout")
	expect(t, fams, 7, "mallgrid_bus_errors_total", "bus=b", "kind=timeout")
	expect(t, fams, 3, "mallgrid_bus_errors_total", "bus=b", "kind=timeout_retried")
	expect(t, fams, 1, "mallgrid_meter_online", "meter=M-1", "tenant=T-1", "bus=a")
	expect(t, fams, 0, "mallgrid_meter_online", "meter=M-2", "tenant=T-2", "bus=b")
	expect(t, fams, float64(t0.Unix()), "mallgrid_meter_last_seen_timestamp_seconds", "meter=M-1")
	if v, ok := value(fams, "mallgrid_meter_last_seen_timestamp_seconds", "meter=M-2"); ok {
		t.Errorf("last seen of a meter never heard = %v; want no sample", v)
	}
	expect(t, fams, 2, "mallgrid_bus_cycle_seconds", "bus=a")
	expect(t, fams, 1, "mallgrid_pipeline_commit_seconds")
	expect(t, fams, 1, "mallgrid_relay_commands_total", "action=cut", "result=ok")
	expect(t, fams, 1, "mallgrid_relay_commands_total", "action=restore", "result=failed")
	expect(t, fams, 0, "mallgrid_relay_commands_total", "action=restore", "result=ok")
	expect(t, fams, 1, "mallgrid_alarms_open", "kind=meter_offline", "severity=warning", "state=active")
	expect(t, fams, 1, "mallgrid_alarms_open", "kind=overload", "severity=critical", "state=active")
	expect(t, fams, 0, "mallgrid_alarms_open", "kind=bus_down", "state=active")
	expect(t, fams, 0, "mallgrid_notify_outbox_messages", "state=pending")
	expect(t, fams, 1, "mallgrid_uplink_outbox_messages")
	expect(t, fams, 60, "mallgrid_uplink_outbox_oldest_age_seconds")
	// T-1: 500 + 100 − 12.34; T-2: 50.25.
	expect(t, fams, 637.91, "mallgrid_ledger_balance_yuan")
	expect(t, fams, 2, "mallgrid_ledger_accounts")
	expect(t, fams, 150.25, "mallgrid_ledger_credited_yuan_total", "kind=topup")
	expect(t, fams, 12.34, "mallgrid_ledger_debited_yuan_total", "kind=charge")
	expect(t, fams, 0, "mallgrid_ledger_debited_yuan_total", "kind=allocation")
	expect(t, fams, 1_234, "mallgrid_ledger_charged_wh_total")
	expect(t, fams, 1, "mallgrid_build_info", "version=1.2.3")
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go and process collectors are not registered", name)
		}
	}

	// Later entries are added to the tallies at the next scrape.
	topUp(t, db, "T-2", "PAY-3", 10*billing.Yuan)
	expect(t, scrape(t, m), 160.25, "mallgrid_ledger_credited_yuan_total", "kind=topup")
}

// A backlog of ledger entries larger than a scrape reads is counted over
// the next scrapes, each entry once.
func TestMetrics_LedgerCatchesUp(t *testing.T) {
	db := openDB(t)
	m := New(Options{DB: db, Log: zerolog.Nop()})
	m.scrape.ledger.limit = 2
	for i := range 5 {
		topUp(t, db, "T-1", fmt.Sprintf("PAY-%d", i), 10*billing.Yuan)
	}
	for _, want := range []float64{20, 40, 50, 50} {
		expect(t, scrape(t, m), want, "mallgrid_ledger_credited_yuan_total", "kind=topup")
	}
}

// The uplink's figures are reported only where an uplink is configured.
func TestMetrics_NoUplink(t *testing.T) {
	m := New(Options{DB: openDB(t), Log: zerolog.Nop()})
	m.Attach(Sources{})
	if v, ok := value(scrape(t, m), "mallgrid_uplink_outbox_messages"); ok {
		t.Errorf("uplink outbox depth %v without an uplink; want none", v)
	}
}

// A counter never goes back: a generation's counts are carried over a
// detach and a new attach (whose poller starts from zero), and over a
// poller started again within a generation.
func TestMetrics_CountersSurviveReattach(t *testing.T) {
	m := New(Options{Log: zerolog.Nop()})
	gen1 := &source{}
	gen1.set(Meter{ID: "M-1", Bus: "a", Requests: 10, Errors: map[string]int64{"timeout": 2}})
	detach := m.Attach(Sources{Meters: gen1.get})
	expect(t, scrape(t, m), 10, "mallgrid_bus_transactions_total", "bus=a")

	// Counted after the last scrape, before the generation stopped:
	// detach reads it.
	gen1.set(Meter{ID: "M-1", Bus: "a", Requests: 15, Errors: map[string]int64{"timeout": 3}})
	detach()
	fams := scrape(t, m)
	expect(t, fams, 15, "mallgrid_bus_transactions_total", "bus=a")
	if v, ok := value(fams, "mallgrid_meter_online", "meter=M-1"); ok {
		t.Errorf("meter online = %v while no generation is attached; want no sample", v)
	}

	gen2 := &source{}
	gen2.set(Meter{ID: "M-1", Bus: "a", Requests: 4, Errors: map[string]int64{"timeout": 1}},
		Meter{ID: "M-9", Bus: "c", Requests: 1})
	detach2 := m.Attach(Sources{Meters: gen2.get})
	detach() // an old generation's detach, late: does nothing
	fams = scrape(t, m)
	expect(t, fams, 19, "mallgrid_bus_transactions_total", "bus=a")
	expect(t, fams, 4, "mallgrid_bus_errors_total", "bus=a", "kind=timeout")
	expect(t, fams, 1, "mallgrid_bus_transactions_total", "bus=c")

	// The bus's poller made again within the generation: its count falls.
	gen2.set(Meter{ID: "M-1", Bus: "a", Requests: 2, Errors: map[string]int64{"timeout": 1}})
	fams = scrape(t, m)
	expect(t, fams, 21, "mallgrid_bus_transactions_total", "bus=a")
	expect(t, fams, 5, "mallgrid_bus_errors_total", "bus=a", "kind=timeout")
	detach2()
	// A bus the configuration dropped keeps its last value.
	expect(t, scrape(t, m), 1, "mallgrid_bus_transactions_total", "bus=c")
}

// A failed commit is counted, from 0 at the first scrape: a disk that
// refuses every commit leaves the commit histogram without a sample.
func TestMetrics_CommitFailures(t *testing.T) {
	m := New(Options{Log: zerolog.Nop()})
	expect(t, scrape(t, m), 0, "mallgrid_pipeline_commit_errors_total")
	m.Committed(time.Millisecond)
	m.CommitFailed(errors.New("write /var/lib/mallgrid/mallgrid.db: input/output error"))
	m.CommitFailed(errors.New("write /var/lib/mallgrid/mallgrid.db: no space left on device"))
	fams := scrape(t, m)
	expect(t, fams, 2, "mallgrid_pipeline_commit_errors_total")
	expect(t, fams, 1, "mallgrid_pipeline_commit_seconds")
}

// promtool's rules (names, units, help, counters' _total) hold for every
// family, ours and the collectors'.
func TestMetrics_Lint(t *testing.T) {
	db := openDB(t)
	topUp(t, db, "T-1", "PAY-1", 100*billing.Yuan)
	m := New(Options{DB: db, Version: "test", Log: zerolog.Nop()})
	src := &source{}
	src.set(Meter{ID: "M-1", Tenant: "T-1", Bus: "a", Online: true, LastSeen: t0, Requests: 1})
	m.Attach(Sources{Meters: src.get, Uplink: true})
	m.CycleDone("a", time.Second)
	m.Committed(time.Millisecond)
	problems, err := testutil.GatherAndLint(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// A database that cannot be read leaves its families out of the scrape
// and keeps the others.
func TestMetrics_DatabaseClosed(t *testing.T) {
	db := openDB(t)
	m := New(Options{DB: db, Log: zerolog.Nop()})
	src := &source{}
	src.set(Meter{ID: "M-1", Bus: "a", Online: true, Requests: 3})
	m.Attach(Sources{Meters: src.get})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m)
	expect(t, fams, 3, "mallgrid_bus_transactions_total", "bus=a")
	expect(t, scrape(t, m), 1, "promhttp_metric_handler_errors_total", "cause=gathering")
	for _, name := range []string{"mallgrid_ledger_balance_yuan", "mallgrid_alarms_open", "mallgrid_ledger_credited_yuan_total"} {
		if fams[name] != nil {
			t.Errorf("%s served from a closed database", name)
		}
	}
}

// BenchmarkScrape is one scrape of a 2,000-meter mall with 100 tenants:
// the meters (from memory, as the root adapts them), the alarm and outbox
// indexes, 100 accounts and the ledger entries of a scrape's interval;
// "gather" is the registry's work alone, "http" the whole answer over a
// real connection (text format, no compression), read to its end;
// "database" the gather without meters (the database's figures and the
// runtime's).
func BenchmarkScrape(b *testing.B) {
	db := openDB(b)
	for i := range 100 {
		topUp(b, db, fmt.Sprintf("T-%03d", i), fmt.Sprintf("PAY-%d", i), 1000*billing.Yuan)
	}
	for i := range 50 {
		if _, err := db.PostEvents(store.Event{Time: t0, Kind: "meter_offline", Meter: fmt.Sprintf("M-%04d", i), Bus: "a"}); err != nil {
			b.Fatal(err)
		}
	}
	m := New(Options{DB: db, Log: zerolog.Nop()})
	meters := make([]Meter, 2000)
	for i := range meters {
		meters[i] = Meter{ID: fmt.Sprintf("M-%04d", i), Tenant: fmt.Sprintf("T-%03d", i%100), Bus: fmt.Sprintf("bus-%d", i/100),
			Online: true, LastSeen: t0, Requests: int64(1000 + i), Errors: map[string]int64{"timeout": 3, "crc": 1}}
	}
	m.Attach(Sources{Meters: func() []Meter { return meters }, Uplink: true})
	// A scrape's interval (15 s) of a 2,000-meter mall: about 35 charges.
	interval := func(i int) {
		b.StopTimer()
		var cycle store.Cycle
		for j := range 35 {
			cycle.Charges = append(cycle.Charges, store.Entry{Time: t0, Account: fmt.Sprintf("T-%03d", (i+j)%100), Kind: store.Charge, Amount: -billing.Fen, Wh: 10})
		}
		if _, err := db.CommitCycle(cycle); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.Run("gather", func(b *testing.B) {
		for i := range b.N {
			interval(i)
			fams, err := m.Gatherer().Gather()
			if err != nil || len(fams) == 0 {
				b.Fatalf("gather: %v", err)
			}
		}
	})
	// The database's figures and the runtime's alone: no meters.
	b.Run("database", func(b *testing.B) {
		detach := m.Attach(Sources{Uplink: true})
		defer func() {
			detach()
			m.Attach(Sources{Meters: func() []Meter { return meters }, Uplink: true})
		}()
		for i := range b.N {
			interval(i)
			if _, err := m.Gatherer().Gather(); err != nil {
				b.Fatalf("gather: %v", err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		srv := httptest.NewServer(m.Handler())
		defer srv.Close()
		for i := range b.N {
			interval(i)
			resp, err := http.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("scrape: %s, %v", resp.Status, err)
			}
			b.ReportMetric(float64(n), "bytes/scrape")
		}
	})
}

// A nil *Metrics takes every observation and serves nothing: parts wired
// without one (tests, tools) need no checks.
func TestMetrics_Nil(t *testing.T) {
	var m *Metrics
	m.CycleDone("a", time.Second)
	m.Committed(time.Millisecond)
	m.CommitFailed(errors.New("no space left on device"))
	m.RelayCommand(true, nil)
	m.Attach(Sources{})()
	if h := m.Handler(); h != nil {
		t.Errorf("Handler of a nil *Metrics = %v; want nil (no /metrics)", h)
	}
}

// A bus's error kinds are reported from its first scrape by what it
// speaks: a Modbus bus's transaction errors, an MQTT bus's message
// problems; neither gets the other's at 0.
func TestMetrics_ErrorKindsByBusType(t *testing.T) {
	m := New(Options{Log: zerolog.Nop()})
	src := &source{}
	src.set(Meter{ID: "M-1", Bus: "rtu", Requests: 5},
		Meter{ID: "M-2", Bus: "mqtt", Requests: 9, Errors: map[string]int64{"zero_frame": 2}})
	m.Attach(Sources{Meters: src.get, MQTTBuses: map[string]bool{"mqtt": true}})
	fams := scrape(t, m)
	for _, kind := range modbusErrorKinds {
		expect(t, fams, 0, "mallgrid_bus_errors_total", "bus=rtu", "kind="+kind)
		if v, ok := value(fams, "mallgrid_bus_errors_total", "bus=mqtt", "kind="+kind); ok {
			t.Errorf("MQTT bus's %s errors = %v; want no series (a Modbus kind)", kind, v)
		}
	}
	for _, kind := range mqttErrorKinds {
		want := 0.0
		if kind == "zero_frame" {
			want = 2
		}
		expect(t, fams, want, "mallgrid_bus_errors_total", "bus=mqtt", "kind="+kind)
		if v, ok := value(fams, "mallgrid_bus_errors_total", "bus=rtu", "kind="+kind); ok {
			t.Errorf("Modbus bus's %s errors = %v; want no series (an MQTT kind)", kind, v)
		}
	}
	for _, kind := range []string{"lost_packets", "bad_message", "zero_frame", "clock", "foreign_reply", "upkeep"} {
		if help := fams["mallgrid_bus_errors_total"].GetHelp(); !strings.Contains(help, kind) {
			t.Errorf("help of mallgrid_bus_errors_total %q does not name the MQTT kind %s", help, kind)
		}
	}
}
