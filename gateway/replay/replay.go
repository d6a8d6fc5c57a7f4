package replay

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/counter"
	"mallgrid/drivers/compere"
	"mallgrid/drivers/meter"
)

// Options say how to replay a captured meter log.
type Options struct {
	// Format of the log: "compere-mqtt" (the default) is one MQTT message
	// a line, "TOPIC {json}" or bare JSON, as captured from Compere meters.
	Format string
	// Tariff prices the accepted energy: "flat:PRICE", PRICE in yuan per
	// kWh as billing.ParsePrice reads it ("0.8523").
	Tariff string
	// RatedCurrent in amperes of every meter's circuit, for the spike
	// limit (counter.CircuitLimits, three phases); DefaultRatedCurrent if
	// zero.
	RatedCurrent int
	// Period is the meters' typical upload period: DefaultPeriod if
	// zero. It bounds which meter clocks are plausible, and spaces the
	// lines when none is (see Replay).
	Period time.Duration
	// Location is the zone the meters' clocks are set in; China Standard
	// Time (UTC+8, no daylight saving) if nil.
	Location *time.Location
}

// Defaults of Options.
const (
	DefaultRatedCurrent = 60               // A, the config's default rated_current
	DefaultPeriod       = 15 * time.Minute // the KPM33Bs' ENY_NOW period in the captured logs
)

// maxReplayLine bounds a line: beyond a MiB is no MQTT message a meter
// sends.
const maxReplayLine = 1 << 20

// Meter is what a replay made of one meter's messages.
type Meter struct {
	Meter    string
	Messages int // complete messages, after joining split ones
	// Readings is how many messages were taken as readings (baseline,
	// accepted, reset); each other message is counted in Rejected.
	Readings int
	Known    bool  // the meter has a baseline; the next two are set only then
	FirstWh  int64 // the first accepted counter
	LastWh   int64 // the last accepted counter
	// AcceptedWh is the energy billed; Charge the whole fen posted for it,
	// Remainder what is carried below a fen.
	AcceptedWh int64
	Charge     billing.Money
	Remainder  billing.Remainder
	HeldWh     int64 // a quarantined jump, not charged until an operator releases it
	// Rejected counts the messages not taken, by counter.Verdict
	// ("zero_frame", "duplicate", …) or by what made them unreadable:
	// RejectBadCounter, RejectIncomplete.
	Rejected map[string]int
	Events   []counter.Event
}

// Reasons a replay rejects a message before validation.
const (
	// RejectBadCounter: zygsz missing, not a decimal, negative, or beyond
	// a TWh.
	RejectBadCounter = "bad_counter"
	// RejectIncomplete: packets of a split message whose last one
	// ("isend":"1") never came before the log or the set ended.
	RejectIncomplete = "incomplete"
)

// Result is the outcome of Replay.
type Result struct {
	Meters    []Meter  // by meter id
	Lines     int      // lines read, blank ones included
	Ignored   int      // lines of other topics, blank lines and # comments
	Malformed []string // "line N: why" for lines that are no message with a meter id
	Price     billing.Price
	// Clock says how the gateway times were made: ClockMeters or
	// ClockLines.
	Clock string
}

// How a replay timed its readings (see Replay).
const (
	ClockMeters = "meter clocks"        // the plausible meter clocks
	ClockLines  = "line index × period" // no plausible meter clock in the log
)

// Log runs a captured log through the validation (billing/counter) and
// pricing (billing.Charge) the daemon uses, meter by meter, and reports
// what would have been billed. Every meter's spike limit is that of a
// three-phase circuit at opt.RatedCurrent (counter.CircuitLimits). Only MQTT_ENY_NOW messages are read (other
// topics are counted as ignored); zygsz is the billing counter, read from
// the JSON number's text as exact Wh, with zyjsz, zyfsz, zypsz and zyvsz as
// the rate counters. A message split over several packets is complete at
// the packet with "isend":"1"; one whose end never came, or that the
// meter's next upload interrupted (compere.Joiner), is incomplete. A
// message all of whose energy values are zero is a zero frame.
//
// The log has no gateway time, so Replay makes one up, the way the
// gateway would have stamped arrivals:
//
//   - Readings are applied in log order; a meter clock never reorders them.
//   - A meter clock ("time", yyyyMMddHHmmss in opt.Location) is plausible
//     when it is not before 2020 (a KPM33B whose clock lost power reports
//     2005) and lies within the log's span — lines × Period — of the
//     median of such clocks in the log, so that one meter set to a wrong
//     year cannot move the others.
//   - A message with a plausible clock is stamped with it. One without is
//     stamped with the log's clock — the latest plausible clock seen so
//     far, or the log's first plausible one before that — as the gateway
//     would have stamped it on arrival: a meter whose clock is wrong thus
//     gets the time of the meters around it.
//   - Each meter's stamps only go forward: a message not after the
//     meter's previous one is stamped a second after it.
//   - A log without any plausible clock is timed by position: line n (from
//     1) is at 2000-01-01 00:00 + n × Period, in opt.Location.
//
// The meter's own stamp is still passed to counter.Check, right or wrong,
// as the identity of a reading delivered twice.
//
// Log returns an error for options it cannot use and for a log it
// cannot read; a line that is no message is listed in Malformed and
// skipped, never fatal.
func Log(r io.Reader, opt Options) (*Result, error) {
	price, err := parseReplayTariff(opt.Tariff)
	if err != nil {
		return nil, err
	}
	if opt.Format != "" && opt.Format != "compere-mqtt" {
		return nil, fmt.Errorf("replay: unknown format %q (want compere-mqtt)", opt.Format)
	}
	if opt.RatedCurrent == 0 {
		opt.RatedCurrent = DefaultRatedCurrent
	}
	if opt.RatedCurrent < 0 || opt.RatedCurrent > 100_000 {
		return nil, fmt.Errorf("replay: rated current %d A: want 1..100000", opt.RatedCurrent)
	}
	if opt.Period == 0 {
		opt.Period = DefaultPeriod
	}
	if opt.Period < time.Second || opt.Period > 31*24*time.Hour {
		return nil, fmt.Errorf("replay: period %s: want 1s..744h", opt.Period)
	}
	if opt.Location == nil {
		opt.Location = time.FixedZone("UTC+8", 8*60*60)
	}

	res := &Result{Price: price}
	msgs, err := readCompereLog(r, opt.Location, res)
	if err != nil {
		return nil, err
	}
	ats := gatewayTimes(msgs, res.Lines, opt, res)

	lim := counter.CircuitLimits(int64(opt.RatedCurrent), 3)
	meters := map[string]*replayMeter{}
	for i, m := range msgs {
		rm := meters[m.id]
		if rm == nil {
			rm = &replayMeter{Meter: Meter{Meter: m.id, Rejected: map[string]int{}}}
			meters[m.id] = rm
		}
		if err := rm.apply(m, ats[i], lim, price); err != nil {
			return nil, fmt.Errorf("replay: line %d, meter %s: %w", m.line, m.id, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(meters)) {
		rm := meters[id]
		rm.Known, rm.FirstWh, rm.LastWh = rm.st.Known, rm.first, rm.st.Baseline.Wh
		if q := rm.st.Quarantine; q != nil {
			rm.HeldWh = q.Held.Wh - rm.st.Baseline.Wh
		}
		rm.Remainder = rm.st.Remainder
		res.Meters = append(res.Meters, rm.Meter)
	}
	return res, nil
}

// parseReplayTariff reads "flat:PRICE". Other kinds wait for billing/tariff.
func parseReplayTariff(s string) (billing.Price, error) {
	kind, price, ok := strings.Cut(s, ":")
	if !ok || kind != "flat" {
		return 0, fmt.Errorf("replay: tariff %q: want flat:PRICE, e.g. flat:0.8523 (yuan per kWh)", s)
	}
	p, err := billing.ParsePrice(price)
	if err != nil {
		return 0, fmt.Errorf("replay: tariff %q: %w", s, err)
	}
	if p < 0 {
		return 0, fmt.Errorf("replay: tariff %q: a price is not negative", s)
	}
	return p, nil
}

// replayMeter is a meter during the replay.
type replayMeter struct {
	Meter
	st    counter.State
	first int64
}

func (rm *replayMeter) apply(m compereMsg, at time.Time, lim counter.Limits, price billing.Price) error {
	rm.Messages++
	if m.reject != "" {
		rm.Rejected[m.reject]++
		return nil
	}
	r := m.reading
	r.At = at
	o := counter.Check(rm.st, r, lim)
	if o.Event != nil {
		rm.Events = append(rm.Events, *o.Event)
	}
	if o.Verdict.Refused() {
		// Refused readings still leave their mark: a lower run's
		// evidence, a held jump.
		rm.Rejected[string(o.Verdict)]++
		rm.st = o.Next
		return nil
	}
	rm.Readings++
	if o.Verdict == counter.Baseline {
		rm.first = r.Wh
	}
	if o.Wh > 0 {
		fen, rem, err := billing.Charge(o.Next.Remainder, o.Wh, price)
		if err != nil {
			return err
		}
		rm.AcceptedWh += o.Wh
		rm.Charge += fen
		o.Next.Remainder = rem
	}
	rm.st = o.Next
	return nil
}

// compereMsg is one complete MQTT_ENY_NOW message of a log.
type compereMsg struct {
	line    int // of its last packet (its first, if it never completed), from 1
	id      string
	reading counter.Reading // At not set
	reject  string          // why it cannot be a reading, or ""
}

// readCompereLog reads the log's MQTT_ENY_NOW messages in order, joining
// split ones (compere.Joiner: a set whose end never came, or that another
// began before it ended, is one incomplete message), and counts the rest
// in res.
func readCompereLog(r io.Reader, loc *time.Location, res *Result) ([]compereMsg, error) {
	var (
		msgs  []compereMsg
		j     compere.Joiner
		first = map[string]int{} // meter id → line of its open set's first packet
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxReplayLine)
	for sc.Scan() {
		res.Lines++
		p, skip, err := parseCompereLine(sc.Bytes())
		switch {
		case err != nil:
			res.Malformed = append(res.Malformed, fmt.Sprintf("line %d: %v", res.Lines, err))
			continue
		case skip:
			res.Ignored++
			continue
		}
		msg, ok, lost := j.Add(p)
		if lost != nil {
			msgs = append(msgs, compereMsg{line: cmp.Or(first[p.ID], res.Lines), id: p.ID, reject: RejectIncomplete})
			delete(first, p.ID)
		}
		switch {
		case ok:
			delete(first, p.ID)
			msgs = append(msgs, compereMessage(res.Lines, msg, loc))
		case p.End: // the end of a set dropped as too large
			delete(first, p.ID)
		default:
			if _, open := first[p.ID]; !open {
				first[p.ID] = res.Lines
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("replay: line %d is longer than %d bytes", res.Lines+1, maxReplayLine)
		}
		return nil, fmt.Errorf("replay: read line %d: %w", res.Lines+1, err)
	}
	for _, l := range j.Flush() {
		msgs = append(msgs, compereMsg{line: first[l.ID], id: l.ID, reject: RejectIncomplete})
	}
	return msgs, nil
}

// parseCompereLine reads "TOPIC {json}" or bare JSON through the driver's
// parser. skip is set for a blank line, a # comment, another topic, or bare
// JSON with no energy counter. A log may hold meter ids of any length
// (test logs, renamed meters): only a missing one is an error.
func parseCompereLine(line []byte) (p compere.Packet, skip bool, err error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return p, true, nil
	}
	topic, bare := string(compere.TopicEnyNow), line[0] == '{'
	if !bare {
		t, rest, _ := bytes.Cut(line, []byte(" "))
		topic, line = string(t), bytes.TrimSpace(rest)
		if compere.TopicOf(topic) != compere.TopicEnyNow {
			return p, true, nil
		}
	}
	p, err = compere.Parse(topic, line)
	if err != nil && !errors.Is(err, compere.ErrID) {
		return p, false, err
	}
	if bare && !p.HasEnergy() {
		return compere.Packet{}, true, nil
	}
	if p.ID == "" {
		return p, false, errors.New("no meter id")
	}
	return p, false, nil
}

// compereMessage turns a complete message into a reading: zygsz the
// billing counter, zyjsz, zyfsz, zypsz and zyvsz the rate counters, all
// exact Wh (compere.Energy).
func compereMessage(line int, p compere.Packet, loc *time.Location) compereMsg {
	m := compereMsg{line: line, id: p.ID}
	dec, err := compere.Decode(p, loc)
	e, ok := dec.(*compere.Energy)
	if err != nil || !ok || !e.Import.OK {
		m.reject = RejectBadCounter
		return m
	}
	m.reading.Wh = e.Import.Wh
	if r := e.Rates; r[0].OK && r[1].OK && r[2].OK && r[3].OK {
		// counter.Reading's order is the driver's: sharp, peak, flat, valley.
		m.reading.RatesWh = &[4]int64{r[0].Wh, r[1].Wh, r[2].Wh, r[3].Wh}
	}
	// The clock as sent, even a wrong one: gatewayTimes judges it, and
	// counter.Check takes it as the identity of a redelivery.
	m.reading.MeterTime = e.Clock
	m.reading.ZeroFrame = e.ZeroFrame
	return m
}

// gatewayTimes gives each message the gateway time Replay documents.
func gatewayTimes(msgs []compereMsg, lines int, opt Options, res *Result) []time.Time {
	ats := make([]time.Time, len(msgs))
	floor := time.Date(2020, 1, 1, 0, 0, 0, 0, opt.Location)
	var clocks []time.Time
	for _, m := range msgs {
		if t := m.reading.MeterTime; !t.Before(floor) {
			clocks = append(clocks, t)
		}
	}
	if len(clocks) > 0 {
		sorted := slices.SortedFunc(slices.Values(clocks), time.Time.Compare)
		median := sorted[len(sorted)/2]
		span := time.Duration(min(int64(lines), int64(1<<62)/int64(opt.Period))) * opt.Period
		plausible := func(t time.Time) bool {
			d := t.Sub(median)
			return !t.Before(floor) && d <= span && d >= -span
		}
		var logClock time.Time
		for _, m := range msgs {
			if plausible(m.reading.MeterTime) {
				logClock = m.reading.MeterTime
				break
			}
		}
		if !logClock.IsZero() {
			res.Clock = ClockMeters
			prev := map[string]time.Time{}
			for i, m := range msgs {
				at := logClock
				if t := m.reading.MeterTime; plausible(t) {
					at = t
					if t.After(logClock) {
						logClock = t
					}
				}
				if p, ok := prev[m.id]; ok && !at.After(p) {
					at = p.Add(time.Second)
				}
				ats[i], prev[m.id] = at, at
			}
			return ats
		}
	}
	res.Clock = ClockLines
	epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, opt.Location)
	for i, m := range msgs {
		ats[i] = epoch.Add(time.Duration(m.line) * opt.Period)
	}
	return ats
}

// replayJSON is one meter in WriteJSON's array.
type replayJSON struct {
	Meter       string  `json:"meter"`
	Messages    int     `json:"messages"`
	Readings    int     `json:"readings"`
	FirstKWh    *string `json:"first_kwh"`
	LastKWh     *string `json:"last_kwh"`
	AcceptedKWh string  `json:"accepted_kwh"`
	// Charge is the energy's price to the nearest fen (billing.Settle);
	// Posted the whole fen the ledger would have posted, Remainder what
	// it would carry below a fen.
	Charge    string         `json:"charge"`
	Posted    string         `json:"posted"`
	Remainder string         `json:"remainder"`
	HeldKWh   string         `json:"held_kwh"`
	Rejected  map[string]int `json:"rejected"`
	Events    []eventJSON    `json:"events"`
}

type eventJSON struct {
	Kind string `json:"kind"`
	At   string `json:"at"`
	Text string `json:"text"`
}

// rejectKeys are the keys every meter's "rejected" object has, so that a
// script can read a count without checking that it is there.
func rejectKeys() []string {
	return []string{
		string(counter.ZeroFrame), string(counter.Duplicate), string(counter.ClockBack),
		string(counter.LowerPending), string(counter.Quarantined), string(counter.Invalid),
		RejectBadCounter, RejectIncomplete,
	}
}

// WriteJSON writes one array with an object per meter: energy as exact
// kWh strings with three decimals, money as decimal strings ("charge":
// "50.71" for 50.707 kWh at 1.00, of which "posted": "50.70" in whole fen
// and "remainder": "0.007" carried).
func (res *Result) WriteJSON(w io.Writer) error {
	out := make([]replayJSON, 0, len(res.Meters))
	for _, m := range res.Meters {
		j := replayJSON{
			Meter: m.Meter, Messages: m.Messages, Readings: m.Readings,
			AcceptedKWh: meter.FormatKWh(m.AcceptedWh), Charge: billing.Settle(m.Charge, m.Remainder).String(),
			Posted: m.Charge.String(), Remainder: m.Remainder.String(), HeldKWh: meter.FormatKWh(m.HeldWh),
			Rejected: map[string]int{}, Events: []eventJSON{},
		}
		if m.Known {
			first, last := meter.FormatKWh(m.FirstWh), meter.FormatKWh(m.LastWh)
			j.FirstKWh, j.LastKWh = &first, &last
		}
		for _, k := range rejectKeys() {
			j.Rejected[k] = m.Rejected[k]
		}
		for _, e := range m.Events {
			j.Events = append(j.Events, eventJSON{Kind: string(e.Kind), At: e.At.Format(time.RFC3339), Text: e.String()})
		}
		out = append(out, j)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes a table per meter for people, and what the replay
// assumed.
func (res *Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range res.Meters {
		fmt.Fprintf(tw, "meter %s\n", m.Meter)
		fmt.Fprintf(tw, "  messages\t%d\t(%d taken as readings)\n", m.Messages, m.Readings)
		if m.Known {
			fmt.Fprintf(tw, "  counter\t%s → %s kWh\n", meter.FormatKWh(m.FirstWh), meter.FormatKWh(m.LastWh))
		} else {
			fmt.Fprintf(tw, "  counter\tnone accepted\n")
		}
		fmt.Fprintf(tw, "  accepted\t%s kWh\n", meter.FormatKWh(m.AcceptedWh))
		fmt.Fprintf(tw, "  charge\t%s\t(at %s/kWh: %s posted in whole fen, %s carried)\n", billing.Settle(m.Charge, m.Remainder), res.Price, m.Charge, m.Remainder)
		if m.HeldWh != 0 {
			fmt.Fprintf(tw, "  held\t%s kWh\t(quarantined: not charged until released)\n", meter.FormatKWh(m.HeldWh))
		}
		for _, k := range rejectKeys() {
			if n := m.Rejected[k]; n > 0 {
				fmt.Fprintf(tw, "  rejected %s\t%d\n", k, n)
			}
		}
		for _, e := range m.Events {
			fmt.Fprintf(tw, "  event %s\t%s\t%s\n", e.Kind, e.At.Format(time.DateTime), e)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "%d lines, %d ignored, %d malformed; gateway times from %s\n", res.Lines, res.Ignored, len(res.Malformed), res.Clock)
	for _, s := range res.Malformed {
		fmt.Fprintf(tw, "  %s\n", s)
	}
	return tw.Flush()
}
