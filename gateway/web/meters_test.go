package web

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// listSource is a fixed list of meters in configuration order.
type listSource struct{ meters []MeterView }

func (l listSource) Status() StatusView  { return StatusView{Counts: CountsView{Meters: len(l.meters)}} }
func (l listSource) Meters() []MeterView { return l.meters }

// sixMeters differ in every field the list filters and sorts by.
func sixMeters() []MeterView {
	at := func(s int) *time.Time { t := time.Date(2026, 12, 1, 10, 0, s, 0, time.UTC); return &t }
	m := func(id, bus, role, tenant, name string, online bool, relay string, power float64, kwh string, seen *time.Time) MeterView {
		v := MeterView{ID: id, Bus: bus, Role: role, Tenant: tenant, TenantName: name, Online: online, ImportKWh: kwh,
			Relay: RelayView{Desired: "closed", Actual: relay}, Values: map[string]Value{}, Energy: map[string]string{},
			Stats: StatsView{Errors: map[string]int64{}, LastSeen: seen}}
		if power >= 0 {
			v.Values["power"] = Value{power, "W"}
		}
		return v
	}
	return []MeterView{
		m("M-3", "north", "tenant", "T-3", "Lotus Tea", true, "closed", 900, "20.000", at(3)),
		m("M-1", "north", "tenant", "T-1", "Golden Noodle House", true, "open", 3120.5, "1234.567", at(5)),
		m("P-1", "north", "public", "", "", false, "unknown", -1, "", nil),
		m("M-2", "south", "tenant", "T-2", "golden dragon", true, "closed", 15000, "999.999", at(1)),
		m("M-10", "south", "tenant", "T-10", "Apple Corner", false, "unknown", 0, "5.000", at(0)),
		m("X-1", "south", "main", "", "", true, "closed", 250000, "80000.000", at(4)),
	}
}

func listServer(t *testing.T, ms []MeterView) *httptest.Server {
	t.Helper()
	s, err := New(listSource{ms}, Options{Log: zerolog.Nop(), Tokens: testTokens()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// getList asks the list over a real socket as the viewer and returns the
// status, X-Total-Count and the ids in the body (or the error's reason).
func getList(t *testing.T, srv *httptest.Server, query string) (int, string, []string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/meters"+query, nil)
	req.Header.Set("Authorization", "Bearer viewer-secret")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		var e map[string]string
		_ = json.Unmarshal(raw, &e)
		return resp.StatusCode, "", nil, e["error"]
	}
	var ms []MeterView
	if err := json.Unmarshal(raw, &ms); err != nil {
		t.Fatalf("%s: %v in %q", query, err, raw)
	}
	ids := []string{}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return resp.StatusCode, resp.Header.Get("X-Total-Count"), ids, ""
}

func TestAPIMeters_Query(t *testing.T) {
	srv := listServer(t, sixMeters())
	for _, tt := range []struct {
		query, total, ids string
	}{
		{"", "6", "M-3 M-1 P-1 M-2 M-10 X-1"}, // configuration order
		{"?q=GOLDEN", "2", "M-1 M-2"},         // tenant name, any case
		{"?q=t-1", "2", "M-1 M-10"},           // tenant id
		{"?q=x-", "1", "X-1"},                 // meter id
		{"?bus=south", "3", "M-2 M-10 X-1"},
		{"?role=public", "1", "P-1"},
		{"?online=false", "2", "P-1 M-10"},
		{"?online=true&bus=north", "2", "M-3 M-1"},
		{"?relay=unknown", "2", "P-1 M-10"},
		{"?relay=open", "1", "M-1"},
		{"?sort=id", "6", "M-1 M-10 M-2 M-3 P-1 X-1"},
		{"?sort=-id", "6", "X-1 P-1 M-3 M-2 M-10 M-1"},
		{"?sort=power", "6", "M-10 M-3 M-1 M-2 X-1 P-1"},  // no value last
		{"?sort=-power", "6", "X-1 M-2 M-1 M-3 M-10 P-1"}, // no value last either way
		{"?sort=import", "6", "M-10 M-3 M-2 M-1 X-1 P-1"},
		{"?sort=-last_seen", "6", "M-1 X-1 M-3 M-2 M-10 P-1"},
		{"?sort=tenant", "6", "M-10 M-2 M-1 M-3 P-1 X-1"}, // by name, any case; none last, by id
		{"?sort=bus", "6", "M-1 M-3 P-1 M-10 M-2 X-1"},
		{"?sort=id&limit=2", "6", "M-1 M-10"},
		{"?sort=id&offset=2&limit=2", "6", "M-2 M-3"},
		{"?sort=id&offset=5&limit=1000", "6", "X-1"},
		{"?offset=6", "6", ""},
		{"?bus=south&sort=-power&limit=1", "3", "X-1"},
	} {
		code, total, ids, reason := getList(t, srv, tt.query)
		if code != 200 || total != tt.total || strings.Join(ids, " ") != tt.ids {
			t.Errorf("GET /api/v1/meters%s = %d, total %q, %v %s; want 200, %s, [%s]", tt.query, code, total, ids, reason, tt.total, tt.ids)
		}
	}
}

func TestAPIMeters_BadQuery(t *testing.T) {
	srv := listServer(t, sixMeters())
	for _, q := range []string{
		"?limit=0", "?limit=1001", "?limit=x", "?offset=-1", "?offset=1.5", "?online=yes", "?online=1", "?online=",
		"?relay=on", "?role=shop", "?sort=name", "?sort=", "?sort=--id", "?bus=", "?page=2", "?q=a&q=b", "?limit=10&limit=20",
	} {
		code, _, _, reason := getList(t, srv, q)
		if code != 400 || reason == "" {
			t.Errorf("GET /api/v1/meters%s = %d %q; want 400 with a reason", q, code, reason)
		}
	}
}

// The list is compact JSON, the same as json.Marshal of the views' list
// form (no rate counters, no polling statistics); a source's kept
// encoding is what is sent for its meter.
func TestAPIMeters_CompactAndKeptEncoding(t *testing.T) {
	ms := sixMeters()
	var lv []MeterView
	for _, m := range ms {
		lv = append(lv, m.ListView())
	}
	want, _ := json.Marshal(lv)
	if strings.Contains(string(want), `"stats"`) || strings.Contains(string(want), `"energy_kwh"`) {
		t.Errorf("the list form carries stats or rate counters: %s", want)
	}
	srv := listServer(t, ms)
	body := fetch(t, srv, "/api/v1/meters", "")
	if strings.TrimSpace(body) != string(want) {
		t.Errorf("list = %s\nwant %s", body, want)
	}
	kept := sixMeters()
	kept[0].Encoded = []byte(`{"id":"M-3","kept":true}`)
	srv = listServer(t, kept)
	if body := fetch(t, srv, "/api/v1/meters?limit=1", ""); strings.TrimSpace(body) != `[{"id":"M-3","kept":true}]` {
		t.Errorf("list with a kept encoding = %s; want the kept bytes", body)
	}
}

// A client that accepts gzip gets the list gzipped, and the same JSON.
func TestAPIMeters_Gzip(t *testing.T) {
	var ms []MeterView
	for i := range 200 {
		m := sixMeters()[i%6]
		m.ID = fmt.Sprintf("M-%03d", i)
		ms = append(ms, m)
	}
	srv := listServer(t, ms)
	plain := fetch(t, srv, "/api/v1/meters", "")
	zipped := fetch(t, srv, "/api/v1/meters", "gzip")
	if zipped != plain {
		t.Errorf("gzipped list differs from the plain one")
	}
}

// fetch GETs path as the viewer with Accept-Encoding enc (none if empty)
// and returns the body, decompressed; it fails unless a gzip request
// was answered gzipped.
func fetch(t *testing.T, srv *httptest.Server, path, enc string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer viewer-secret")
	if enc != "" {
		req.Header.Set("Accept-Encoding", enc) // set by hand: the transport then leaves the body compressed
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if enc == "gzip" {
		if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("GET %s with Accept-Encoding gzip: Content-Encoding %q", path, got)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	} else if got := resp.Header.Get("Content-Encoding"); got != "" {
		t.Fatalf("GET %s without Accept-Encoding: Content-Encoding %q", path, got)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
