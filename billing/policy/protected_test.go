package policy

import (
	"slices"
	"testing"
	"time"
)

func TestNewProtected_Problems(t *testing.T) {
	loc := shanghai(t)
	for _, tt := range []struct {
		name string
		spec ProtectedSpec
		loc  *time.Location
		want []Problem
	}{
		{"no time zone", ProtectedSpec{Weekends: true}, nil, []Problem{
			{"", "no time zone; protected hours are the site's wall-clock times"},
		}},
		{"windows that do not parse", ProtectedSpec{Nightly: []Window{
			{"22:00", "8:00"}, {"", ""}, {"25:00", "07:00"}, {"12:00", "12:60"}, {"1200", "13:00"},
		}}, loc, []Problem{
			{"daily[0].to", `want a time of day HH:MM from 00:00 to 24:00, got "8:00"`},
			{"daily[1].from", "missing; want a time of day like 22:00"},
			{"daily[1].to", "missing; want a time of day like 22:00"},
			{"daily[2].from", `want a time of day HH:MM from 00:00 to 24:00, got "25:00"`},
			{"daily[3].to", `want a time of day HH:MM from 00:00 to 24:00, got "12:60"`},
			{"daily[4].from", `want a time of day HH:MM from 00:00 to 24:00, got "1200"`},
		}},
		{"empty windows", ProtectedSpec{Nightly: []Window{{"08:00", "08:00"}, {"24:00", "00:00"}}}, loc, []Problem{
			{"daily[0].to", "08:00 is where the window starts; a window needs a length (from 22:00 to 08:00 runs across midnight)"},
			{"daily[1].to", "00:00 is where the window starts; a window needs a length (from 22:00 to 08:00 runs across midnight)"},
		}},
		{"the whole day in one", ProtectedSpec{Nightly: []Window{{"00:00", "24:00"}}}, loc, []Problem{
			{"daily", "the windows cover the whole day, so no cut-off could ever happen"},
		}},
		{"the whole day in two", ProtectedSpec{Nightly: []Window{{"22:00", "08:00"}, {"08:00", "22:00"}}}, loc, []Problem{
			{"daily", "the windows cover the whole day, so no cut-off could ever happen"},
		}},
		{"holidays", ProtectedSpec{Holidays: []string{"2026-10-01", "2026-13-01", "2026/10/02", "2026-10-01", "", "2026-02-29"}}, loc, []Problem{
			{"holidays[1]", `want a date like 2026-10-01, got "2026-13-01"`},
			{"holidays[2]", `want a date like 2026-10-01, got "2026/10/02"`},
			{"holidays[3]", "2026-10-01 is already listed at holidays[0]"},
			{"holidays[4]", `want a date like 2026-10-01, got ""`},
			{"holidays[5]", `want a date like 2026-10-01, got "2026-02-29"`},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, got := NewProtected(tt.spec, tt.loc)
			if p.loc != nil || p.daily != nil || p.weekends || p.holidays != nil {
				t.Errorf("got protected hours %+v with problems; want the zero Protected", p)
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

func TestProtected_EndOf(t *testing.T) {
	loc := shanghai(t)
	at := func(s string) time.Time { return wall(t, loc, s) }
	mall := mustProtected(t, mallHours(), loc)
	split := mustProtected(t, ProtectedSpec{Nightly: []Window{{"12:00", "13:30"}, {"13:00", "14:00"}, {"23:00", "24:00"}, {"00:00", "06:00"}}}, loc)
	for _, tt := range []struct {
		name string
		p    Protected
		t    time.Time
		want time.Time // t itself when not protected
	}{
		{"weekday afternoon", mall, at("2026-06-01 15:00"), at("2026-06-01 15:00")},
		{"a window's start is inside", mall, at("2026-06-01 22:00"), at("2026-06-02 08:00")},
		{"a window's end is outside", mall, at("2026-06-02 08:00"), at("2026-06-02 08:00")},
		{"a nanosecond before the end", mall, at("2026-06-02 08:00").Add(-1), at("2026-06-02 08:00")},
		{"after midnight", mall, at("2026-06-02 03:00"), at("2026-06-02 08:00")},
		{"Friday night to Monday morning", mall, at("2026-06-05 22:00"), at("2026-06-08 08:00")},
		{"Saturday noon", mall, at("2026-06-06 12:00"), at("2026-06-08 08:00")},
		{"holiday Friday", mall, at("2026-06-19 10:00"), at("2026-06-22 08:00")},
		{"the night before it", mall, at("2026-06-18 23:00"), at("2026-06-22 08:00")},
		{"National Day week", mall, at("2026-09-30 23:59"), at("2026-10-08 08:00")},
		{"overlapping windows chain", split, at("2026-06-01 12:15"), at("2026-06-01 14:00")},
		{"two windows meeting at midnight", split, at("2026-06-01 23:30"), at("2026-06-02 06:00")},
		{"no protected hours", Protected{}, at("2026-06-06 12:00"), at("2026-06-06 12:00")},
		{"a time given in UTC is read in Shanghai", mall, at("2026-06-01 22:30").UTC(), at("2026-06-02 08:00")},
	} {
		got := tt.p.EndOf(tt.t)
		if !got.Equal(tt.want) {
			t.Errorf("%s: EndOf(%s) = %s; want %s", tt.name, tt.t, got.In(loc), tt.want)
		}
		if contains := tt.p.Contains(tt.t); contains != !tt.want.Equal(tt.t) {
			t.Errorf("%s: Contains(%s) = %v; want %v", tt.name, tt.t, contains, !contains)
		}
		if tt.p.Contains(got) {
			t.Errorf("%s: Contains(EndOf(%s)) = true; want false", tt.name, tt.t)
		}
	}
}
