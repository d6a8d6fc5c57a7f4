package tariff

import (
	"slices"
	"testing"
)

func TestNew_Problems(t *testing.T) {
	allDay := func(rate string) []DaySpec {
		return []DaySpec{{Days: DaysAll, Windows: []WindowSpec{{"00:00", "24:00", rate}}}}
	}
	dayNight := []WindowSpec{{"00:00", "08:00", "valley"}, {"08:00", "24:00", "peak"}}
	two := map[string]string{"peak": "1.20", "valley": "0.35"}
	for _, tt := range []struct {
		name string
		spec Spec
		want []Problem
	}{
		{"empty", Spec{}, []Problem{
			{"name", "missing; tenants refer to a tariff by its name"},
			{"kind", "missing; want flat, tou or tiered"},
		}},
		{"unknown kind", Spec{Name: "x", Kind: "tod"}, []Problem{
			{"kind", `want flat, tou or tiered, got "tod"`},
		}},
		{"flat without a price", Spec{Name: "x", Kind: KindFlat}, []Problem{
			{"price", "missing; want a price in yuan per kWh like 1.05"},
		}},
		{"flat price with a comma", Spec{Name: "x", Kind: KindFlat, Price: "1,05"}, []Problem{
			{"price", `want a price in yuan per kWh like 1.05, got "1,05"`},
		}},
		{"flat price finer than a micro-yuan", Spec{Name: "x", Kind: KindFlat, Price: "1.0000001"}, []Problem{
			{"price", `want a price in yuan per kWh like 1.05, got "1.0000001"`},
		}},
		{"flat price zero", Spec{Name: "x", Kind: KindFlat, Price: "0.00"}, []Problem{
			{"price", "want a price above zero, got 0.00"},
		}},
		{"flat price negative", Spec{Name: "x", Kind: KindFlat, Price: "-1"}, []Problem{
			{"price", "want a price above zero, got -1"},
		}},
		{"flat with other kinds' fields", Spec{Name: "x", Kind: KindFlat, Price: "1", Rates: two, Days: allDay("peak"),
			Seasons: []SeasonSpec{{}}, Holidays: []string{"2026-10-01"}, Blocks: []BlockSpec{{Price: "1"}}}, []Problem{
			{"rates", "only for kind tou; this tariff is flat"},
			{"days", "only for kind tou; this tariff is flat"},
			{"seasons", "only for kind tou; this tariff is flat"},
			{"holidays", "only for kind tou; this tariff is flat"},
			{"blocks", "only for kind tiered; this tariff is flat"},
		}},
		{"tiered with a price", Spec{Name: "x", Kind: KindTiered, Price: "1", Blocks: []BlockSpec{{Price: "1"}}}, []Problem{
			{"price", "only for kind flat; this tariff is tiered"},
		}},
		{"tiered without blocks", Spec{Name: "x", Kind: KindTiered}, []Problem{
			{"blocks", "missing; want blocks lowest first, each with up_to_kwh and price, the last with no up_to_kwh"},
		}},
		{"tiered blocks", Spec{Name: "x", Kind: KindTiered, Blocks: []BlockSpec{
			{200, "0.60"}, {150, "0.70"}, {0, "0.80"}, {-5, "x"}, {2_000_000_000, "0.85"}, {500, "0.90"},
		}}, []Problem{
			{"blocks[1].up_to_kwh", "150 kWh is not above the block before (200 kWh); limits count from the start of the month"},
			{"blocks[2].up_to_kwh", "missing; only the last block has no limit"},
			{"blocks[3].up_to_kwh", "want a limit from 1 to 1000000000 kWh, got -5"},
			{"blocks[3].price", `want a price in yuan per kWh like 1.05, got "x"`},
			{"blocks[4].up_to_kwh", "want a limit from 1 to 1000000000 kWh, got 2000000000"},
			{"blocks[5].up_to_kwh", "the last block must have no limit (leave up_to_kwh out), so that all energy has a price"},
		}},
		{"tou rates: bad price, unknown name, unused", Spec{Name: "x", Kind: KindTOU,
			Rates: map[string]string{"peak": "1.20", "peek": "1.30", "valley": "abc", "sharp": "1.50"},
			Days:  []DaySpec{{Days: DaysAll, Windows: dayNight}}}, []Problem{
			{"rates.valley", `want a price in yuan per kWh like 1.05, got "abc"`},
			{"rates.peek", "unknown rate; want sharp, peak, flat or valley"},
			{"rates.sharp", "no window uses it"},
		}},
		{"tou without rates", Spec{Name: "x", Kind: KindTOU, Days: allDay("flat")}, []Problem{
			{"rates", `missing; want a price for each rate the windows use, like peak: "1.20"`},
			{"days[0].windows[0].rate", `"flat" is not one of the rates (none given)`},
		}},
		{"tou windows that do not parse", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{
			{Days: DaysAll, Windows: []WindowSpec{
				{"00:00", "08:00", "valley"}, {"08:00", "25:00", "peak"}, {"23:00", "07:00", "valley"},
				{"8:00", "09:00", "peak"}, {"09:00", "10:00", "peek"}, {"", "", ""}, {"10:00", "1O:00", "peak"},
			}},
		}}, []Problem{
			{"days[0].windows[1].to", `want a time of day HH:MM from 00:00 to 24:00, got "25:00"`},
			{"days[0].windows[2].to", "07:00 is not after from 23:00; a window across midnight is written as two, ending at 24:00 and starting at 00:00"},
			{"days[0].windows[3].from", `want a time of day HH:MM from 00:00 to 24:00, got "8:00"`},
			{"days[0].windows[4].rate", `"peek" is not one of the rates (peak, valley)`},
			{"days[0].windows[5].from", "missing; want a time of day like 08:00"},
			{"days[0].windows[5].to", "missing; want a time of day like 08:00"},
			{"days[0].windows[5].rate", "missing; want one of the rates (peak, valley)"},
			{"days[0].windows[6].to", `want a time of day HH:MM from 00:00 to 24:00, got "1O:00"`},
		}},
		{"tou windows with gaps and an overlap", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{
			{Days: DaysWeekday, Windows: dayNight},
			{Days: DaysWeekend, Windows: []WindowSpec{{"00:00", "08:00", "valley"}, {"13:00", "22:00", "valley"}, {"07:00", "12:00", "peak"}}},
		}}, []Problem{
			{"days[1].windows[2].from", "overlaps days[1].windows[0] from 07:00 to 08:00"},
			{"days[1].windows", "nothing covers 12:00 to 13:00"},
			{"days[1].windows", "nothing covers 22:00 to 24:00"},
		}},
		{"tou day plan without windows", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{
			{Days: DaysAll}, {Days: DaysHoliday, Windows: dayNight},
		}}, []Problem{
			{"days[0].windows", "missing; want windows that cover 00:00 to 24:00"},
		}},
		{"tou day kinds: twice and misspelt", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{
			{Days: DaysWeekday, Windows: dayNight}, {Days: DaysWeekday, Windows: dayNight}, {Days: "weekdays", Windows: dayNight}, {Windows: dayNight},
		}}, []Problem{
			{"days[1].days", "a second weekday plan; the first is days[0]"},
			{"days[2].days", `want weekday, weekend, holiday or all, got "weekdays"`},
			{"days[3].days", "missing; want weekday, weekend, holiday or all"},
		}},
		{"tou without a weekend plan", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{
			{Days: DaysWeekday, Windows: dayNight}, {Days: DaysHoliday, Windows: dayNight},
		}}, []Problem{
			{"days", "no weekend plan; want weekday and weekend plans, or one all plan"},
		}},
		{"tou with all and weekday", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{
			{Days: DaysAll, Windows: dayNight}, {Days: DaysWeekday, Windows: dayNight},
		}}, []Problem{
			{"days[1].days", "weekday beside the all plan at days[0], which already covers every day"},
		}},
		{"tou without day plans", Spec{Name: "x", Kind: KindTOU, Rates: two}, []Problem{
			{"days", "missing; want weekday and weekend plans, or one all plan"},
			{"rates.peak", "no window uses it"},
			{"rates.valley", "no window uses it"},
		}},
		{"tou seasons", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{{Days: DaysAll, Windows: dayNight}},
			Seasons: []SeasonSpec{
				{Months: []int{7, 13, 7}, Days: allDay("peak")},
				{Months: []int{8, 7}},
				{Days: []DaySpec{{Days: DaysWeekday, Windows: dayNight}}},
			}}, []Problem{
			{"seasons[0].months[1]", "want a month from 1 to 12, got 13"},
			{"seasons[0].months[2]", "month 7 is listed twice"},
			{"seasons[1].months[1]", "month 7 is already in seasons[0]"},
			{"seasons[1].days", "missing; want weekday and weekend plans, or one all plan"},
			{"seasons[2].months", "missing; want the months (1 to 12) the season's day plans apply to"},
			{"seasons[2].days", "no weekend plan; want weekday and weekend plans, or one all plan"},
		}},
		{"tou holidays", Spec{Name: "x", Kind: KindTOU, Rates: two, Days: []DaySpec{{Days: DaysAll, Windows: dayNight}},
			Holidays: []string{"2026-10-01", "2026-13-01", "2026/10/02", "2026-10-01", "", "2026-02-29"}}, []Problem{
			{"holidays[1]", `want a date like 2026-10-01, got "2026-13-01"`},
			{"holidays[2]", `want a date like 2026-10-01, got "2026/10/02"`},
			{"holidays[3]", "2026-10-01 is already listed at holidays[0]"},
			{"holidays[4]", `want a date like 2026-10-01, got ""`},
			{"holidays[5]", `want a date like 2026-10-01, got "2026-02-29"`},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, got := New(tt.spec)
			if tr != nil {
				t.Errorf("New returned a tariff with problems")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got problems:")
				for _, p := range got {
					t.Errorf("  %q", p)
				}
				t.Errorf("want:")
				for _, p := range tt.want {
					t.Errorf("  %q", p)
				}
			}
		})
	}
}

func TestNew_Valid(t *testing.T) {
	unordered := Spec{Name: "unordered", Kind: KindTOU, Rates: map[string]string{"peak": "1.2", "valley": "0.3"},
		Days: []DaySpec{
			{Days: DaysHoliday, Windows: []WindowSpec{{"00:00", "24:00", "valley"}}},
			{Days: DaysAll, Windows: []WindowSpec{
				{"22:00", "24:00", "valley"}, {"08:00", "12:00", "peak"}, {"00:00", "08:00", "valley"}, {"12:00", "22:00", "peak"},
			}},
		}}
	for _, spec := range []Spec{flatSpec(), tieredSpec(), shanghaiTOU(), unordered,
		{Name: "one block", Kind: KindTiered, Blocks: []BlockSpec{{Price: "0.5"}}}} {
		tr, problems := New(spec)
		if problems != nil || tr == nil || tr.Name() != spec.Name {
			t.Errorf("New(%q) = %v, %q; want a tariff and no problems", spec.Name, tr, problems)
		}
	}
}

func TestProblem_String(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{{Problem{"rates.peak", "no window uses it"}, "rates.peak: no window uses it"}, {Problem{"", "above the cap"}, "above the cap"}} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q; want %q", tt.p, got, tt.want)
		}
	}
}
