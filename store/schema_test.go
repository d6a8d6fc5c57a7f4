package store

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mallgrid/billing"
)

// fixtureT0 is when the fixtures' data starts (testdata/schema/make).
var fixtureT0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// copyFixture copies testdata/schema/vN.db to a temporary file: a fixture
// is opened read-write (upgraded), never in place.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	in, err := os.Open(filepath.Join("testdata", "schema", name+".db"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "mallgrid.db")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each schema's fixture, written by that schema's code, is upgraded to
// SchemaVersion by Open with all its data there: readings, interval
// energy, balances and entries, events, breaks, alarms, audit chain,
// samples, outbox deliveries, corrections, the uplink outbox and invoices
// — what that version had.
//
// v2-early is schema 2 as its first commit wrote it: latest readings still
// JSON and interval energy in a bucket per meter, both changed later under
// the same schema version.
func TestOpen_UpgradesEverySchema(t *testing.T) {
	type fixture struct {
		name string
		n    int
	}
	fixtures := []fixture{{"v2-early", 2}}
	for n := 1; n <= SchemaVersion; n++ {
		fixtures = append(fixtures, fixture{fmt.Sprintf("v%d", n), n})
	}
	for _, f := range fixtures {
		n := f.n
		t.Run(f.name, func(t *testing.T) {
			path := copyFixture(t, f.name)
			before, err := Inspect(path)
			if err != nil {
				t.Fatal(err)
			}
			if before.Schema != n {
				t.Fatalf("fixture v%d is schema %d", n, before.Schema)
			}
			upgraded := 0
			db, err := Open(path, Options{BeforeUpgrade: func(from int, _ *DB) error { upgraded = from; return nil }})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
				t.Fatalf("schema after Open %d, %v; want %d", v, err, SchemaVersion)
			}
			if want := n; n == SchemaVersion && upgraded != 0 || n < SchemaVersion && upgraded != want {
				t.Errorf("BeforeUpgrade called with %d; want %d (0: not called)", upgraded, want*btoi(n < SchemaVersion))
			}
			if db.ID() == "" || before.ID != "" && db.ID() != before.ID {
				t.Errorf("identity %q after the upgrade, %q before; want kept, or given where there was none", db.ID(), before.ID)
			}
			checkFixture(t, db, n)
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func checkFixture(t *testing.T, db *DB, n int) {
	t.Helper()
	latest, err := db.LatestReadings()
	if err != nil {
		t.Fatal(err)
	}
	wantM1 := int64(2000)
	if n == 1 {
		wantM1 = 1750 // schema 1's cycles start at 1000, not after it
	}
	if latest["M-1"].ImportWh != wantM1 || latest["M-2"].ImportWh != 5300 || latest["M-1"].Relay != "closed" || latest["M-2"].Relay != "open" {
		t.Errorf("latest readings %+v; want M-1 at %d Wh closed, M-2 at 5300 Wh open", latest, wantM1)
	}
	if c := latest["M-1"].Counters; len(c) != 1 || c[0] != (Counter{"export_kwh", 7}) {
		t.Errorf("M-1's counters %v; want export_kwh 7", c)
	}
	var wh int64
	iv, err := db.Intervals("M-1", fixtureT0.Add(-time.Hour), fixtureT0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range iv {
		wh += i.Wh
	}
	if len(iv) != 4 || wh != 1000 {
		t.Errorf("M-1's intervals %v; want 4 slots, 1000 Wh", iv)
	}
	if n < 2 {
		return
	}
	// The ledger.
	balances := map[string]billing.Money{"T-1": 119 * billing.Yuan, "T-2": 45 * billing.Yuan}
	entries := 8
	if n >= 8 {
		balances["T-1"] -= 20 * billing.Yuan // PAY-3 reversed
		balances["T-2"] += 3 * billing.Yuan  // an adjustment
		entries += 2
	}
	if n >= 9 {
		balances["T-2"] += 10 * billing.Yuan // PAY-4
		entries++
	}
	accts, err := db.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]billing.Money{}
	for _, a := range accts {
		got[a.ID] = a.Balance
	}
	if len(got) != len(balances) || got["T-1"] != balances["T-1"] || got["T-2"] != balances["T-2"] {
		t.Errorf("balances %v; want %v", got, balances)
	}
	if c := countEntries(t, db); c != entries {
		t.Errorf("%d entries; want %d", c, entries)
	}
	if n < 3 {
		return
	}
	evs, err := db.LastEvents(100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
	}
	if kinds["reading"] != 4 || kinds["meter_offline"] != 2 || kinds["meter_online"] != 1 {
		t.Errorf("events by kind %v; want 4 reading, 2 meter_offline, 1 meter_online", kinds)
	}
	if br, err := db.Breaks(); err != nil || len(br) != 1 || br[0].Kind != "baseline" {
		t.Errorf("breaks %v, %v; want M-1's baseline", br, err)
	}
	// M-2's offline episode is open: an active alarm, raised when it was
	// stored (schema 5 on) or derived by the upgrade to 5.
	active, err := db.Alarms(AlarmActive, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].Kind != "meter_offline" || active[0].Subject != "M-2" {
		t.Errorf("active alarms %+v; want M-2's meter_offline", active)
	}
	if n < 5 {
		return
	}
	chain, err := db.CheckAuditChain()
	if err != nil || chain.Records != 2 || chain.Fault != nil {
		t.Errorf("audit chain %+v, %v; want 2 records, whole", chain, err)
	}
	if s, err := db.Samples("M-1", fixtureT0, fixtureT0.Add(3*time.Hour)); err != nil || len(s) != 4 {
		t.Errorf("M-1's samples %v, %v; want 4", s, err)
	}
	if n < 6 {
		return
	}
	ds, err := db.Deliveries("", 10)
	if err != nil || len(ds) != 2 {
		t.Errorf("deliveries %+v, %v; want the two meter_offline notices", ds, err)
	}
	if n < 8 {
		return
	}
	ci, err := db.Corrections()
	if err != nil || len(ci.Reversed) != 1 || ci.Refs["ADJ-1"] == 0 || ci.Refs["REV-1"] == 0 {
		t.Errorf("corrections %+v, %v; want PAY-3 reversed, ADJ-1 and REV-1 indexed", ci, err)
	}
	if n < 9 {
		return
	}
	if st, err := db.UplinkStats(); err != nil || st.Depth != 1 {
		t.Errorf("uplink outbox %+v, %v; want 1 message", st, err)
	}
	if inv, err := db.Invoices([]string{"PAY-4"}); err != nil || inv["PAY-4"].Title != "Shop 2 Ltd" {
		t.Errorf("invoices %+v, %v; want PAY-4's request", inv, err)
	}
}
