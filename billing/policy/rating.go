package policy

import (
	"time"

	"mallgrid/billing"
)

// Hysteresis is how far the balance must clear a level before an account
// moves back to a better state: a warning clears, or a pending cut-off is
// cancelled, only when the balance is more than Hysteresis above the level
// (see the package doc). Getting worse takes the balance at face value.
// One yuan is below any real top-up and above the fen-sized wobble of a
// balance that includes accrued, not yet posted charges, so tenants are
// not sent the same warning twice for one episode.
const Hysteresis = billing.Yuan

// MaxGrace bounds a rating's grace time. Thirty days is beyond any mall's
// credit terms; a longer grace is almost surely a unit typo ("2000h" for
// "200h") that would quietly disable cut-offs.
const MaxGrace = 30 * 24 * time.Hour

// RatingSpec is one credit rating as the YAML config writes it (under
// ratings:). Amounts are decimal yuan read with billing.ParseMoney, so they
// are exact; Grace is a Go duration. The yaml keys are the names
// Problem.Field uses. NewRating fills in no defaults: the config loader
// does, before it calls NewRating.
type RatingSpec struct {
	Name      string `yaml:"name"`      // e.g. "A"; tenants name it as credit_rating
	Warning1  string `yaml:"warning_1"` // balance at or below which the tenant gets warning 1
	Warning2  string `yaml:"warning_2"` // lower (and 0 or more): warning 2
	Overdraft string `yaml:"overdraft"` // how far below zero the balance may go before exhaustion ("0" = none)
	Grace     string `yaml:"grace"`     // time after exhaustion before the cut-off ("2h"; "0s" = at once)
	Restore   string `yaml:"restore"`   // balance at or above which a cut-off account is restored (0 or more)
}

// Rating is a checked credit rating: the levels Evaluate compares a
// balance with. It is a small immutable value, safe to copy and to share.
// The zero Rating has every level at zero, no overdraft and no grace: an
// account is cut off as soon as its balance is below zero (outside
// protected hours) and restored at zero.
type Rating struct {
	name                                   string
	warning1, warning2, overdraft, restore billing.Money
	grace                                  time.Duration
}

// NewRating checks spec and builds its Rating. It returns every problem
// found, not just the first, and the zero Rating when there is any;
// otherwise the problems are nil. A spec is refused when a field is
// missing or does not parse, when warning_2 is below zero or not below
// warning_1, when overdraft or restore is below zero, or when grace is
// negative or longer than MaxGrace.
func NewRating(spec RatingSpec) (Rating, []Problem) {
	var ps problems
	if spec.Name == "" {
		ps.add("name", "missing; tenants refer to a rating by its name (credit_rating)")
	}
	w1, ok1 := parseAmount("warning_1", spec.Warning1, &ps)
	w2, ok2 := parseAmount("warning_2", spec.Warning2, &ps)
	switch {
	case ok2 && w2 < 0:
		ps.add("warning_2", "want 0 or more, got %s; below zero the account is in overdraft, which has its own event", spec.Warning2)
	case ok1 && ok2 && w2 >= w1:
		ps.add("warning_2", "%s is not below warning_1 (%s); warning 2 is the lower, later warning", spec.Warning2, spec.Warning1)
	}
	od, ok := parseAmount("overdraft", spec.Overdraft, &ps)
	if ok && od < 0 {
		ps.add("overdraft", "want how far below zero the balance may go, 0 or more, got %s", spec.Overdraft)
	}
	grace := parseGrace(spec.Grace, &ps)
	restore, ok := parseAmount("restore", spec.Restore, &ps)
	if ok && restore < 0 {
		ps.add("restore", "want 0 or more, got %s; power comes back only once the debt is paid", spec.Restore)
	}
	if len(ps) > 0 {
		return Rating{}, ps
	}
	return Rating{name: spec.Name, warning1: w1, warning2: w2, overdraft: od, restore: restore, grace: grace}, nil
}

// parseAmount reads the amount at field, reporting it when it is missing
// or not a decimal.
func parseAmount(field, s string, ps *problems) (billing.Money, bool) {
	if s == "" {
		ps.add(field, "missing; want an amount in yuan like 100.00")
		return 0, false
	}
	m, err := billing.ParseMoney(s)
	if err != nil {
		ps.add(field, "want an amount in yuan like 100.00, got %q", s)
		return 0, false
	}
	return m, true
}

func parseGrace(s string, ps *problems) time.Duration {
	if s == "" {
		ps.add("grace", `missing; want a duration like 2h or 30m ("0s" cuts off at once)`)
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		ps.add("grace", "want a duration like 2h or 30m, got %q", s)
	case d < 0:
		ps.add("grace", "want 0 or more, got %s", s)
	case d > MaxGrace:
		ps.add("grace", "%s is longer than %s (30 days)", s, MaxGrace)
	}
	return d
}

// Name returns the rating's name, which tenants refer to.
func (r Rating) Name() string { return r.name }

// Warning1 returns the balance at or below which warning 1 is given.
func (r Rating) Warning1() billing.Money { return r.warning1 }

// Warning2 returns the balance at or below which warning 2 is given.
func (r Rating) Warning2() billing.Money { return r.warning2 }

// Overdraft returns how far below zero the balance may go before the
// account is exhausted: exhausted is below −Overdraft.
func (r Rating) Overdraft() billing.Money { return r.overdraft }

// Grace returns the time from exhaustion to the cut-off, before protected
// hours move it.
func (r Rating) Grace() time.Duration { return r.grace }

// Restore returns the balance at or above which a cut-off account is
// restored.
func (r Rating) Restore() billing.Money { return r.restore }

// band is the state a balance is in at face value, for the states below
// exhaustion's cut-off: normal, warning_1, warning_2, overdraft or
// exhausted.
func (r Rating) band(b billing.Money) State {
	switch {
	case b < -r.overdraft:
		return StateExhausted
	case b < 0:
		return StateOverdraft
	case b <= r.warning2:
		return StateWarning2
	case b <= r.warning1:
		return StateWarning1
	}
	return StateNormal
}

// cancelLevel is the balance at or above which a pending cut-off is
// cancelled: Hysteresis clear of the overdraft limit, or the restore level
// if that is lower, so that a balance that would restore a cut-off account
// never lets one be cut.
func (r Rating) cancelLevel() billing.Money {
	return min(-r.overdraft+Hysteresis, r.restore)
}
