package tariff

import (
	"slices"
	"sync"
	"testing"
	"time"
)

var shanghaiRates = map[string]string{"sharp": "1.50", "peak": "1.20", "flat": "0.80", "valley": "0.35"}

// shanghaiTOU is a commercial time-of-use tariff shaped like the ones
// Chinese provinces publish: peaks morning and evening, valley overnight,
// a sharp window at midday on July and August weekdays, weekends without
// peaks, and holidays all valley. 2026-07-15 is a mall's own holiday
// inside the season, which has no holiday plan of its own.
func shanghaiTOU() Spec {
	weekday := []WindowSpec{
		{"00:00", "08:00", "valley"}, {"08:00", "11:00", "peak"}, {"11:00", "18:00", "flat"},
		{"18:00", "21:00", "peak"}, {"21:00", "22:00", "flat"}, {"22:00", "24:00", "valley"},
	}
	summerWeekday := []WindowSpec{
		{"00:00", "08:00", "valley"}, {"08:00", "11:00", "peak"}, {"11:00", "12:00", "flat"},
		{"12:00", "14:00", "sharp"}, {"14:00", "18:00", "flat"},
		{"18:00", "21:00", "peak"}, {"21:00", "22:00", "flat"}, {"22:00", "24:00", "valley"},
	}
	weekend := []WindowSpec{{"00:00", "08:00", "valley"}, {"08:00", "22:00", "flat"}, {"22:00", "24:00", "valley"}}
	rates := map[string]string{}
	for k, v := range shanghaiRates {
		rates[k] = v
	}
	return Spec{
		Name:  "commercial-tou",
		Kind:  KindTOU,
		Rates: rates,
		Days: []DaySpec{
			{Days: DaysWeekday, Windows: weekday},
			{Days: DaysWeekend, Windows: weekend},
			{Days: DaysHoliday, Windows: []WindowSpec{{"00:00", "24:00", "valley"}}},
		},
		Seasons: []SeasonSpec{{Months: []int{7, 8}, Days: []DaySpec{
			{Days: DaysWeekday, Windows: summerWeekday},
			{Days: DaysWeekend, Windows: weekend},
		}}},
		Holidays: []string{"2026-07-15", "2026-10-01", "2026-10-02", "2026-10-03", "2027-01-01"},
	}
}

func TestTOU_Split_Shanghai(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	at := func(s string) time.Time { return wall(t, sh, s) }
	tr := mustNew(t, shanghaiTOU())
	for _, tt := range []struct {
		name     string
		from, to time.Time
		wh       int64
		want     []wantPart
	}{
		{"weekday whole day: a part per window, exact Wh", at("2026-06-15 00:00"), at("2026-06-16 00:00"), 24000, []wantPart{
			{at("2026-06-15 00:00"), at("2026-06-15 08:00"), 8000, "valley"},
			{at("2026-06-15 08:00"), at("2026-06-15 11:00"), 3000, "peak"},
			{at("2026-06-15 11:00"), at("2026-06-15 18:00"), 7000, "flat"},
			{at("2026-06-15 18:00"), at("2026-06-15 21:00"), 3000, "peak"},
			{at("2026-06-15 21:00"), at("2026-06-15 22:00"), 1000, "flat"},
			{at("2026-06-15 22:00"), at("2026-06-16 00:00"), 2000, "valley"},
		}},
		{"weekend whole day: no peak", at("2026-06-20 00:00"), at("2026-06-21 00:00"), 24000, []wantPart{
			{at("2026-06-20 00:00"), at("2026-06-20 08:00"), 8000, "valley"},
			{at("2026-06-20 08:00"), at("2026-06-20 22:00"), 14000, "flat"},
			{at("2026-06-20 22:00"), at("2026-06-21 00:00"), 2000, "valley"},
		}},
		{"across midnight: one valley part", at("2026-06-15 22:00"), at("2026-06-16 02:00"), 4000, []wantPart{
			{at("2026-06-15 22:00"), at("2026-06-16 02:00"), 4000, "valley"},
		}},
		{"Friday night into Saturday: weekend plan from midnight", at("2026-06-19 21:00"), at("2026-06-20 09:00"), 12000, []wantPart{
			{at("2026-06-19 21:00"), at("2026-06-19 22:00"), 1000, "flat"},
			{at("2026-06-19 22:00"), at("2026-06-20 08:00"), 10000, "valley"},
			{at("2026-06-20 08:00"), at("2026-06-20 09:00"), 1000, "flat"},
		}},
		{"from and to exactly on window edges", at("2026-06-15 08:00"), at("2026-06-15 11:00"), 3000, []wantPart{
			{at("2026-06-15 08:00"), at("2026-06-15 11:00"), 3000, "peak"},
		}},
		{"a minute either side of 08:00", at("2026-06-15 07:59"), at("2026-06-15 08:01"), 2, []wantPart{
			{at("2026-06-15 07:59"), at("2026-06-15 08:00"), 1, "valley"},
			{at("2026-06-15 08:00"), at("2026-06-15 08:01"), 1, "peak"},
		}},
		{"one Wh over two equal windows goes to the earlier", at("2026-06-15 07:59"), at("2026-06-15 08:01"), 1, []wantPart{
			{at("2026-06-15 07:59"), at("2026-06-15 08:00"), 1, "valley"},
			{at("2026-06-15 08:00"), at("2026-06-15 08:01"), 0, "peak"},
		}},
		{"June midday is flat", at("2026-06-15 11:00"), at("2026-06-15 14:00"), 3000, []wantPart{
			{at("2026-06-15 11:00"), at("2026-06-15 14:00"), 3000, "flat"},
		}},
		{"July midday has the sharp window; 1000 Wh in thirds by largest remainder", at("2026-07-13 10:00"), at("2026-07-13 13:00"), 1000, []wantPart{
			{at("2026-07-13 10:00"), at("2026-07-13 11:00"), 334, "peak"},
			{at("2026-07-13 11:00"), at("2026-07-13 12:00"), 333, "flat"},
			{at("2026-07-13 12:00"), at("2026-07-13 13:00"), 333, "sharp"},
		}},
		{"July weekday whole day", at("2026-07-13 00:00"), at("2026-07-14 00:00"), 24000, []wantPart{
			{at("2026-07-13 00:00"), at("2026-07-13 08:00"), 8000, "valley"},
			{at("2026-07-13 08:00"), at("2026-07-13 11:00"), 3000, "peak"},
			{at("2026-07-13 11:00"), at("2026-07-13 12:00"), 1000, "flat"},
			{at("2026-07-13 12:00"), at("2026-07-13 14:00"), 2000, "sharp"},
			{at("2026-07-13 14:00"), at("2026-07-13 18:00"), 4000, "flat"},
			{at("2026-07-13 18:00"), at("2026-07-13 21:00"), 3000, "peak"},
			{at("2026-07-13 21:00"), at("2026-07-13 22:00"), 1000, "flat"},
			{at("2026-07-13 22:00"), at("2026-07-14 00:00"), 2000, "valley"},
		}},
		{"listed holiday on a Thursday: holiday plan", at("2026-10-01 00:00"), at("2026-10-02 00:00"), 24000, []wantPart{
			{at("2026-10-01 00:00"), at("2026-10-02 00:00"), 24000, "valley"},
		}},
		{"holiday in the season, which has no holiday plan: the season's weekend plan", at("2026-07-15 11:00"), at("2026-07-15 14:00"), 3000, []wantPart{
			{at("2026-07-15 11:00"), at("2026-07-15 14:00"), 3000, "flat"},
		}},
		{"month end into the season: split at midnight, sharp from July 1", at("2026-06-30 23:00"), at("2026-07-01 13:00"), 14000, []wantPart{
			{at("2026-06-30 23:00"), at("2026-07-01 00:00"), 1000, "valley"},
			{at("2026-07-01 00:00"), at("2026-07-01 08:00"), 8000, "valley"},
			{at("2026-07-01 08:00"), at("2026-07-01 11:00"), 3000, "peak"},
			{at("2026-07-01 11:00"), at("2026-07-01 12:00"), 1000, "flat"},
			{at("2026-07-01 12:00"), at("2026-07-01 13:00"), 1000, "sharp"},
		}},
		{"season end: August 31 sharp, September 1 flat", at("2026-08-31 13:00"), at("2026-09-01 13:00"), 24000, []wantPart{
			{at("2026-08-31 13:00"), at("2026-08-31 14:00"), 1000, "sharp"},
			{at("2026-08-31 14:00"), at("2026-08-31 18:00"), 4000, "flat"},
			{at("2026-08-31 18:00"), at("2026-08-31 21:00"), 3000, "peak"},
			{at("2026-08-31 21:00"), at("2026-08-31 22:00"), 1000, "flat"},
			{at("2026-08-31 22:00"), at("2026-09-01 00:00"), 2000, "valley"},
			{at("2026-09-01 00:00"), at("2026-09-01 08:00"), 8000, "valley"},
			{at("2026-09-01 08:00"), at("2026-09-01 11:00"), 3000, "peak"},
			{at("2026-09-01 11:00"), at("2026-09-01 13:00"), 2000, "flat"},
		}},
		{"year end into a New Year holiday", at("2026-12-31 21:30"), at("2027-01-01 00:30"), 3000, []wantPart{
			{at("2026-12-31 21:30"), at("2026-12-31 22:00"), 500, "flat"},
			{at("2026-12-31 22:00"), at("2027-01-01 00:00"), 2000, "valley"},
			{at("2027-01-01 00:00"), at("2027-01-01 00:30"), 500, "valley"},
		}},
		{"three days, uneven energy", at("2026-06-19 20:00"), at("2026-06-22 09:00"), 7, []wantPart{
			{at("2026-06-19 20:00"), at("2026-06-19 21:00"), 0, "peak"},
			{at("2026-06-19 21:00"), at("2026-06-19 22:00"), 0, "flat"},
			{at("2026-06-19 22:00"), at("2026-06-20 08:00"), 1, "valley"},
			{at("2026-06-20 08:00"), at("2026-06-20 22:00"), 2, "flat"},
			{at("2026-06-20 22:00"), at("2026-06-21 08:00"), 1, "valley"},
			{at("2026-06-21 08:00"), at("2026-06-21 22:00"), 2, "flat"},
			{at("2026-06-21 22:00"), at("2026-06-22 08:00"), 1, "valley"},
			{at("2026-06-22 08:00"), at("2026-06-22 09:00"), 0, "peak"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.Split(tt.from, tt.to, tt.wh, 0)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			checkParts(t, got, tt.want, shanghaiRates, sh)
		})
	}
}

// TestTOU_Split_OtherZoneInputs shows that windows are read in the zone of
// from: the same instants passed in UTC would be priced by UTC clocks, so
// the pipeline must pass site time; a to in another zone is converted.
func TestTOU_Split_OtherZoneInputs(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	tr := mustNew(t, shanghaiTOU())
	from := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	to := from.Add(time.Hour)

	got, err := tr.Split(from.In(sh), to, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkParts(t, got, []wantPart{{wall(t, sh, "2026-06-15 08:00"), wall(t, sh, "2026-06-15 09:00"), 1000, "peak"}}, shanghaiRates, sh)

	got, err = tr.Split(from, to, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkParts(t, got, []wantPart{{from, to, 1000, "valley"}}, shanghaiRates, time.UTC)
}

var berlinRates = map[string]string{"flat": "0.30", "valley": "0.15"}

func berlinSpec(windows ...WindowSpec) Spec {
	return Spec{
		Name: "berlin", Kind: KindTOU, Rates: map[string]string{"flat": "0.30", "valley": "0.15"},
		Days: []DaySpec{{Days: DaysAll, Windows: windows}},
	}
}

// TestTOU_Split_DST shows windows follow wall time where clocks change
// (Europe/Berlin: forward 2026-03-29 02:00 CET, back 2026-10-25 03:00
// CEST) while energy is spread over absolute time.
func TestTOU_Split_DST(t *testing.T) {
	ber := loadLocation(t, "Europe/Berlin")
	at := func(s string) time.Time { return zoned(t, ber, s) }
	night := mustNew(t, berlinSpec(WindowSpec{"00:00", "06:00", "valley"}, WindowSpec{"06:00", "22:00", "flat"}, WindowSpec{"22:00", "24:00", "valley"}))
	early := mustNew(t, berlinSpec(WindowSpec{"00:00", "02:30", "valley"}, WindowSpec{"02:30", "24:00", "flat"}))
	for _, tt := range []struct {
		name     string
		tariff   Tariff
		from, to time.Time
		wh       int64
		want     []wantPart
	}{
		{"spring night is 7 hours; 06:00 is 04:00 UTC", night, at("2026-03-28 20:00 +0100"), at("2026-03-29 08:00 +0200"), 11000, []wantPart{
			{at("2026-03-28 20:00 +0100"), at("2026-03-28 22:00 +0100"), 2000, "flat"},
			{at("2026-03-28 22:00 +0100"), at("2026-03-29 06:00 +0200"), 7000, "valley"},
			{at("2026-03-29 06:00 +0200"), at("2026-03-29 08:00 +0200"), 2000, "flat"},
		}},
		{"autumn night is 9 hours", night, at("2026-10-24 20:00 +0200"), at("2026-10-25 08:00 +0100"), 13000, []wantPart{
			{at("2026-10-24 20:00 +0200"), at("2026-10-24 22:00 +0200"), 2000, "flat"},
			{at("2026-10-24 22:00 +0200"), at("2026-10-25 06:00 +0100"), 9000, "valley"},
			{at("2026-10-25 06:00 +0100"), at("2026-10-25 08:00 +0100"), 2000, "flat"},
		}},
		{"02:30 happens twice in autumn: valley, flat, valley again, flat", early, at("2026-10-25 00:00 +0200"), at("2026-10-25 04:00 +0100"), 5000, []wantPart{
			{at("2026-10-25 00:00 +0200"), at("2026-10-25 02:30 +0200"), 2500, "valley"},
			{at("2026-10-25 02:30 +0200"), at("2026-10-25 02:00 +0100"), 500, "flat"},
			{at("2026-10-25 02:00 +0100"), at("2026-10-25 02:30 +0100"), 500, "valley"},
			{at("2026-10-25 02:30 +0100"), at("2026-10-25 04:00 +0100"), 1500, "flat"},
		}},
		{"02:00 to 03:00 never happens in spring", early, at("2026-03-29 00:00 +0100"), at("2026-03-29 04:00 +0200"), 3000, []wantPart{
			{at("2026-03-29 00:00 +0100"), at("2026-03-29 03:00 +0200"), 2000, "valley"},
			{at("2026-03-29 03:00 +0200"), at("2026-03-29 04:00 +0200"), 1000, "flat"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.tariff.Split(tt.from, tt.to, tt.wh, 0)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			checkParts(t, got, tt.want, berlinRates, ber)
		})
	}
}

func TestTOU_MaxPrice(t *testing.T) {
	tr := mustNew(t, shanghaiTOU())
	if got, want := tr.MaxPrice(), mustPrice(t, "1.50"); got != want {
		t.Errorf("MaxPrice() = %s; want %s", got, want)
	}
	if got := tr.Name(); got != "commercial-tou" {
		t.Errorf("Name() = %q; want commercial-tou", got)
	}
}

func TestTOU_Split_WindowsInAnyOrder(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	at := func(s string) time.Time { return wall(t, sh, s) }
	tr := mustNew(t, Spec{Name: "unordered", Kind: KindTOU, Rates: map[string]string{"peak": "1.20", "valley": "0.35"},
		Days: []DaySpec{{Days: DaysAll, Windows: []WindowSpec{
			{"22:00", "24:00", "valley"}, {"08:00", "12:00", "peak"}, {"00:00", "08:00", "valley"}, {"12:00", "22:00", "peak"},
		}}}})
	got, err := tr.Split(at("2026-06-15 00:00"), at("2026-06-16 00:00"), 24000, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkParts(t, got, []wantPart{
		{at("2026-06-15 00:00"), at("2026-06-15 08:00"), 8000, "valley"},
		{at("2026-06-15 08:00"), at("2026-06-15 22:00"), 14000, "peak"},
		{at("2026-06-15 22:00"), at("2026-06-16 00:00"), 2000, "valley"},
	}, map[string]string{"peak": "1.20", "valley": "0.35"}, sh)
}

// TestTariff_Split_Concurrent: tariffs are shared by every meter's
// pipeline; under -race this shows Split writes nothing shared.
func TestTariff_Split_Concurrent(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	from := wall(t, sh, "2026-06-30 12:00")
	for _, tr := range []Tariff{mustNew(t, flatSpec()), mustNew(t, shanghaiTOU()), mustNew(t, tieredSpec())} {
		want, err := tr.Split(from, from.Add(36*time.Hour), 36_001, 199_999)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					got, err := tr.Split(from, from.Add(36*time.Hour), 36_001, 199_999)
					if err != nil || !slices.Equal(got, want) {
						t.Errorf("%s: concurrent Split = %v, %v; want %v", tr.Name(), got, err, want)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}
