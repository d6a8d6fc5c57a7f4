package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeSource is a fixed picture of two meters, one of them offline.
type fakeSource struct{ meters []MeterView }

func (f fakeSource) Status() StatusView {
	return StatusView{Site: "Test Plaza", Now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		Counts: CountsView{Meters: 2, Online: 1, Offline: 1}, Buses: []BusView{{Name: "north", Type: "rtu", Port: "/dev/ttyUSB0", Meters: 2, Online: 1}},
		Polling: []PollingView{
			{Meter: "M-101", Bus: "north", Address: 1, Online: true, StatsView: StatsView{Requests: 120, Errors: map[string]int64{"timeout": 2, "crc": 1}, P50MS: 12.5, P99MS: 40.25}},
			{Meter: "P-N01", Bus: "north", Address: 20, StatsView: StatsView{Requests: 3, Errors: map[string]int64{"timeout": 3}, LastError: "meter P-N01 addr 20: modbus: timeout"}},
		}}
}
func (f fakeSource) Meters() []MeterView { return f.meters }

func newFake() fakeSource {
	seen := time.Date(2026, 11, 27, 11, 59, 55, 0, time.UTC)
	return fakeSource{meters: []MeterView{
		{ID: "M-101", Bus: "north", Address: 1, Model: "kpm33b", Role: "tenant", Tenant: "T-101", TenantName: "Golden Noodle House", Online: true,
			ReadingTime: &seen, ImportKWh: "1234.567",
			Values: map[string]Value{"power": {3120.4, "W"}, "voltage_a": {229.87, "V"}, "pf": {0.951, ""}},
			Relay:  RelayView{Desired: "auto", Actual: "closed"}, Stats: StatsView{LastSeen: &seen}},
		{ID: "P-N01", Bus: "north", Address: 20, Model: "kpm33b", Role: "public", Online: false,
			Relay: RelayView{Desired: "auto", Actual: "unknown"}},
	}}
}

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, asViewer(httptest.NewRequest(http.MethodGet, path, nil)))
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestMeterPage_ShowsLiveValuesAndPolling(t *testing.T) {
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, s.Handler(), "/meters/M-101")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /meters/M-101 = %d", resp.StatusCode)
	}
	for _, want := range []string{
		"<title>Meter — Test Plaza — mallgrid</title>",
		`data-meter="M-101"`, "Golden Noodle House", "T-101", "1,234.567", ">3120<", "229.9", "0.951",
		`src="/static/app.js"`, `src="/static/vendor/uplot/uPlot.iife.min.js"`,
		">120<", "CRC error 1, Timeout 2", "12.5 / 40.2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("meter page lacks %q", want)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("the meter page loads something from the internet")
	}
	for _, asset := range []string{"/static/app.js", "/static/style.css", "/static/vendor/uplot/uPlot.iife.min.js"} {
		if resp, _ := get(t, s.Handler(), asset); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", asset, resp.StatusCode)
		}
	}
	if resp, _ := get(t, s.Handler(), "/meters/M-999"); resp.StatusCode != 404 {
		t.Errorf("GET /meters/M-999 = %d; want 404", resp.StatusCode)
	}
}

func TestAPI_Errors(t *testing.T) {
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/api/v1/meters/M-999", 404},
		{"GET", "/api/v1/nothing", 404},
		{"POST", "/api/v1/meters", 405},
	} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, asViewer(httptest.NewRequest(tt.method, tt.path, nil)))
		if rec.Code != tt.code {
			t.Errorf("%s %s = %d; want %d", tt.method, tt.path, rec.Code, tt.code)
		}
		if tt.path == "/api/v1/meters/M-999" {
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" {
				t.Errorf("%s %s body %q; want a JSON reason", tt.method, tt.path, rec.Body.String())
			}
		}
	}
	resp, body := get(t, s.Handler(), "/api/v1/meters/M-101")
	var m MeterView
	// A meter's own view has its polling statistics, which the list leaves
	// to /api/v1/status.
	if err := json.Unmarshal([]byte(body), &m); err != nil || resp.StatusCode != 200 || m.ImportKWh != "1234.567" || m.Stats.LastSeen == nil {
		t.Errorf("GET M-101 = %d %+v %v", resp.StatusCode, m, err)
	}
}

func TestAtRisk_ByTimeLeft(t *testing.T) {
	at := func(h int) *time.Time { x := time.Date(2026, 11, 27, h, 0, 0, 0, time.UTC); return &x }
	secs := func(d time.Duration) *int64 { n := int64(d / time.Second); return &n }
	got := atRisk([]AccountView{
		{Tenant: "T-6", State: "normal", CreditLeft: secs(10 * 24 * time.Hour)}, // lasts: not at risk
		{Tenant: "T-5", State: "normal"},                                        // no spending: not at risk
		{Tenant: "T-4", State: "normal", CreditLeft: secs(30 * time.Hour)},
		{Tenant: "T-3", State: "exhausted", PendingCutOff: at(12)},
		{Tenant: "T-2", State: "exhausted", PendingCutOff: at(11)},
		{Tenant: "T-1", State: "cut_off"},
		{Tenant: "T-0", State: "warning_2", CreditLeft: secs(5 * time.Hour)},
		{Tenant: "T-7", State: "cut_off", Archived: true},
		{Tenant: "T-8", State: "exhausted", PendingCutOff: at(10), Protected: "clinic"}, // not cut: last
	})
	var order []string
	for _, a := range got {
		order = append(order, a.Tenant)
	}
	if want := "T-1 T-2 T-3 T-0 T-4 T-8"; strings.Join(order, " ") != want {
		t.Errorf("order = %v; want %s (cut off, cut-off due soonest first, then by the credit left)", order, want)
	}
}

// brokenWriter is a client that went away: every write fails.
type brokenWriter struct{ h http.Header }

func (b *brokenWriter) Header() http.Header       { return b.h }
func (b *brokenWriter) WriteHeader(int)           {}
func (b *brokenWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// A client that closes its tab while the page is sent is not an error in
// the gateway's log.
func TestPage_ClientGoneIsNoError(t *testing.T) {
	var logged bytes.Buffer
	s, err := New(newFake(), Options{Log: zerolog.New(&logged).Level(zerolog.InfoLevel), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	s.Handler().ServeHTTP(&brokenWriter{h: http.Header{}}, asViewer(httptest.NewRequest("GET", "/", nil)))
	if logged.Len() != 0 {
		t.Errorf("logged %q for a client that went away; want nothing at info level or above", logged.String())
	}
}
