package gateway

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/web"
)

// rfc3339 finds RFC 3339 times in a JSON document; group 1 is the offset.
var rfc3339 = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(Z|[+-]\d\d:\d\d)"`)

// Every time a person reads, and every JSON time, is in site.timezone with
// its offset, never in the server's zone: the status, meters, accounts,
// ledger and event endpoints, an event text that names a time given in
// UTC, and the page.
func TestSiteTimezone_EverywhereInTheAPI(t *testing.T) {
	t.Parallel()
	mall := newTestMall(t, 1,
		"tariffs: [{name: standard, kind: flat, price: '1.00'}]\n")
	loc := mall.cfg.Location
	now := time.Now()
	_, siteOff := now.In(loc).Zone()
	if _, localOff := now.Zone(); localOff == siteOff {
		t.Skipf("the server's zone has the site's offset (%s): the test cannot tell them apart", now.In(loc).Format("-07:00"))
	}
	want := now.In(loc).Format("-07:00")
	base, _ := mall.start(t)
	waitFor(t, 10*time.Second, "a reading", func() bool {
		var s struct {
			Polling []struct {
				LastSeen *time.Time `json:"last_seen"`
			} `json:"polling"`
		}
		getJSON(t, base+"/api/v1/status", &s)
		return len(s.Polling) > 0 && s.Polling[0].LastSeen != nil
	})
	const op = "till-secret"
	if code := call(t, "POST", base+"/api/v1/accounts/T-a1/topups", op, `{"amount":"10.00","ref":"TZ-1","channel":"cash"}`, nil); code != 201 && code != 200 {
		t.Fatalf("top-up: %d", code)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Minute)
	if code := call(t, "POST", base+"/api/v1/meters/M-a1/relay", op,
		`{"state":"on","reason":"tz check","until":"`+until.Format(time.RFC3339)+`"}`, nil); code != 200 {
		t.Fatalf("override: %d", code)
	}

	get := func(path string) string {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer screen-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, raw)
		}
		return string(raw)
	}
	for _, path := range []string{"/api/v1/status", "/api/v1/meters", "/api/v1/meters/M-a1", "/api/v1/accounts",
		"/api/v1/accounts/T-a1", "/api/v1/accounts/T-a1/ledger"} {
		doc := get(path)
		times := rfc3339.FindAllStringSubmatch(doc, -1)
		if len(times) == 0 {
			t.Errorf("GET %s: no time at all in %.200s", path, doc)
		}
		for _, m := range times {
			if m[1] != want {
				t.Errorf("GET %s: time %s; want the site's offset %s", path, m[0], want)
			}
		}
	}
	var override string
	for _, e := range readEvents(t, base) {
		b, _ := json.Marshal(e)
		for _, m := range rfc3339.FindAllStringSubmatch(string(b), -1) {
			if m[1] != want {
				t.Errorf("event %s: time %s; want the site's offset %s", e.Kind, m[0], want)
			}
		}
		if e.Kind == "relay_override" {
			override = e.Text
		}
	}
	if wantText := until.In(loc).Format("2006-01-02 15:04 -07:00"); !strings.Contains(override, wantText) {
		t.Errorf("override event %q; want its expiry in the site's zone, %q", override, wantText)
	}
	page := get("/")
	if zone := mall.cfg.Site.Timezone + " (UTC" + want + ")"; !strings.Contains(html.UnescapeString(page), zone) {
		t.Errorf("the page does not say its times are in %s", zone)
	}
}

// readEvents returns the stored events, oldest first, from the stream.
func readEvents(t *testing.T, base string) []web.EventView {
	t.Helper()
	var out []web.EventView
	resp := sse(t, t.Context(), base+"/api/v1/events", "0")
	timeout := time.After(time.Second)
	for {
		select {
		case e, ok := <-resp:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-timeout:
			return out
		}
	}
}
