package tariff

import (
	"testing"
	"time"
)

var tierRates = map[string]string{"tier 1": "0.60", "tier 2": "0.70", "tier 3": "0.90"}

func tieredSpec() Spec {
	return Spec{Name: "residential-tiers", Kind: KindTiered, Blocks: []BlockSpec{
		{UpToKWh: 200, Price: "0.60"}, {UpToKWh: 400, Price: "0.70"}, {Price: "0.90"},
	}}
}

func TestTiered_Split(t *testing.T) {
	sh := loadLocation(t, "Asia/Shanghai")
	at := func(s string) time.Time { return wall(t, sh, s) }
	tr := mustNew(t, tieredSpec())
	t0 := at("2026-06-15 00:00")
	for _, tt := range []struct {
		name     string
		from, to time.Time
		wh, mtd  int64
		want     []wantPart
	}{
		{"inside the first block", t0, at("2026-06-15 10:00"), 5000, 0, []wantPart{
			{t0, at("2026-06-15 10:00"), 5000, "tier 1"},
		}},
		{"up to the limit exactly stays in the block", t0, at("2026-06-15 10:00"), 1000, 199_000, []wantPart{
			{t0, at("2026-06-15 10:00"), 1000, "tier 1"},
		}},
		{"from the limit starts the next block", t0, at("2026-06-15 10:00"), 1000, 200_000, []wantPart{
			{t0, at("2026-06-15 10:00"), 1000, "tier 2"},
		}},
		{"crossing a block limit: split where the energy crosses it", t0, at("2026-06-15 10:00"), 2000, 199_000, []wantPart{
			{t0, at("2026-06-15 05:00"), 1000, "tier 1"},
			{at("2026-06-15 05:00"), at("2026-06-15 10:00"), 1000, "tier 2"},
		}},
		{"crossing two limits in one interval; instants rounded down to the ns", t0, at("2026-06-15 10:00"), 202_000, 199_000, []wantPart{
			{t0, t0.Add(178217821782), 1000, "tier 1"},
			{t0.Add(178217821782), t0.Add(35821782178217), 200_000, "tier 2"},
			{t0.Add(35821782178217), at("2026-06-15 10:00"), 1000, "tier 3"},
		}},
		{"beyond the last limit", t0, at("2026-06-15 10:00"), 1000, 900_000, []wantPart{
			{t0, at("2026-06-15 10:00"), 1000, "tier 3"},
		}},
		{"month end: the counter starts again on the 1st", at("2026-06-30 20:00"), at("2026-07-01 04:00"), 8000, 399_000, []wantPart{
			{at("2026-06-30 20:00"), at("2026-06-30 21:00"), 1000, "tier 2"},
			{at("2026-06-30 21:00"), at("2026-07-01 00:00"), 3000, "tier 3"},
			{at("2026-07-01 00:00"), at("2026-07-01 04:00"), 4000, "tier 1"},
		}},
		{"a month whose share rounds to nothing still has its part", at("2026-06-30 23:00"), at("2026-07-01 01:00"), 1, 0, []wantPart{
			{at("2026-06-30 23:00"), at("2026-07-01 00:00"), 1, "tier 1"},
			{at("2026-07-01 00:00"), at("2026-07-01 01:00"), 0, "tier 1"},
		}},
		{"across two month starts (a long gap)", at("2026-01-31 00:00"), at("2026-03-01 12:00"), 29*24*1000 + 12*1000, 500_000, []wantPart{
			{at("2026-01-31 00:00"), at("2026-02-01 00:00"), 24000, "tier 3"},
			{at("2026-02-01 00:00"), at("2026-02-09 08:00"), 200_000, "tier 1"},
			{at("2026-02-09 08:00"), at("2026-02-17 16:00"), 200_000, "tier 2"},
			{at("2026-02-17 16:00"), at("2026-03-01 00:00"), 272_000, "tier 3"},
			{at("2026-03-01 00:00"), at("2026-03-01 12:00"), 12000, "tier 1"},
		}},
		{"year end", at("2026-12-31 23:00"), at("2027-01-01 01:00"), 2000, 450_000, []wantPart{
			{at("2026-12-31 23:00"), at("2027-01-01 00:00"), 1000, "tier 3"},
			{at("2027-01-01 00:00"), at("2027-01-01 01:00"), 1000, "tier 1"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.Split(tt.from, tt.to, tt.wh, tt.mtd)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			checkParts(t, got, tt.want, tierRates, sh)
		})
	}
}

func TestTiered_MaxPrice(t *testing.T) {
	if got, want := mustNew(t, tieredSpec()).MaxPrice(), mustPrice(t, "0.90"); got != want {
		t.Errorf("MaxPrice() = %s; want %s", got, want)
	}
}
