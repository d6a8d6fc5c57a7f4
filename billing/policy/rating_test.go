package policy

import (
	"slices"
	"testing"
	"time"

	"mallgrid/billing"
)

func TestNewRating_Problems(t *testing.T) {
	with := func(f func(*RatingSpec)) RatingSpec {
		s := ratingA()
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name string
		spec RatingSpec
		want []Problem
	}{
		{"empty", RatingSpec{}, []Problem{
			{"name", "missing; tenants refer to a rating by its name (credit_rating)"},
			{"warning_1", "missing; want an amount in yuan like 100.00"},
			{"warning_2", "missing; want an amount in yuan like 100.00"},
			{"overdraft", "missing; want an amount in yuan like 100.00"},
			{"grace", `missing; want a duration like 2h or 30m ("0s" cuts off at once)`},
			{"restore", "missing; want an amount in yuan like 100.00"},
		}},
		{"amounts that do not parse", with(func(s *RatingSpec) {
			s.Warning1, s.Warning2, s.Overdraft, s.Restore = "1,000", "¥50", "50.0000001", "twenty"
		}), []Problem{
			{"warning_1", `want an amount in yuan like 100.00, got "1,000"`},
			{"warning_2", `want an amount in yuan like 100.00, got "¥50"`},
			{"overdraft", `want an amount in yuan like 100.00, got "50.0000001"`},
			{"restore", `want an amount in yuan like 100.00, got "twenty"`},
		}},
		{"warning 2 below zero", with(func(s *RatingSpec) { s.Warning2 = "-10" }), []Problem{
			{"warning_2", "want 0 or more, got -10; below zero the account is in overdraft, which has its own event"},
		}},
		{"warning 2 at warning 1", with(func(s *RatingSpec) { s.Warning2 = "100.00" }), []Problem{
			{"warning_2", "100.00 is not below warning_1 (100); warning 2 is the lower, later warning"},
		}},
		{"warning 2 above warning 1", with(func(s *RatingSpec) { s.Warning1, s.Warning2 = "50", "100" }), []Problem{
			{"warning_2", "100 is not below warning_1 (50); warning 2 is the lower, later warning"},
		}},
		{"negative overdraft and restore", with(func(s *RatingSpec) { s.Overdraft, s.Restore = "-50", "-1" }), []Problem{
			{"overdraft", "want how far below zero the balance may go, 0 or more, got -50"},
			{"restore", "want 0 or more, got -1; power comes back only once the debt is paid"},
		}},
		{"grace without a unit", with(func(s *RatingSpec) { s.Grace = "2" }), []Problem{
			{"grace", `want a duration like 2h or 30m, got "2"`},
		}},
		{"grace in days", with(func(s *RatingSpec) { s.Grace = "2d" }), []Problem{
			{"grace", `want a duration like 2h or 30m, got "2d"`},
		}},
		{"negative grace", with(func(s *RatingSpec) { s.Grace = "-1h" }), []Problem{
			{"grace", "want 0 or more, got -1h"},
		}},
		{"grace too long", with(func(s *RatingSpec) { s.Grace = "2000h" }), []Problem{
			{"grace", "2000h is longer than 720h0m0s (30 days)"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, got := NewRating(tt.spec)
			if r != (Rating{}) {
				t.Errorf("got rating %+v with problems; want the zero Rating", r)
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

func TestNewRating_Valid(t *testing.T) {
	r, ps := NewRating(RatingSpec{Name: "B", Warning1: "200.50", Warning2: "0", Overdraft: "0", Grace: "720h", Restore: "0.01"})
	if ps != nil {
		t.Fatalf("got problems %v; want none", ps)
	}
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"Name", r.Name(), "B"},
		{"Warning1", r.Warning1(), 200*billing.Yuan + 50*billing.Fen},
		{"Warning2", r.Warning2(), billing.Money(0)},
		{"Overdraft", r.Overdraft(), billing.Money(0)},
		{"Grace", r.Grace(), 720 * time.Hour},
		{"Restore", r.Restore(), billing.Fen},
	} {
		if tt.got != tt.want {
			t.Errorf("%s() = %v; want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestProblem_String(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{{Problem{"grace", "want 0 or more"}, "grace: want 0 or more"}, {Problem{"", "no time zone"}, "no time zone"}} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q; want %q", tt.p, got, tt.want)
		}
	}
}
