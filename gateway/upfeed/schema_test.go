package upfeed

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"mallgrid/billing"
	"mallgrid/store"
)

// schemas compiles docs/uplink/<name>.schema.json for each name, with
// formats (date-time) asserted.
func schemas(t *testing.T, names ...string) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	out := make(map[string]*jsonschema.Schema)
	for _, n := range names {
		s, err := c.Compile(filepath.Join("..", "..", "docs", "uplink", n+".schema.json"))
		if err != nil {
			t.Fatalf("schema %s: %v", n, err)
		}
		out[n] = s
	}
	return out
}

func validate(s *jsonschema.Schema, b []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// realMessages makes messages of every kind the Feed makes, from a real
// database, with every optional field somewhere: a top-up with an invoice
// request and one without, a charge, an adjustment, events with and without
// args, a meter never seen, an outbox with and without a backlog.
func realMessages(t *testing.T) []store.UplinkMessage {
	r := newRig(t, 2)
	r.round() // snapshots and a heartbeat over an empty outbox
	if err := r.db.AckUplink(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	r.clock = r.clock.Add(time.Minute)
	r.round() // a heartbeat with nothing waiting: oldest_time null
	r.clock = r.clock.Add(time.Minute)
	r.topUp("T-1", "pay-1", 100, &store.Invoice{Title: "Riverside Tea Ltd", TaxID: "91310000MA1FL0000X", Email: "books@tea.example"})
	r.topUp("T-2", "pay-2", 30, nil)
	r.cycle(250, "M-0001", "M-0002")
	if _, err := r.db.PostEntry(store.Entry{Time: r.clock, Account: "T-2", Kind: store.Adjustment, Amount: -billing.Fen * 5, Actor: "user:ann", Note: "meter test energy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.PostEvents(store.Event{Time: r.clock, Kind: "bus_down", Bus: "rs485-b", Text: "Bus rs485-b is down.", Args: map[string]string{"bus": "rs485-b"}}); err != nil {
		t.Fatal(err)
	}
	r.clock = r.clock.Add(15 * time.Minute)
	r.cycle(1, "M-0001", "M-0002") // read after the quarter: it goes up
	r.round()
	ms := r.outbox(0)
	var have []string
	for _, m := range ms {
		if !slices.Contains(have, m.Kind) {
			have = append(have, m.Kind)
		}
	}
	for _, k := range Kinds {
		if k != KindCommandResult && !slices.Contains(have, k) {
			t.Fatalf("no %s message among %v", k, kinds(ms))
		}
	}
	return ms
}

// Every message the Feed makes, and its envelope, is valid against its
// schema in docs/uplink — and renaming any one field of it (a key anywhere
// in the body, but for an event's free-form args) makes it invalid: the
// schemas name every field, so a renamed field in the code fails here.
func TestSchemas_RealMessages(t *testing.T) {
	sch := schemas(t, "envelope", KindInterval, KindLedger, KindAccounts, KindEvent, KindMeterHealth, KindHeartbeat)
	renamed := 0
	for _, m := range realMessages(t) {
		env, err := Envelope("riverside-plaza", m)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(sch["envelope"], env); err != nil {
			t.Errorf("envelope of %d (%s): %v\n%s", m.Seq, m.Kind, err, env)
		}
		if err := validate(sch[m.Kind], m.Data); err != nil {
			t.Errorf("%s message %d: %v\n%s", m.Kind, m.Seq, err, m.Data)
			continue
		}
		var body any
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatal(err)
		}
		for _, path := range keyPaths(body, nil) {
			b, _ := json.Marshal(renameAt(body, path))
			if err := validate(sch[m.Kind], b); err == nil {
				t.Errorf("%s message %d with %s renamed passes its schema", m.Kind, m.Seq, strings.Join(path, "."))
			}
			renamed++
		}
	}
	for _, field := range []string{`"site"`, `"seq"`, `"data"`} {
		env, _ := Envelope("riverside-plaza", store.UplinkMessage{Seq: 1, Kind: KindEvent, Time: t0, Data: json.RawMessage(`{}`)})
		env = bytes.Replace(env, []byte(field), []byte(`"x`+field[1:]), 1)
		if validate(sch["envelope"], env) == nil {
			t.Errorf("envelope with %s renamed passes", field)
		}
	}
	t.Logf("%d renamed fields refused", renamed)
}

// keyPaths lists the path of every object key in v, arrays' first item
// only (the others have the same keys), args' keys left out.
func keyPaths(v any, at []string) [][]string {
	var out [][]string
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := append(slices.Clone(at), k)
			out = append(out, p)
			if k != "args" {
				out = append(out, keyPaths(c, p)...)
			}
		}
	case []any:
		if len(x) > 0 {
			out = append(out, keyPaths(x[0], append(slices.Clone(at), "0"))...)
		}
	}
	return out
}

// renameAt returns a copy of v with the key at path renamed.
func renameAt(v any, path []string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			switch {
			case k != path[0]:
				out[k] = c
			case len(path) == 1:
				out[k+"_renamed"] = c
			default:
				out[k] = renameAt(c, path[1:])
			}
		}
		return out
	case []any:
		out := slices.Clone(x)
		out[0] = renameAt(x[0], path[1:])
		return out
	}
	return v
}

// Envelope is deterministic: a message read back from the database gives
// the bytes it gave when it was made, in the site's zone.
func TestEnvelope_Deterministic(t *testing.T) {
	r := newRig(t, 1)
	made, err := r.db.EnqueueUplink([]store.UplinkMessage{{Kind: KindEvent, Time: t0.Add(123456789 * time.Nanosecond), Data: json.RawMessage(`{"events": [ ]}`)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Envelope("riverside-plaza", made[0])
	if err != nil {
		t.Fatal(err)
	}
	r.restart()
	back := r.outbox(0)
	b, err := Envelope("riverside-plaza", back[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"site":"riverside-plaza","seq":1,"kind":"event","time":"2026-12-01T10:07:00.123456789+08:00","data":{"events":[]}}`
	if string(a) != want || string(b) != want {
		t.Errorf("envelope made %s\nread back %s\nwant %s", a, b, want)
	}
	if Topic("riverside-plaza", back[0]) != "mallgrid/riverside-plaza/up/event" {
		t.Errorf("topic = %s", Topic("riverside-plaza", back[0]))
	}
	for _, m := range []store.UplinkMessage{{Kind: KindEvent, Data: json.RawMessage(`{}`)}, {Seq: 1, Data: json.RawMessage(`{}`)}} {
		if _, err := Envelope("riverside-plaza", m); err == nil {
			t.Errorf("Envelope(%+v) = nil error; want one", m)
		}
	}
}
