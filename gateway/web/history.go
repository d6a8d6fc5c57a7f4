package web

import (
	"fmt"
	"net/http"
	"time"
)

// History is what the chart endpoints read: a meter's power and energy
// over time, and a tenant's daily use and charges. The gateway implements
// it over the store (gateway/history). Errors: ErrNotFound for an unknown
// meter or tenant, ErrInvalid for a range it cannot answer.
type History interface {
	// MeterHistory returns meter's points from the step holding from up to
	// to, one per step.
	MeterHistory(meter string, from, to time.Time, step Step) (HistoryView, error)
	// Usage returns tenant's use and charges per day (site.timezone) from
	// the day holding from up to to.
	Usage(tenant string, from, to time.Time) (UsageView, error)
}

// Step is the span of one history point. StepDay is a calendar day in
// site.timezone (23 or 25 hours where clocks change), not 24 hours.
type Step time.Duration

// The steps a history may be asked in.
const (
	StepMinute  = Step(time.Minute)
	Step5Min    = Step(5 * time.Minute)
	StepQuarter = Step(15 * time.Minute)
	StepHour    = Step(time.Hour)
	StepDay     = Step(24 * time.Hour)
)

var stepNames = []struct {
	name string
	step Step
}{{"1m", StepMinute}, {"5m", Step5Min}, {"15m", StepQuarter}, {"1h", StepHour}, {"1d", StepDay}}

// String is the step as the API writes it: 1m, 5m, 15m, 1h or 1d.
func (s Step) String() string {
	for _, n := range stepNames {
		if n.step == s {
			return n.name
		}
	}
	return time.Duration(s).String()
}

// MaxHistoryPoints bounds one answer: a chart is at most a couple of
// thousand pixels wide, and a longer range is asked in a longer step.
const MaxHistoryPoints = 2000

// HistoryView is GET /api/v1/meters/{id}/history.
type HistoryView struct {
	Meter  string         `json:"meter"`
	From   time.Time      `json:"from"` // the first point's start
	To     time.Time      `json:"to"`
	Step   string         `json:"step"`
	Points []HistoryPoint `json:"points"`
}

// HistoryPoint is one step of a meter's history. Power is whole watts from
// the one-minute samples (null where the step has none); KWh is the energy
// of the step, exact to the Wh (null where it is not known).
type HistoryPoint struct {
	T    time.Time `json:"t"` // the step's start, in site.timezone
	AvgW *int64    `json:"avg_w"`
	MinW *int64    `json:"min_w"`
	MaxW *int64    `json:"max_w"`
	KWh  *string   `json:"kwh"`
}

// UsageView is GET /api/v1/accounts/{tenant}/usage.
type UsageView struct {
	Tenant string      `json:"tenant"`
	From   time.Time   `json:"from"` // the first day's start
	To     time.Time   `json:"to"`
	Step   string      `json:"step"` // "day"
	Days   []UsageDay  `json:"days"`
	Total  UsageWindow `json:"total"` // Window empty
}

// UsageDay is one day of a tenant's use: the energy charged and what it
// cost, in all and by tariff window. Money is decimal yuan, energy kWh,
// both exact.
type UsageDay struct {
	Date    string        `json:"date"` // 2026-11-27, in site.timezone
	T       time.Time     `json:"t"`    // the day's start
	KWh     string        `json:"kwh"`
	Amount  string        `json:"amount"`
	Windows []UsageWindow `json:"windows"` // by window name; none on a day without charges
}

// UsageWindow is the energy and money of one tariff window (peak, flat,
// valley, a tier, …) within a day, or in all.
type UsageWindow struct {
	Window string `json:"window,omitempty"`
	KWh    string `json:"kwh"`
	Amount string `json:"amount"`
}

func (s *Server) historyRoutes(h History) {
	s.handle("GET /api/v1/meters/{id}/history", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		from, to, ok := historyRange(w, q.Get("from"), q.Get("to"))
		if !ok {
			return
		}
		step, ok := parseStep(q.Get("step"))
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("step %q: want 1m, 5m, 15m, 1h or 1d", q.Get("step")))
			return
		}
		if !fewPoints(w, from, to, step) {
			return
		}
		v, err := h.MeterHistory(r.PathValue("id"), from, to, step)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
	s.handle("GET /api/v1/accounts/{tenant}/usage", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		from, to, ok := historyRange(w, q.Get("from"), q.Get("to"))
		if !ok {
			return
		}
		if st := q.Get("step"); st != "" && st != "day" && st != "1d" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("step %q: usage is by day; want day", st))
			return
		}
		if !fewPoints(w, from, to, StepDay) {
			return
		}
		v, err := h.Usage(r.PathValue("tenant"), from, to)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}

// historyRange reads from and to (RFC 3339, both required, from before
// to), or answers 400 with what is wrong.
func historyRange(w http.ResponseWriter, fromText, toText string) (from, to time.Time, ok bool) {
	parse := func(name, v string) (time.Time, bool) {
		if v == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: required, an RFC 3339 time like 2026-11-27T00:00:00+08:00", name))
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %q: want an RFC 3339 time like 2026-11-27T00:00:00+08:00", name, v))
			return time.Time{}, false
		}
		return t, true
	}
	if from, ok = parse("from", fromText); !ok {
		return
	}
	if to, ok = parse("to", toText); !ok {
		return
	}
	if !from.Before(to) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("from %s is not before to %s", fromText, toText))
		return from, to, false
	}
	return from, to, true
}

func parseStep(s string) (Step, bool) {
	for _, n := range stepNames {
		if n.name == s {
			return n.step, true
		}
	}
	return 0, false
}

// fewPoints answers 400 when from..to needs more than MaxHistoryPoints
// steps: the steps from the one holding from to the one holding the last
// instant before to. Days are counted from from itself (web does not know
// the site's midnight, nor where clocks change): the History refuses the
// one more a range may need then.
func fewPoints(w http.ResponseWriter, from, to time.Time, step Step) bool {
	d := time.Duration(step)
	start := from.Truncate(d)
	if step == StepDay {
		start = from
	}
	if n := (to.Sub(start) + d - 1) / d; n > MaxHistoryPoints {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s to %s in steps of %s is %d points; at most %d are answered: ask a longer step or a shorter range",
			from.Format(time.RFC3339), to.Format(time.RFC3339), step, n, MaxHistoryPoints))
		return false
	}
	return true
}
