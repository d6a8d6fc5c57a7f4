package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/counter"
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

// Bounds of a replay: a counter beyond a TWh is no mall's (the Modbus
// decoder refuses them too), and a line beyond a MiB is no MQTT message a
// meter sends.
const (
	maxCounterWh  = 1_000_000_000_000
	maxReplayLine = 1 << 20
)

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
	// ("isend":"1") never came.
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
// the packet with "isend":"1". A message all of whose energy values are
// zero is a zero frame.
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
// split ones, and counts the rest in res.
func readCompereLog(r io.Reader, loc *time.Location, res *Result) ([]compereMsg, error) {
	type pending struct {
		fields map[string]any
		line   int
	}
	var (
		msgs  []compereMsg
		split = map[string]*pending{} // meter id → packets so far
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxReplayLine)
	for sc.Scan() {
		res.Lines++
		fields, skip, err := parseCompereLine(sc.Bytes())
		switch {
		case err != nil:
			res.Malformed = append(res.Malformed, fmt.Sprintf("line %d: %v", res.Lines, err))
			continue
		case skip:
			res.Ignored++
			continue
		}
		id, _ := fields["id"].(string)
		if id == "" {
			res.Malformed = append(res.Malformed, fmt.Sprintf("line %d: no meter id", res.Lines))
			continue
		}
		if p := split[id]; p != nil {
			maps.Copy(p.fields, fields)
			fields = p.fields
		}
		if !isEnd(fields["isend"]) {
			if split[id] == nil {
				split[id] = &pending{fields: fields, line: res.Lines}
			}
			continue
		}
		delete(split, id)
		msgs = append(msgs, compereMessage(res.Lines, id, fields, loc))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("replay: line %d is longer than %d bytes", res.Lines+1, maxReplayLine)
		}
		return nil, fmt.Errorf("replay: read line %d: %w", res.Lines+1, err)
	}
	for _, id := range slices.Sorted(maps.Keys(split)) {
		msgs = append(msgs, compereMsg{line: split[id].line, id: id, reject: RejectIncomplete})
	}
	return msgs, nil
}

// isEnyNowKey reports whether k is an energy counter of MQTT_ENY_NOW
// (Compere MQTT protocol V1.9): by them a bare JSON line is known as one.
func isEnyNowKey(k string) bool {
	switch k {
	case "zygsz", "fygsz", "zwgsz", "fwgsz", "zszsz", "zyjsz", "zyfsz", "zypsz", "zyvsz", "zydvsz":
		return true
	}
	return false
}

// parseCompereLine reads "TOPIC {json}" or bare JSON. skip is set for a
// blank line, a # comment, another topic, or bare JSON with no energy
// counter.
func parseCompereLine(line []byte) (fields map[string]any, skip bool, err error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return nil, true, nil
	}
	topic := ""
	if line[0] != '{' {
		t, rest, _ := bytes.Cut(line, []byte(" "))
		topic, line = string(t), bytes.TrimSpace(rest)
		if topic[strings.LastIndexByte(topic, '/')+1:] != "MQTT_ENY_NOW" {
			return nil, true, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // counters are read from their text, never through a float
	if err := dec.Decode(&fields); err != nil {
		return nil, false, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, false, errors.New("text after the JSON object")
	}
	if fields == nil {
		return nil, false, errors.New("not a JSON object")
	}
	if topic == "" && !slices.ContainsFunc(slices.Collect(maps.Keys(fields)), isEnyNowKey) {
		return nil, true, nil
	}
	return fields, false, nil
}

// isEnd: a message is complete at "isend":"1"; one without isend is a
// single packet.
func isEnd(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v != "0"
	case json.Number:
		return v.String() != "0"
	}
	return true
}

// compereMessage turns a complete message's fields into a reading.
func compereMessage(line int, id string, fields map[string]any, loc *time.Location) compereMsg {
	m := compereMsg{line: line, id: id}
	wh, err := counterWh(fields["zygsz"])
	if err != nil {
		m.reject = RejectBadCounter
		return m
	}
	m.reading.Wh = wh
	var rates [4]int64
	hasRates := true
	// The import rate counters in counter.Reading's order: sharp, peak,
	// flat, valley.
	for i, k := range [4]string{"zyjsz", "zyfsz", "zypsz", "zyvsz"} {
		if rates[i], err = counterWh(fields[k]); err != nil {
			hasRates = false
		}
	}
	if hasRates {
		m.reading.RatesWh = &rates
	}
	if s, ok := fields["time"].(string); ok {
		if t, err := time.ParseInLocation("20060102150405", s, loc); err == nil {
			m.reading.MeterTime = t
		}
	}
	m.reading.ZeroFrame = zeroFrame(fields)
	return m
}

// zeroFrame: every energy value of the message is zero, and it has some.
func zeroFrame(fields map[string]any) bool {
	n := 0
	for k, v := range fields {
		if k == "id" || k == "time" || k == "isend" {
			continue
		}
		s, ok := numberText(v)
		if !ok {
			continue
		}
		mant, _, ok := splitDecimal(s)
		if !ok || strings.Trim(mant, "0") != "" {
			return false
		}
		n++
	}
	return n > 0
}

func numberText(v any) (string, bool) {
	switch v := v.(type) {
	case json.Number:
		return v.String(), true
	case string: // some firmware quotes its numbers
		_, _, ok := splitDecimal(v)
		return v, ok
	}
	return "", false
}

// counterWh reads a kWh counter as whole Wh from its decimal text, exactly:
// "31.057" is 31057 Wh. Digits below a Wh (which these meters do not send)
// are dropped — flooring keeps readings in order, so rises still add up to
// the last reading less the first.
func counterWh(v any) (int64, error) {
	s, ok := numberText(v)
	if !ok {
		return 0, fmt.Errorf("counter %v: not a number", v)
	}
	mant, exp, ok := splitDecimal(s)
	if !ok {
		return 0, fmt.Errorf("counter %q: not a decimal", s)
	}
	if strings.HasPrefix(s, "-") && strings.Trim(mant, "0") != "" {
		return 0, fmt.Errorf("counter %q: negative", s)
	}
	mant = strings.TrimLeft(mant, "0")
	shift := exp + 3 // Wh = mant × 10^shift
	switch {
	case mant == "":
		return 0, nil
	case shift < 0 && -shift >= len(mant):
		return 0, nil
	case shift < 0:
		mant = mant[:len(mant)+shift]
	case len(mant)+shift > 13:
		return 0, fmt.Errorf("counter %q: beyond a TWh", s)
	default:
		mant += strings.Repeat("0", shift)
	}
	wh, err := strconv.ParseInt(mant, 10, 64)
	if err != nil || wh > maxCounterWh {
		return 0, fmt.Errorf("counter %q: beyond a TWh", s)
	}
	return wh, nil
}

// splitDecimal splits a JSON number's text ("-12.5e3") into its digits
// without the point ("125") and the power of ten they are scaled by (2).
// Exponents beyond ±10000 are refused: no counter needs them, and their
// digits would be unbounded.
func splitDecimal(s string) (mant string, exp int, ok bool) {
	s = strings.TrimPrefix(s, "-")
	num, e, hasE := strings.Cut(strings.ToLower(s), "e")
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole == "" || !allDigits(whole) || !allDigits(frac) || (hasDot && frac == "") {
		return "", 0, false
	}
	if hasE {
		e = strings.TrimPrefix(e, "+")
		n, err := strconv.Atoi(e)
		if err != nil || e == "" || e[0] == '+' || n < -10000 || n > 10000 {
			return "", 0, false
		}
		exp = n
	}
	return whole + frac, exp - len(frac), true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
