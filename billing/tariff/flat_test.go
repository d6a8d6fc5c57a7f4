package tariff

import (
	"errors"
	"math"
	"testing"
	"time"
)

var flatRates = map[string]string{"flat": "1.05"}

func flatSpec() Spec { return Spec{Name: "standard", Kind: KindFlat, Price: "1.05"} }

func TestFlat_Split(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	at := func(s string) time.Time { return wall(t, sh, s) }
	tr := mustNew(t, flatSpec())
	for _, tt := range []struct {
		name     string
		from, to time.Time
		wh       int64
		want     []wantPart
	}{
		{"one part", at("2026-06-15 07:00"), at("2026-06-15 19:00"), 12345, []wantPart{
			{at("2026-06-15 07:00"), at("2026-06-15 19:00"), 12345, "flat"},
		}},
		{"across midnight: still one part", at("2026-06-15 22:00"), at("2026-06-17 02:00"), 5, []wantPart{
			{at("2026-06-15 22:00"), at("2026-06-17 02:00"), 5, "flat"},
		}},
		{"month end: parts never cross a month start", at("2026-06-30 22:00"), at("2026-07-01 01:00"), 1000, []wantPart{
			{at("2026-06-30 22:00"), at("2026-07-01 00:00"), 667, "flat"},
			{at("2026-07-01 00:00"), at("2026-07-01 01:00"), 333, "flat"},
		}},
		{"year end", at("2026-12-31 23:00"), at("2027-01-01 01:00"), 3, []wantPart{
			{at("2026-12-31 23:00"), at("2027-01-01 00:00"), 2, "flat"},
			{at("2027-01-01 00:00"), at("2027-01-01 01:00"), 1, "flat"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.Split(tt.from, tt.to, tt.wh, 0)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			checkParts(t, got, tt.want, flatRates, sh)
		})
	}
}

func TestFlat_MaxPrice(t *testing.T) {
	tr := mustNew(t, flatSpec())
	if got, want := tr.MaxPrice(), mustPrice(t, "1.05"); got != want || tr.Name() != "standard" {
		t.Errorf("MaxPrice(), Name() = %s, %q; want %s, standard", got, tr.Name(), want)
	}
}

func TestSplit_Errors(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	t0 := wall(t, sh, "2026-06-15 08:00")
	t1 := t0.Add(time.Hour)
	tariffs := []Tariff{mustNew(t, flatSpec()), mustNew(t, shanghaiTOU()), mustNew(t, tieredSpec())}
	for _, tt := range []struct {
		name     string
		from, to time.Time
		wh, mtd  int64
		wantErr  error
	}{
		{"no energy, no parts", t0, t1, 0, 0, nil},
		{"no energy over a backwards interval, no parts", t1, t0, 0, 0, nil},
		{"energy over an empty interval", t0, t0, 1, 0, ErrInterval},
		{"energy over a backwards interval", t1, t0, 1, 0, ErrInterval},
		{"interval too long to measure", t0, t0.AddDate(300, 0, 0), 1, 0, ErrInterval},
		{"negative energy", t0, t1, -1, 0, ErrEnergy},
		{"negative month to date", t0, t1, 1, -1, ErrEnergy},
		{"month to date overflows", t0, t1, 2, math.MaxInt64 - 1, ErrEnergy},
	} {
		for _, tr := range tariffs {
			got, err := tr.Split(tt.from, tt.to, tt.wh, tt.mtd)
			if !errors.Is(err, tt.wantErr) || got != nil {
				t.Errorf("%s: %s.Split = %v, %v; want no parts, %v", tt.name, tr.Name(), got, err, tt.wantErr)
			}
		}
	}
}

// TestSplit_MonotonicClock: a time.Now() with a monotonic reading must be
// priced by its wall clock like any other.
func TestSplit_MonotonicClock(t *testing.T) {
	now := time.Now()
	tr := mustNew(t, flatSpec())
	got, err := tr.Split(now, now.Add(time.Hour), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range got {
		sum += p.Wh
	}
	if sum != 10 || !got[0].From.Equal(now) || !got[len(got)-1].To.Equal(now.Add(time.Hour)) {
		t.Errorf("got %v; want 10 Wh over the hour", got)
	}
}
