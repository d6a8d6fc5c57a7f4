package web

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mallgrid/gateway/i18n"
)

// jsBetween returns the text of app.js from the line that begins with
// from up to (not including) the one that begins with to.
func jsBetween(t *testing.T, src, from, to string) string {
	t.Helper()
	i := strings.Index(src, "\n"+from)
	j := strings.Index(src[max(i, 0):], "\n"+to)
	if i < 0 || j < 0 {
		t.Fatalf("app.js has no %q … %q: the test must follow it", from, to)
	}
	return src[i : i+j]
}

// eventArgCases are events of every sentence of the catalog, with each
// arg a value its name's convention must write (money to round, energy and
// durations to group, a time to move into the site's zone), and events
// that cannot be told (the stored text then).
func eventArgCases() []EventView {
	sample := func(name string) string {
		switch {
		case name == "at" || strings.HasSuffix(name, "_at"):
			return "2026-11-30T10:04:05Z"
		case name == "amount" || name == "balance" || strings.HasSuffix(name, "_yuan"):
			return "-1234567.565001"
		case name == "kwh" || strings.HasSuffix(name, "_kwh"):
			return "1234567.5"
		case strings.HasSuffix(name, "_s"):
			return "-7384"
		case strings.HasSuffix(name, "_ms"):
			return "12345"
		}
		switch name {
		case "state":
			return "cut_off"
		case "hold":
			return "protected_hours"
		case "relay":
			return "open"
		case "channel":
			return "wechat"
		case "meter_role":
			return "public"
		case "why":
			return "exhausted"
		case "kind":
			return "bus_down"
		}
		return name + " <x> & 丙"
	}
	var out []EventView
	for _, id := range i18n.IDs() {
		rest, ok := strings.CutPrefix(id, "event_text.")
		if !ok {
			continue
		}
		kind, form, _ := strings.Cut(rest, ".")
		args := map[string]string{}
		if form != "" {
			args["form"] = form
		}
		// Every placeholder's name is in the English sentence, as the
		// catalog test proves for both.
		text := i18n.New(i18n.En, nil).T(id)
		for rest := text; ; {
			i := strings.IndexByte(rest, '{')
			j := strings.IndexByte(rest[max(i, 0):], '}')
			if i < 0 || j < 0 {
				break
			}
			args[rest[i+1:i+j]] = sample(rest[i+1 : i+j])
			rest = rest[i+j+1:]
		}
		out = append(out, EventView{Kind: kind, Args: args, Text: "stored " + id})
	}
	return append(out,
		EventView{Kind: "cut_off", Text: "stored: no args"},
		EventView{Kind: "cut_off", Args: map[string]string{"tenant_name": "T"}, Text: "stored: an arg missing"},
		EventView{Kind: "cut_off", Args: map[string]string{"tenant_name": "T", "balance": "1,00"}, Text: "stored: money not a decimal"},
		EventView{Kind: "cut_off", Args: map[string]string{"tenant_name": "T", "balance": "-0.004"}, Text: "stored: rounds to nothing"},
		EventView{Kind: "cut_off", Args: map[string]string{"tenant_name": "T", "balance": "0.005"}, Text: "stored: half a fen"},
		EventView{Kind: "cut_off", Args: map[string]string{"form": "gone", "tenant_name": "T", "balance": "1"}, Text: "stored: no such form"},
		EventView{Kind: "clock_step", Args: map[string]string{"step_s": "-0", "passed_s": "59", "wall_s": "3600"}, Text: "stored: seconds"},
		EventView{Kind: "clock_step", Args: map[string]string{"step_s": "1.5", "passed_s": "59", "wall_s": "3600"}, Text: "stored: seconds not whole"},
		EventView{Kind: "bypass_suspected", Args: map[string]string{"meter": "M", "kwh": "-0.000", "since_at": "2026-06-30T23:59:59.5+08:00"}, Text: "stored: energy"},
		EventView{Kind: "bypass_suspected", Args: map[string]string{"meter": "M", "kwh": "1", "since_at": "yesterday"}, Text: "stored: not a time"},
		EventView{Kind: "no_such_kind", Args: map[string]string{"a": "b"}, Text: "stored: unknown kind"},
	)
}

// TestAppJS_EventTextAsGo: the script tells a live event in the same words
// as the page does: app.js's eventText, run in Node with the page's
// catalog and zone, against i18n's EventText, for every sentence of both
// catalogs and for events it cannot tell. Skipped where there is no node.
func TestAppJS_EventTextAsGo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH")
	}
	raw, err := assets.ReadFile("assets/static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	// The helpers eventText uses (t, word, fmtTime) and eventText itself.
	helpers := jsBetween(t, src, "  // t returns message id", "  // siteOffset is")
	block := jsBetween(t, src, "  // ---- An event's sentence", "  function toast(")
	cases := eventArgCases()
	in, _ := json.Marshal(cases)
	const zone = "Asia/Shanghai"
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range i18n.Langs() {
		l := i18n.New(lang, loc)
		words, _ := json.Marshal(l.Messages())
		script := "var W = " + string(words) + ", tz = " + `"` + zone + `"` + ";\n" + helpers + block +
			"\nvar out = " + string(in) + ".map(eventText);\nprocess.stdout.write(JSON.stringify(out));\n"
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, node, "-")
		cmd.Stdin = strings.NewReader(script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%s: node: %v\n%s", lang, err, stderr.String())
		}
		var js []string
		if err := json.Unmarshal(got, &js); err != nil || len(js) != len(cases) {
			t.Fatalf("%s: node wrote %q (%v); want %d sentences", lang, got, err, len(cases))
		}
		told := 0
		for i, c := range cases {
			want := l.EventText(c.Kind, c.Args, c.Text)
			if js[i] != want {
				t.Errorf("%s %s %v:\n app.js %q\n go     %q", lang, c.Kind, c.Args, js[i], want)
			}
			if want != c.Text {
				told++
			}
		}
		// Every sentence of the catalog was told, not fallen back from,
		// and four of the eleven odd events (rounding, signs, a time).
		if n := len(cases) - 11 + 4; told != n {
			t.Errorf("%s: %d events told in words; want %d", lang, told, n)
		}
	}
}
