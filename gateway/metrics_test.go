package gateway

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

// TestRun_Metrics scrapes a gateway polling simulated meters as Prometheus
// would, with the viewer's token: the buses' cycles and transactions, the
// meters online, the commits; promtool's rules hold for the real output;
// without a token the scrape is 401. A reload (a new generation, its
// pollers counting from zero again) leaves every counter where it was or
// higher.
func TestRun_Metrics(t *testing.T) {
	mall := newTestMall(t, 1)
	reload := make(chan struct{}, 1)
	base, _ := runGateway(t, Options{Config: mall.cfg, Log: newCheckedLog(t), Reload: reload, Load: func() (*config.Config, error) { return mall.cfg, nil }})

	scrape := func() (map[string]*dto.MetricFamily, []byte) {
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
	// sample is the value of name's series whose labels include want.
	sample := func(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
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
	var status web.StatusView
	getJSON(t, base+"/api/v1/status", &status)
	started := status.Started
	reload <- struct{}{}
	waitFor(t, 10*time.Second, "the reloaded generation's first cycle of bus a", func() bool {
		getJSON(t, base+"/api/v1/status", &status)
		if status.Started.Equal(started) {
			return false
		}
		for _, b := range status.Buses {
			if b.Name == "a" && b.LastCycle.After(status.Started) {
				return true
			}
		}
		return false
	})
	fams, _ = scrape()
	if after := sample(fams, "mallgrid_bus_transactions_total", map[string]string{"bus": "a"}); after <= before {
		t.Errorf("transactions on bus a after a reload and a cycle: %v; want more than the %v before it", after, before)
	}
	if after := sample(fams, "mallgrid_pipeline_commit_seconds", nil); after <= commits {
		t.Errorf("commits after a reload and a cycle: %v; want more than the %v before it", after, commits)
	}
}
