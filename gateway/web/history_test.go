package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeHistory answers every known meter and tenant with one point per
// step asked and remembers what it was asked.
type fakeHistory struct {
	from, to time.Time
	step     Step
	calls    int
}

func (f *fakeHistory) MeterHistory(meter string, from, to time.Time, step Step) (HistoryView, error) {
	f.calls++
	f.from, f.to, f.step = from, to, step
	if meter != "M-101" {
		return HistoryView{}, fmt.Errorf("%w: no meter %q", ErrNotFound, meter)
	}
	w, kwh := int64(3120), "0.052"
	return HistoryView{Meter: meter, From: from, To: to, Step: step.String(),
		Points: []HistoryPoint{{T: from, AvgW: &w, MinW: &w, MaxW: &w, KWh: &kwh}, {T: from.Add(time.Duration(step))}}}, nil
}

func (f *fakeHistory) Usage(tenant string, from, to time.Time) (UsageView, error) {
	f.calls++
	f.from, f.to = from, to
	if tenant != "T-101" {
		return UsageView{}, fmt.Errorf("%w: no tenant %q", ErrNotFound, tenant)
	}
	return UsageView{Tenant: tenant, From: from, To: to, Step: "day",
		Days:  []UsageDay{{Date: "2026-11-27", T: from, KWh: "1.500", Amount: "1.28", Windows: []UsageWindow{{Window: "peak", KWh: "1.500", Amount: "1.28"}}}},
		Total: UsageWindow{KWh: "1.500", Amount: "1.28"}}, nil
}

// historyServer serves the history endpoints over a real listener.
func historyServer(t *testing.T) (*httptest.Server, *fakeHistory) {
	t.Helper()
	h := &fakeHistory{}
	s, err := New(newFake(), Options{Log: zerolog.Nop(), Tokens: testTokens(), History: h})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, h
}

func getJSON(t *testing.T, srv *httptest.Server, path string, into any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(asViewer(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

func TestHistory_Shape(t *testing.T) {
	srv, h := historyServer(t)
	q := url.Values{"from": {"2026-11-27T00:00:00+08:00"}, "to": {"2026-11-28T00:00:00+08:00"}, "step": {"15m"}}
	var got map[string]any
	code, body := getJSON(t, srv, "/api/v1/meters/M-101/history?"+q.Encode(), &got)
	if code != http.StatusOK {
		t.Fatalf("GET history = %d %s", code, body)
	}
	if h.step != StepQuarter || !h.from.Equal(time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC)) || !h.to.Equal(time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("asked for %v..%v step %v; want the day of 2026-11-27 (+08:00) in 15m", h.from, h.to, h.step)
	}
	for _, key := range []string{"meter", "from", "to", "step", "points"} {
		if _, ok := got[key]; !ok {
			t.Errorf("answer lacks %q: %s", key, body)
		}
	}
	points := got["points"].([]any)
	first, second := points[0].(map[string]any), points[1].(map[string]any)
	if first["avg_w"] != 3120.0 || first["kwh"] != "0.052" || got["step"] != "15m" {
		t.Errorf("first point %v, step %v; want avg_w 3120 and kwh \"0.052\" in 15m", first, got["step"])
	}
	for _, key := range []string{"t", "avg_w", "min_w", "max_w", "kwh"} {
		if v, ok := second[key]; !ok || (key != "t" && v != nil) {
			t.Errorf("a point without data has %s = %v (present %v); want null", key, v, ok)
		}
	}

	var usage UsageView
	if code, body := getJSON(t, srv, "/api/v1/accounts/T-101/usage?from=2026-11-27T00:00:00%2B08:00&to=2026-11-28T00:00:00%2B08:00&step=day", &usage); code != http.StatusOK {
		t.Fatalf("GET usage = %d %s", code, body)
	}
	if len(usage.Days) != 1 || usage.Days[0].Windows[0].Amount != "1.28" || usage.Step != "day" {
		t.Errorf("usage = %+v; want one day with peak 1.28", usage)
	}
	// step may be left out: usage is by day.
	if code, body := getJSON(t, srv, "/api/v1/accounts/T-101/usage?from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z", nil); code != http.StatusOK {
		t.Errorf("GET usage without step = %d %s; want 200", code, body)
	}
}

func TestHistory_BadRequests(t *testing.T) {
	srv, h := historyServer(t)
	day := "from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z"
	cases := []struct {
		name, path string
		code       int
		reason     string
	}{
		{"no from", "/api/v1/meters/M-101/history?to=2026-11-28T00:00:00Z&step=1m", 400, "from: required"},
		{"bad to", "/api/v1/meters/M-101/history?from=2026-11-27T00:00:00Z&to=tomorrow&step=1m", 400, `to "tomorrow": want an RFC 3339 time`},
		{"to before from", "/api/v1/meters/M-101/history?from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z&step=1h", 400, "is not before to"},
		{"empty range", "/api/v1/meters/M-101/history?from=2026-11-28T00:00:00Z&to=2026-11-28T00:00:00Z&step=1h", 400, "is not before to"},
		{"no step", "/api/v1/meters/M-101/history?" + day, 400, `step "": want 1m, 5m, 15m, 1h or 1d`},
		{"odd step", "/api/v1/meters/M-101/history?" + day + "&step=2m", 400, `step "2m"`},
		// 2 days in minutes: 2,880 points.
		{"too many points", "/api/v1/meters/M-101/history?from=2026-11-27T00:00:00Z&to=2026-11-29T00:00:00Z&step=1m", 400, "2880 points; at most 2000"},
		{"too many days", "/api/v1/accounts/T-101/usage?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "at most 2000"},
		{"usage by hour", "/api/v1/accounts/T-101/usage?" + day + "&step=1h", 400, "usage is by day"},
		{"unknown meter", "/api/v1/meters/M-999/history?" + day + "&step=1h", 404, `no meter "M-999"`},
		{"unknown tenant", "/api/v1/accounts/T-999/usage?" + day, 404, `no tenant "T-999"`},
	}
	for _, c := range cases {
		before := h.calls
		code, body := getJSON(t, srv, c.path, nil)
		var answer struct{ Error string }
		if err := json.Unmarshal([]byte(body), &answer); err != nil {
			t.Errorf("%s: %v in %s", c.name, err, body)
		}
		if code != c.code || !strings.Contains(answer.Error, c.reason) {
			t.Errorf("%s: %d %q; want %d with %q", c.name, code, answer.Error, c.code, c.reason)
		}
		if c.code == 400 && h.calls != before {
			t.Errorf("%s: the history was read for a refused request", c.name)
		}
	}
	// The limit is the limit: 2,000 minutes is answered.
	if code, body := getJSON(t, srv, "/api/v1/meters/M-101/history?from=2026-11-27T00:00:00Z&to=2026-11-28T09:20:00Z&step=1m", nil); code != 200 {
		t.Errorf("2,000 one-minute points = %d %s; want 200", code, body)
	}
	if code, _ := getJSON(t, srv, "/api/v1/meters/M-101/history?from=2026-11-27T00:00:00Z&to=2026-11-28T09:21:00Z&step=1m", nil); code != 400 {
		t.Errorf("2,001 one-minute points = %d; want 400", code)
	}
}

// Without a token the history is not read: it is no more open than the
// rest of the API.
func TestHistory_NeedsViewer(t *testing.T) {
	srv, h := historyServer(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/meters/M-101/history?from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z&step=1h", nil)
	req.Host = "localhost"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || h.calls != 0 {
		t.Errorf("history without a token = %d (read %d times); want 401, unread", resp.StatusCode, h.calls)
	}
}
