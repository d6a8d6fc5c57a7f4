package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/metrics"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// TestRun_Metrics scrapes a gateway polling simulated meters as Prometheus
// would, with the viewer's token: the buses' cycles and transactions, the
// meters online, the commits; promtool's rules hold for the real output;
// without a token the scrape is 401. A reload (a new generation, its
// pollers counting from zero again) leaves every counter where it was or
// higher.
func TestRun_Metrics(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1)
	reload := make(chan struct{}, 1)
	var logs syncBuffer
	base, _ := runGateway(t, Options{Config: mall.cfg, Log: bufferedLog(t, &logs), Reload: reload, Load: func() (*config.Config, error) { return mall.cfg, nil }})
	scrape := func() (map[string]*dto.MetricFamily, []byte) { return scrapeMetrics(t, base) }

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: %s; want 401", resp.Status)
	}

	var fams map[string]*dto.MetricFamily
	var body []byte
	waitFor(t, 10*time.Second, "both meters online and three cycles of bus a", func() bool {
		fams, body = scrape()
		return sample(fams, "mallgrid_meter_online", map[string]string{"meter": "M-a1", "tenant": "T-a1", "bus": "a"}) == 1 &&
			sample(fams, "mallgrid_meter_online", map[string]string{"meter": "M-b1", "bus": "b"}) == 1 &&
			sample(fams, "mallgrid_bus_cycle_seconds", map[string]string{"bus": "a"}) >= 3
	})
	before := sample(fams, "mallgrid_bus_transactions_total", map[string]string{"bus": "a"})
	commits := sample(fams, "mallgrid_pipeline_commit_seconds", nil)
	if before < 3 || commits < 3 {
		t.Errorf("after three cycles: %v transactions on bus a, %v commits; want at least 3 each", before, commits)
	}
	if seen := sample(fams, "mallgrid_meter_last_seen_timestamp_seconds", map[string]string{"meter": "M-a1"}); time.Since(time.Unix(int64(seen), 0)) > time.Minute {
		t.Errorf("M-a1 last seen %v; want within the last minute", seen)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// A reload: the new generation starts its pollers from zero.
	reloadLogged(t, reload, &logs)
	waitCycle(t, base, "a", "after the reload")
	fams, _ = scrape()
	if after := sample(fams, "mallgrid_bus_transactions_total", map[string]string{"bus": "a"}); after <= before {
		t.Errorf("transactions on bus a after a reload and a cycle: %v; want more than the %v before it", after, before)
	}
	if after := sample(fams, "mallgrid_pipeline_commit_seconds", nil); after <= commits {
		t.Errorf("commits after a reload and a cycle: %v; want more than the %v before it", after, commits)
	}
}

// scrapeMetrics GETs base's /metrics with the viewer's token and parses it
// as Prometheus would; it returns the families and the text.
func scrapeMetrics(t *testing.T, base string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := viewerGet(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics as viewer: %s, %v", resp.Status, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return fams, body
}

// sample is the value of name's series whose labels include want, or -1
// when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
next:
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestRun_MetricsMetersAcrossReload follows the meters' series over a
// reload and a restart. M-a1 stops answering; then a reload removes M-a2.
// After it, and after a restart, M-a1 — not heard by the new pollers —
// keeps its last-seen series at its last answer (an alert on its silence
// goes on firing) and reads offline; M-a2's series are gone; bus a's
// counters did not go down.
func TestRun_MetricsMetersAcrossReload(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 2)
	var file atomic.Pointer[string]
	load := func() (*config.Config, error) { return config.Parse("reload.yaml", []byte(*file.Load()), nil) }
	src := reloadMallYAML(mall, true, "")
	file.Store(&src)
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{}, 1)
	var logs syncBuffer
	base, stop := runGateway(t, Options{Config: cfg, Log: bufferedLog(t, &logs), Reload: reload, Load: load})
	a1 := map[string]string{"meter": "M-a1"}
	a2 := map[string]string{"meter": "M-a2"}
	busA := map[string]string{"bus": "a"}
	var fams map[string]*dto.MetricFamily
	waitFor(t, 10*time.Second, "M-a1 and M-a2 online", func() bool {
		fams, _ = scrapeMetrics(t, base)
		return sample(fams, "mallgrid_meter_online", a1) == 1 && sample(fams, "mallgrid_meter_online", a2) == 1
	})

	if err := mall.meters["M-a1"].SetFaultRates(map[sim.FaultKind]float64{sim.NoReply: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "M-a1 offline", func() bool {
		fams, _ = scrapeMetrics(t, base)
		return sample(fams, "mallgrid_meter_online", a1) == 0
	})
	lastSeen := sample(fams, "mallgrid_meter_last_seen_timestamp_seconds", a1)
	if lastSeen <= 0 {
		t.Fatalf("M-a1's last seen before the reload: %v; want its last answer", lastSeen)
	}
	transactions := sample(fams, "mallgrid_bus_transactions_total", busA)
	timeouts := sample(fams, "mallgrid_bus_errors_total", map[string]string{"bus": "a", "kind": "timeout"})

	// checkA1 checks M-a1's series once the running generation's bus a
	// has cycled, after what.
	checkA1 := func(what string) map[string]*dto.MetricFamily {
		t.Helper()
		waitCycle(t, base, "a", what)
		fams, _ := scrapeMetrics(t, base)
		// Its last answer, as the API says it: the poller's before, or
		// the stored reading's time (a read begins before its last
		// answer, and a read cut short by the silence stored none).
		got := sample(fams, "mallgrid_meter_last_seen_timestamp_seconds", a1)
		if got < lastSeen-3 || got > lastSeen {
			t.Errorf("M-a1's last seen %s: %v; want its last answer, %v or a read before it", what, got, lastSeen)
		}
		var view web.MeterView
		getJSON(t, base+"/api/v1/meters/M-a1", &view)
		if view.LastSeen == nil || float64(view.LastSeen.UnixMilli())/1e3 != got {
			t.Errorf("M-a1's last seen %s: %v in /metrics, %v in the API; want the same", what, got, view.LastSeen)
		}
		if got := sample(fams, "mallgrid_meter_online", a1); got != 0 {
			t.Errorf("M-a1 online %s: %v; want 0", what, got)
		}
		return fams
	}

	shrunk := reloadMallYAML(mall, false, "")
	file.Store(&shrunk)
	reloadLogged(t, reload, &logs)
	fams = checkA1("after the reload")
	for _, name := range []string{"mallgrid_meter_online", "mallgrid_meter_last_seen_timestamp_seconds"} {
		if got := sample(fams, name, a2); got != -1 {
			t.Errorf("%s of M-a2, removed by the reload: %v; want no series", name, got)
		}
	}
	if got := sample(fams, "mallgrid_bus_transactions_total", busA); got <= transactions {
		t.Errorf("transactions on bus a after the reload and a cycle: %v; want more than the %v before", got, transactions)
	}
	if got := sample(fams, "mallgrid_bus_errors_total", map[string]string{"bus": "a", "kind": "timeout"}); got < timeouts {
		t.Errorf("timeouts on bus a after the reload: %v; want at least the %v before", got, timeouts)
	}

	// A restart: nothing is carried in memory, the database holds M-a1's
	// last reading.
	stop()
	if cfg, err = load(); err != nil {
		t.Fatal(err)
	}
	base, _ = runGateway(t, Options{Config: cfg, Log: newCheckedLog(t), Load: load})
	checkA1("after a restart")
}

// bufferedLog is newCheckedLog that also writes every line to logs.
func bufferedLog(t *testing.T, logs *syncBuffer) zerolog.Logger {
	return zerolog.New(zerolog.MultiLevelWriter(logs, checkedLog{t: t, show: zerolog.LevelWriterAdapter{Writer: zerolog.NewTestWriter(t)}})).Level(zerolog.DebugLevel)
}

// reloadLogged asks the gateway whose log is logs to reload and waits
// until it has logged one more reload done.
func reloadLogged(t *testing.T, reload chan<- struct{}, logs *syncBuffer) {
	t.Helper()
	const done = `"message":"configuration reloaded`
	before := strings.Count(logs.String(), done)
	reload <- struct{}{}
	waitFor(t, 15*time.Second, "the reload logged", func() bool { return strings.Count(logs.String(), done) > before })
}

// waitCycle waits until base's gateway has finished a cycle of bus that
// ended after now, its now, after what.
func waitCycle(t *testing.T, base, bus, what string) {
	t.Helper()
	var status web.StatusView
	getJSON(t, base+"/api/v1/status", &status)
	now := status.Now
	waitFor(t, 10*time.Second, "a cycle of bus "+bus+" "+what, func() bool {
		getJSON(t, base+"/api/v1/status", &status)
		for _, b := range status.Buses {
			if b.Name == bus && b.LastCycle.After(now) {
				return true
			}
		}
		return false
	})
}

// What a scrape reads of the meters right after a reload, before the new
// pollers have asked them: the online state and last answer the replaced
// generation's pollers had (live's Carry), and for a meter they never heard
// the time of its stored reading (restored as pipeline.New does).
func TestMeterSamples_BeforeTheFirstPoll(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("site: {name: x}\nbuses: [{name: a, port: /dev/ttyUSB0}]\n"+
		"meters:\n  - {id: M-1, bus: a, address: 1, model: kpm33b, tenant: T-1}\n  - {id: M-2, bus: a, address: 2, model: kpm33b, role: public}\n"+
		"tenants: [{id: T-1, name: Shop}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	prev := live.New(cfg, "test", "", clock)
	prev.SetStatus("a", func() []poll.MeterStatus {
		return []poll.MeterStatus{{ID: "M-1", Online: true, Stats: poll.Stats{Requests: 40, LastSeen: at}}, {ID: "M-2", Stats: poll.Stats{Requests: 3}}}
	})
	next := live.New(cfg, "test", "", clock)
	stored := at.Add(-time.Hour)
	next.Update(store.Reading{Meter: "M-2", Time: stored, ImportWh: 5}, stored)
	next.Carry(prev, []string{"a"})
	next.SetStatus("a", func() []poll.MeterStatus { return []poll.MeterStatus{{ID: "M-1"}, {ID: "M-2"}} }) // asked nothing yet
	want := map[string]metrics.Meter{
		"M-1": {ID: "M-1", Tenant: "T-1", Bus: "a", Online: true, LastSeen: at},
		"M-2": {ID: "M-2", Bus: "a", LastSeen: stored},
	}
	for _, got := range meterSamples(cfg, next)() {
		w := want[got.ID]
		if got.Online != w.Online || !got.LastSeen.Equal(w.LastSeen) || got.Tenant != w.Tenant || got.Bus != w.Bus {
			t.Errorf("%s before its first poll: %+v; want online %v, last seen %v", got.ID, got, w.Online, w.LastSeen)
		}
	}
}
