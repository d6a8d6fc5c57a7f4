package tech

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
)

// Found is an address that answered a scan.
type Found struct {
	Address int    `json:"address"`
	Model   string `json:"model,omitempty"` // the catalogued model whose map reads back best
	// Function is the function: key the meter needs in the configuration
	// because it answers its model's registers on the other read code
	// (meter.Model.AltFunction); 0 when the model's own codes answer.
	Function int    `json:"function,omitempty"`
	Import   string `json:"import_kwh,omitempty"`
	Note     string `json:"note,omitempty"` // why no model fits, when none does
}

// Progress is where a scan stands.
type Progress struct {
	Address int // the address being probed; 0 once the scan is over
	Done    int // addresses finished
	Total   int // addresses to scan
	Found   int // addresses that answered so far
}

// ScanResult is what a scan found, and how far it got.
type ScanResult struct {
	From, To int
	// Done is how many addresses were probed to the end: From..From+Done-1.
	// Less than To-From+1 when the scan was interrupted; an address whose
	// probe was cut short is not counted, and not in Found.
	Done  int
	Found []Found
}

// Scan probes each address from..to and reports those that answer, with the
// model each looks like.
//
// Every model is tried with its own function codes and, if it has one, its
// AltFunction. A model fits when every block of its read plan reads without
// error (no exception, no timeout) and the values are plausible (see judge).
// Many meters, and the simulator, answer registers they do not implement
// with zeros, so a model can fit a meter of another model by reading mostly
// zeros (the SDM630 map on an SDM120 reads phase B and C as 0 V): of the
// models that fit, the one with the most non-zero values wins, then the one
// with the fewest zero values, then the earlier one in models.
//
// The first request to an address is a holding-register (FC03) read if any
// model has one, since nearly every Modbus meter answers FC03, if only with
// an exception. If that request times out (on both of the transport's
// tries) the address is taken as absent, so an empty address costs two
// timeouts; a timeout later on (a meter that answers some ranges and
// ignores others) only rules out that model.
//
// progress, if not nil, is called before each address and once at the end
// (Address 0). When ctx ends Scan returns what it found up to the last
// address it finished, and ctx's error.
func Scan(ctx context.Context, t *modbus.Transport, from, to int, models []*meter.Model, progress func(Progress)) (ScanResult, error) {
	cands := candidates(models)
	res := ScanResult{From: from, To: to}
	report := func(a int) {
		if progress != nil {
			progress(Progress{Address: a, Done: res.Done, Total: to - from + 1, Found: len(res.Found)})
		}
	}
	defer report(0)
	for a := from; a <= to; a++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		report(a)
		f, present, err := probe(ctx, t.Client(byte(a)), cands)
		if err != nil {
			return res, err
		}
		if present {
			f.Address = a
			res.Found = append(res.Found, f)
		}
		res.Done++
	}
	return res, nil
}

// candidate is one way to read an address: a model with its own function
// codes, or with its AltFunction.
type candidate struct {
	model    *meter.Model
	plan     meter.Plan
	function int // the function: key the candidate stands for; 0 for the model's own
}

// candidates lists every way to read models, holding-register reads first
// (stable, so models keep their order within a function code).
func candidates(models []*meter.Model) []candidate {
	var cs []candidate
	for _, m := range models {
		cs = append(cs, candidate{model: m, plan: meter.NewPlan(m)})
		if m.AltFunction != 0 {
			if alt, err := m.WithFunction(m.AltFunction); err == nil {
				cs = append(cs, candidate{model: alt, plan: meter.NewPlan(alt), function: int(m.AltFunction)})
			}
		}
	}
	cs = slices.DeleteFunc(cs, func(c candidate) bool { return len(c.plan) == 0 })
	slices.SortStableFunc(cs, func(a, b candidate) int {
		return int(a.plan[0].Function) - int(b.plan[0].Function)
	})
	return cs
}

// probe tries every candidate on one address. It reports whether anything
// answered, and an error when ctx ends or the link itself fails (the port
// gone, the converter unreachable): then no address answers any more, and
// listing each as "matches no model" would hide what to check.
func probe(ctx context.Context, c *modbus.Client, cands []candidate) (Found, bool, error) {
	var (
		best     Found
		bestLive = -1
		bestDead int
		reasons  []string
	)
	for i, cand := range cands {
		rd, firstTimedOut, err := readPlan(ctx, c, cand.plan)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Found{}, false, ctxErr
		}
		if err != nil {
			if errors.Is(err, modbus.ErrNoLink) {
				return Found{}, false, err
			}
			if i == 0 && firstTimedOut {
				return Found{}, false, nil // nothing at this address
			}
			reasons = append(reasons, cand.name()+": "+readFailure(err))
			continue
		}
		live, dead, problem := judge(cand.model, rd)
		if problem != "" {
			reasons = append(reasons, cand.name()+": "+problem)
			continue
		}
		if live > bestLive || live == bestLive && dead < bestDead {
			wh, _ := rd.ImportWh() // judge checked it is there
			best = Found{Model: cand.model.Name, Function: cand.function, Import: meter.FormatKWh(wh)}
			bestLive, bestDead = live, dead
		}
	}
	if bestLive >= 0 {
		return best, true, nil
	}
	return Found{Note: "answers, but matches no catalogued model (" + strings.Join(reasons, "; ") + ")"}, true, nil
}

// readPlan reads plan as meter.Read does, one block at a time, so that it
// can tell a silent address (the first request timed out) from a meter that
// answers some requests and not others.
func readPlan(ctx context.Context, c *modbus.Client, plan meter.Plan) (rd meter.Reading, firstTimedOut bool, err error) {
	for i, b := range plan {
		part, err := meter.Read(ctx, c, meter.Plan{b})
		if err != nil {
			return meter.Reading{}, i == 0 && errors.Is(err, modbus.ErrTimeout), err
		}
		for _, q := range part.Quantities() {
			v, _ := part.Value(q)
			rd.Set(q, v)
		}
	}
	return rd, false, nil
}

// name is the candidate as the technician would configure it.
func (c candidate) name() string {
	if c.function != 0 {
		return fmt.Sprintf("%s function %d", c.model.Name, c.function)
	}
	return c.model.Name
}

// readFailure says briefly why a read failed: the exception code tells a
// technician more than the kind.
func readFailure(err error) string {
	var ex *modbus.ExceptionError
	if errors.As(err, &ex) {
		return fmt.Sprintf("exception %02d", ex.Code)
	}
	if errors.Is(err, meter.ErrBadValue) {
		return "not a number"
	}
	return modbus.ErrorKind(err)
}

// Limits of plausible values. Garbage read as float32 tends to be huge or
// tiny; these bounds are wide enough for any mall's primary values (a
// 2000 A incomer is about 1.4 MW).
const (
	maxEnergyKWh = meter.MaxCounterKWh
	maxMagnitude = 1e7 // W, A or var
)

// judge reports whether rd, read from an unknown meter with model m's map,
// looks like that meter's values, and if so how many of them are non-zero
// (live) and zero (dead). problem says what is implausible, or "" if
// nothing is: every value finite; every energy counter >= 0; a voltage of
// 0 or 50..500 V; a frequency of 0 or 45..65 Hz; a power factor within
// -1..1; and at least one value not zero, since an address that answers
// zeros to everything says nothing about its model.
func judge(m *meter.Model, rd meter.Reading) (live, dead int, problem string) {
	for _, r := range m.Registers {
		q := r.Quantity
		v, ok := rd.Value(q)
		if !ok {
			return 0, 0, fmt.Sprintf("%s not read", q)
		}
		if msg := implausible(q, v); msg != "" {
			return 0, 0, fmt.Sprintf("%s %s", q, msg)
		}
		if v != 0 {
			live++
		} else {
			dead++
		}
	}
	if live == 0 {
		return 0, dead, "every value reads 0"
	}
	return live, dead, ""
}

// implausible returns why v cannot be a value of q, or "".
func implausible(q meter.Quantity, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "is not a number"
	}
	unit := q.Unit()
	out := func() string { return strings.TrimSpace(fmt.Sprintf("%.4g %s", v, unit)) + " is out of range" }
	switch {
	case q.IsEnergy():
		if v < 0 || v > maxEnergyKWh {
			return out()
		}
	case unit == "V":
		if v != 0 && (v < 50 || v > 500) {
			return out()
		}
	case unit == "Hz":
		if v != 0 && (v < 45 || v > 65) {
			return out()
		}
	case unit == "": // power factor
		if math.Abs(v) > 1+1e-6 {
			return out()
		}
	default:
		if math.Abs(v) > maxMagnitude {
			return out()
		}
	}
	return ""
}
