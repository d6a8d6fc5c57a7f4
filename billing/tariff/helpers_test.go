package tariff

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the zones below on a gateway image without /usr/share/zoneinfo

	"mallgrid/billing"
)

func loadLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// wall reads "2006-01-02 15:04" as wall time in loc. Only for times that
// exist once; DST tests spell the offset out with zoned.
func wall(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatalf("ParseInLocation(%q): %v", s, err)
	}
	return tm
}

// zoned reads "2006-01-02 15:04 -0700" and moves it into loc.
func zoned(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	tm, err := time.Parse("2006-01-02 15:04 -0700", s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return tm.In(loc)
}

func mustNew(t testing.TB, spec Spec) Tariff {
	t.Helper()
	tr, problems := New(spec)
	if problems != nil {
		t.Fatalf("New(%q) problems: %v", spec.Name, problems)
	}
	return tr
}

func mustPrice(t testing.TB, s string) billing.Price {
	t.Helper()
	p, err := billing.ParsePrice(s)
	if err != nil {
		t.Fatalf("ParsePrice(%q): %v", s, err)
	}
	return p
}

// wantPart is an expected Part; its price is looked up by window.
type wantPart struct {
	from, to time.Time
	wh       int64
	window   string
}

// checkParts compares got with want, prices from prices by window, and
// checks every part is in loc.
func checkParts(t *testing.T, got []Part, want []wantPart, prices map[string]string, loc *time.Location) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d parts; want %d", len(got), len(want))
		for _, p := range got {
			t.Logf("  got %s", showPart(p))
		}
		return
	}
	for i, w := range want {
		g := got[i]
		wantPrice := mustPrice(t, prices[w.window])
		if !g.From.Equal(w.from) || !g.To.Equal(w.to) || g.Wh != w.wh || g.Window != w.window || g.Price != wantPrice {
			t.Errorf("part %d: got %s; want %s", i, showPart(g), showPart(Part{From: w.from, To: w.to, Wh: w.wh, Window: w.window, Price: wantPrice}))
		}
		if g.From.Location().String() != loc.String() || g.To.Location().String() != loc.String() {
			t.Errorf("part %d: got zones %s, %s; want %s", i, g.From.Location(), g.To.Location(), loc)
		}
	}
}

func showPart(p Part) string {
	const layout = "2006-01-02 15:04:05.999999999 -0700"
	return fmt.Sprintf("%s → %s %s %s %d Wh", p.From.Format(layout), p.To.Format(layout), p.Window, p.Price, p.Wh)
}
