package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/billing/counter"
	"mallgrid/billing/tariff"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/alarm"
	"mallgrid/gateway/config"
	"mallgrid/gateway/live"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Pipeline turns each bus cycle into one store transaction: the readings,
// their interval energy, the charges they lead to and each meter's new
// counter state commit together, so a crash keeps all of a cycle or none,
// and a reading is billed once.
//
// Per reading: billing/counter judges the counter against the meter's
// state (zero frames, duplicates, resets, spikes, clock steps); the energy
// it accepts is split over its time span by the tenant's tariff; each part
// is charged in whole fen with the meter's remainder carried. Charges build
// up per meter within a 15-minute slot at one price and are posted to the
// ledger as one entry when the slot (or the price) changes: a meter read
// every 10 s makes about a hundred entries a day, not eight thousand. What
// a meter has accrued but not yet posted is in its state (Open), so the
// account's balance lags its consumption by at most one slot.
type Pipeline struct {
	db      *store.DB
	cfg     *config.Config
	picture *live.Picture
	events  *live.Hub // nil: no one listens
	log     zerolog.Logger
	// afterCommit, if set, runs after each committed cycle (wakes
	// enforcement: the balances changed).
	afterCommit func()
	// committed, if set, is told how long each bus cycle's commit took
	// (the gateway's metrics).
	committed func(took time.Duration)
	// commitFailed, if set, is told each bus cycle's commit that failed
	// (the gateway's metrics).
	commitFailed func(err error)

	mu        sync.Mutex // buses commit from their own goroutines
	meters    map[string]*MeterState
	tenants   map[string]*TenantMonth
	limits    map[string]counter.Limits
	meterCfg  map[string]config.Meter
	rejecting map[string]counter.Verdict // meter id → why its counter is refused, while it is
	models    map[string]*meter.Model    // meter id → its model (with the meter's function code)
	open      map[string]*openWatch      // meter id → its relay's open spell, while it reads open
	minutes   map[string]minuteAcc       // meter id → the minute of power under way (samples.go)
	alarms    *alarm.Evaluator           // the rule alarms' episodes (alarms.go)
	values    alarm.Values               // a reading's values for the rules, reused (alarms.go)
}

// openWatch follows a relay that reads open, for the bypass check: since is
// when the open state was known (read back after a command, or the end of
// the first reading that showed it), and base the counter of the first
// reading begun after that — energy counted before it may have been used
// before the relay opened. Kept in memory only: after a restart the first
// reading that shows the relay open starts a new spell.
type openWatch struct {
	since time.Time
	based bool
	chain int   // the counter chain base is on
	base  int64 // Wh
}

// MeterState is a meter's stored billing state.
type MeterState struct {
	Counter counter.State `json:"counter"`
	Open    *OpenCharge   `json:"open,omitempty"`
	// Bypass is set while the meter's relay reads open but its counter
	// still rises: someone may have bridged the relay.
	Bypass bool `json:"bypass,omitempty"`
	// Unbilled is set while the meter's energy is not charged (a public
	// or main meter, a tenant without a tariff).
	Unbilled bool `json:"unbilled,omitempty"`
	// Exchanged and Released are the results of the last exchange record
	// and release applied, returned again when the same request is sent
	// again (a retry after a lost answer) instead of billing twice.
	Exchanged *web.OperatorResult `json:"exchanged,omitempty"`
	Released  *web.OperatorResult `json:"released,omitempty"`
}

// OpenCharge is energy charged but not yet posted: one meter, one slot,
// one price.
type OpenCharge struct {
	Account string        `json:"account"`
	Chain   int           `json:"chain"` // the counter chain FromWh and ToWh are on
	Slot    time.Time     `json:"slot"`
	Window  string        `json:"window"`
	Price   billing.Price `json:"price"`
	FromWh  int64         `json:"from_wh"`
	ToWh    int64         `json:"to_wh"`
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Amount  billing.Money `json:"amount"` // whole fen, positive: what the entry will debit
}

// TenantMonth is a tenant's energy charged in the current month (site
// time), which tiered tariffs price by.
type TenantMonth struct {
	Month string `json:"month"` // "2026-11"
	Wh    int64  `json:"wh"`
}

const monthLayout = "2006-01"

// reach moves tm on to t's month (site time) if that is later than the
// month it counts, and reports whether t is in the month it counts now. A
// span back-dated into an earlier month (an exchange recorded late) is
// neither counted nor allowed to empty the current month's count.
func (tm *TenantMonth) reach(t time.Time) bool {
	if tm.is(t) {
		return true
	}
	if month := t.Format(monthLayout); month > tm.Month {
		tm.Month, tm.Wh = month, 0
		return true
	}
	return false
}

// is reports whether t (in site time) falls in the month tm counts, without
// formatting t: it runs for every charged reading.
func (tm *TenantMonth) is(t time.Time) bool {
	y, m, _ := t.Date()
	if len(tm.Month) != 7 || tm.Month[4] != '-' {
		return false
	}
	ty, err1 := strconv.Atoi(tm.Month[:4])
	tmn, err2 := strconv.Atoi(tm.Month[5:])
	return err1 == nil && err2 == nil && ty == y && tmn == int(m)
}

// TenantKeyPrefix starts the keys of tenants' month use in the state
// bucket; the other keys are meter ids.
const TenantKeyPrefix = "tenant/"

// chargeSlot is how long one posted charge may span at most.
const chargeSlot = store.IntervalLength

// New loads the meters' billing state from db and returns the pipeline of
// cfg's meters; lv is fed every committed reading, events every committed
// event (nil: no one listens).
func New(db *store.DB, cfg *config.Config, lv *live.Picture, events *live.Hub, log zerolog.Logger) (*Pipeline, error) {
	p := &Pipeline{db: db, cfg: cfg, picture: lv, events: events, log: log,
		meters: make(map[string]*MeterState), tenants: make(map[string]*TenantMonth),
		limits: make(map[string]counter.Limits), meterCfg: make(map[string]config.Meter),
		rejecting: make(map[string]counter.Verdict), models: make(map[string]*meter.Model), open: make(map[string]*openWatch),
		minutes: make(map[string]minuteAcc), alarms: alarm.NewEvaluator(cfg.AlarmRules())}
	for _, m := range cfg.Meters {
		p.limits[m.ID] = counter.CircuitLimits(int64(m.RatedCurrent), 3)
		p.meterCfg[m.ID] = m
		if model, err := cfg.ModelOf(m); err == nil { // validated: only a test's bare config lacks one
			p.models[m.ID] = model
		}
	}
	states, err := db.MeterStates()
	if err != nil {
		return nil, err
	}
	for key, raw := range states {
		if id, ok := strings.CutPrefix(key, TenantKeyPrefix); ok {
			var tm TenantMonth
			if err := json.Unmarshal(raw, &tm); err != nil {
				return nil, fmt.Errorf("state of tenant %s: %w: %v", id, store.ErrCorrupt, err)
			}
			p.tenants[id] = &tm
			continue
		}
		mb, err := DecodeState(raw)
		if err != nil {
			return nil, fmt.Errorf("state of meter %s: %w", key, err)
		}
		p.meters[key] = mb
	}
	if err := p.resumeAlarms(); err != nil {
		return nil, err
	}
	latest, err := db.LatestReadings()
	if err != nil {
		return nil, err
	}
	for id, r := range latest {
		lv.Update(r, r.Time)
		if _, ok := p.meters[id]; !ok {
			// A database from before the ledger: its latest reading was the
			// baseline; go on from it rather than lose the energy since.
			p.meters[id] = &MeterState{Counter: counter.State{Known: true, Baseline: counter.Sample{Wh: r.ImportWh, At: r.Time}}}
		}
	}
	return p, nil
}

// Available returns every tenant's ledger balance less what its meters
// have accrued but not yet posted, read together under the pipeline's lock:
// a cycle that posts a charge moves it from accrued to the ledger in one
// step, so no charge is counted twice or not at all.
func (p *Pipeline) Available() (map[string]billing.Money, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	accts, err := p.db.Accounts()
	if err != nil {
		return nil, err
	}
	out := make(map[string]billing.Money, len(accts))
	for _, a := range accts {
		out[a.ID] = a.Balance
	}
	for _, mb := range p.meters {
		if o := mb.Open; o != nil {
			out[o.Account] -= o.Amount
		}
	}
	return out, nil
}

// Accrued returns what each tenant's meters have been charged but not yet
// posted (their open charges), by tenant: the balance an account will have
// once its slots close is its ledger balance less this.
func (p *Pipeline) Accrued() map[string]billing.Money {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]billing.Money)
	for _, mb := range p.meters {
		if o := mb.Open; o != nil {
			out[o.Account] += o.Amount
		}
	}
	return out
}

// counterEvent is a counter's event as stored: logged too, never sampled.
func (p *Pipeline) counterEvent(meterID string, e *counter.Event) store.Event {
	m := p.meterCfg[meterID]
	p.log.Warn().Str("meter", meterID).Str("tenant", m.Tenant).Str("event", string(e.Kind)).Msg(e.String())
	return store.Event{Time: e.At, Kind: string(e.Kind), Meter: meterID, Tenant: m.Tenant, Text: e.String(), Args: p.counterArgs(meterID, e)}
}

// counterArgs are the facts a counter event's String tells, by
// gateway/i18n's names: counters in kWh ("1234.567"), times in the site's
// zone, counts as they are. A reset that discarded a held jump is form
// "dropped"; an exchange's form is the case of the record applied.
func (p *Pipeline) counterArgs(meterID string, e *counter.Event) map[string]string {
	args := map[string]string{"meter": meterID, "kwh": meter.FormatKWh(e.Wh), "baseline_kwh": meter.FormatKWh(e.BaselineWh)}
	switch e.Kind {
	case counter.EventCounterLower:
		args["needed"] = strconv.Itoa(e.Needed)
	case counter.EventLowerCleared:
		args["readings"] = strconv.Itoa(e.Readings)
	case counter.EventReset:
		args["readings"], args["first_kwh"] = strconv.Itoa(e.Readings), meter.FormatKWh(e.FirstWh)
		if e.DroppedWh != 0 {
			args["form"], args["dropped_kwh"] = "dropped", meter.FormatKWh(e.DroppedWh)
		}
	case counter.EventSpike:
		args["elapsed_s"] = strconv.FormatInt(int64(e.Elapsed.Round(time.Second)/time.Second), 10)
		args["limit_kwh"] = meter.FormatKWh(e.Limit)
	case counter.EventReleased:
		args["billed_kwh"] = meter.FormatKWh(e.BilledWh)
	case counter.EventExchange:
		args["first_kwh"], args["billed_kwh"] = meter.FormatKWh(e.FirstWh), meter.FormatKWh(e.BilledWh)
		if e.Case != "" {
			args["form"] = e.Case
		}
	case counter.EventClockBack:
		args["reading_at"] = p.cfg.SiteTime(e.At).Format(time.RFC3339Nano)
		args["latest_at"] = p.cfg.SiteTime(e.Latest).Format(time.RFC3339Nano)
	}
	return args
}

func (p *Pipeline) publish(events []store.Event) {
	if p.events != nil {
		p.events.Publish(events)
	}
}

// cycleWork is what one cycle adds up to before it is committed.
type cycleWork struct {
	sc      store.Cycle
	meters  map[string]*MeterState
	tenants map[string]*TenantMonth
	verdict map[string]counter.Verdict
	wh      map[string]int64
	starts  []time.Time // when the read of each of sc.Readings began
	minutes map[string]minuteAcc
	// valuesOnly are the readings of instantaneous values without the
	// billing counter (valuesOnly), with when each read began: judged and
	// shown, neither billed nor stored as the meter's latest reading.
	valuesOnly []valuesReading
}

type valuesReading struct {
	r     store.Reading
	start time.Time
}

// cycleMark is how far a cycle's work had got before one reading. A
// reading touches only its own meter and its meter's tenant, so only those
// are kept.
type cycleMark struct {
	meter, tenant                   string
	energy, charges, events, breaks int
	meterState                      *MeterState  // nil: the cycle had no state for the meter
	tenantMonth                     *TenantMonth // nil: the cycle had no month for the tenant
}

func newCycleWork() *cycleWork {
	return &cycleWork{meters: make(map[string]*MeterState), tenants: make(map[string]*TenantMonth),
		verdict: make(map[string]counter.Verdict), wh: make(map[string]int64), minutes: make(map[string]minuteAcc)}
}

func (w *cycleWork) mark(meterID, tenant string) cycleMark {
	m := cycleMark{meter: meterID, tenant: tenant, energy: len(w.sc.Energy), charges: len(w.sc.Charges), events: len(w.sc.Events),
		breaks: len(w.sc.Breaks)}
	if mb, ok := w.meters[meterID]; ok {
		m.meterState = mb.clone()
	}
	if tm, ok := w.tenants[tenant]; ok {
		cp := *tm
		m.tenantMonth = &cp
	}
	return m
}

// rollback undoes what one reading added to the cycle.
func (w *cycleWork) rollback(m cycleMark) {
	w.sc.Energy, w.sc.Charges, w.sc.Events = w.sc.Energy[:m.energy], w.sc.Charges[:m.charges], w.sc.Events[:m.events]
	w.sc.Breaks = w.sc.Breaks[:m.breaks]
	if m.meterState != nil {
		w.meters[m.meter] = m.meterState
	} else {
		delete(w.meters, m.meter)
	}
	if m.tenantMonth != nil {
		w.tenants[m.tenant] = m.tenantMonth
	} else {
		delete(w.tenants, m.tenant)
	}
	delete(w.verdict, m.meter)
	delete(w.wh, m.meter)
}

// Cycle implements poll.Sink.
func (p *Pipeline) Cycle(_ context.Context, c poll.Cycle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.alarms.Discard() // whatever was not committed below
	w := newCycleWork()
	for _, res := range c.Results {
		if res.Err != nil {
			p.log.Debug().Str("bus", c.Bus).Str("meter", res.Meter).Err(res.Err).Msg("read failed")
			p.closeDue(w, res.Meter, c.End)
			continue
		}
		if _, ok := res.Reading.ImportWh(); !ok {
			// Instantaneous values alone: a meter that reports over MQTT
			// sends its counters in messages of their own. Nothing to
			// bill, and not the meter's latest reading (which holds the
			// counter the next start bills from).
			r := toStore(res.Reading)
			w.valuesOnly = append(w.valuesOnly, valuesReading{r: r, start: res.Start})
			p.sample(w, res.Reading)
			p.watchValues(w, r)
			continue
		}
		mark := w.mark(res.Meter, p.meterCfg[res.Meter].Tenant)
		if err := p.bill(w, res.Reading, res.Start); err != nil {
			// Only a broken tariff or an overflow gets here: the reading is
			// not billed and leaves nothing in the cycle — no energy, no
			// charge, no event, no state — so the next cycle bills the same
			// energy, once, when the problem is gone.
			p.log.Error().Str("bus", c.Bus).Str("meter", res.Meter).Err(err).Msg("reading not billed")
			w.rollback(mark)
			continue
		}
		w.sc.Readings = append(w.sc.Readings, toStore(res.Reading))
		w.starts = append(w.starts, res.Start)
		p.sample(w, res.Reading)
		p.watch(w, w.sc.Readings[len(w.sc.Readings)-1])
	}
	if len(w.sc.Readings) == 0 && len(w.sc.Charges) == 0 && len(w.meters) == 0 && len(w.sc.Events) == 0 && len(w.sc.Samples) == 0 {
		// Values alone, nothing to store yet: what the alarm rules saw
		// (a condition held so far) and the minute under way are kept.
		p.alarms.Commit()
		for id, acc := range w.minutes {
			p.minutes[id] = acc
		}
		for _, v := range w.valuesOnly {
			p.picture.UpdateValues(v.r, v.start)
		}
		return
	}
	w.sc.MeterState = make(map[string][]byte, len(w.meters)+len(w.tenants))
	for id, mb := range w.meters {
		w.sc.MeterState[id] = EncodeState(mb)
	}
	for id, tm := range w.tenants {
		raw, err := json.Marshal(tm)
		if err != nil { // a struct of a string and an int: cannot fail
			p.log.Error().Str("tenant", id).Err(err).Msg("encode tenant state")
			return
		}
		w.sc.MeterState[TenantKeyPrefix+id] = raw
	}
	began := time.Now()
	events, err := p.db.CommitCycle(w.sc)
	if err != nil {
		// Nothing of the cycle is kept, in the database or here: the next
		// reading's rise covers this cycle's energy, billed once, and its
		// alarms are judged again.
		p.alarms.Discard()
		p.log.Error().Str("bus", c.Bus).Err(err).Msg("commit cycle")
		if p.commitFailed != nil {
			p.commitFailed(err)
		}
		return
	}
	if p.committed != nil {
		p.committed(time.Since(began))
	}
	p.alarms.Commit()
	p.publish(events)
	if p.afterCommit != nil {
		p.afterCommit()
	}
	for id, mb := range w.meters {
		p.meters[id] = mb
		p.noteVerdict(c.Bus, id, w.verdict[id], w.wh[id])
	}
	for id, tm := range w.tenants {
		p.tenants[id] = tm
	}
	for id, acc := range w.minutes {
		p.minutes[id] = acc
	}
	for i, r := range w.sc.Readings {
		p.picture.Update(r, w.starts[i])
	}
	for _, v := range w.valuesOnly {
		p.picture.UpdateValues(v.r, v.start)
	}
}

// state returns the meter's billing state as this cycle sees it: a copy,
// so that a cycle that fails to commit leaves p.meters as it was.
func (p *Pipeline) state(w *cycleWork, id string) *MeterState {
	if mb, ok := w.meters[id]; ok {
		return mb
	}
	mb := &MeterState{}
	if old, ok := p.meters[id]; ok {
		mb = old.clone()
	}
	w.meters[id] = mb
	return mb
}

// clone copies what a cycle may change of a meter's state: the open charge
// is changed in place, the counter state's slices never are (Check copies).
func (mb *MeterState) clone() *MeterState {
	cp := *mb
	if mb.Open != nil {
		o := *mb.Open
		cp.Open = &o
	}
	return &cp
}

func (p *Pipeline) month(w *cycleWork, tenant string) *TenantMonth {
	if tm, ok := w.tenants[tenant]; ok {
		return tm
	}
	tm := &TenantMonth{}
	if old, ok := p.tenants[tenant]; ok {
		*tm = *old
	}
	w.tenants[tenant] = tm
	return tm
}

// bill judges one reading, whose read began at start, charges what it
// accepts and records its energy.
func (p *Pipeline) bill(w *cycleWork, rd meter.Reading, start time.Time) error {
	mb := p.state(w, rd.Meter)
	wh, _ := rd.ImportWh()
	cr := counter.Reading{Wh: wh, At: rd.Time, ZeroFrame: allZero(rd)}
	if rates, ok := rateCounters(rd); ok {
		cr.RatesWh = &rates
	}
	out := counter.Check(mb.Counter, cr, p.limits[rd.Meter])
	w.verdict[rd.Meter], w.wh[rd.Meter] = out.Verdict, wh
	if out.Event != nil {
		w.sc.Events = append(w.sc.Events, p.counterEvent(rd.Meter, out.Event))
	}
	if err := p.apply(w, rd.Meter, mb, out, "gateway", ""); err != nil {
		return err
	}
	p.checkBypass(w, rd, start, mb, out)
	p.closeDue(w, rd.Meter, rd.Time)
	return nil
}

// checkBypass raises bypass_suspected once when a meter's counter rises by
// more than its resolution while its relay reads open, and clears when the
// relay reads closed. Only energy counted after the open state was known
// counts: the reading that first shows the relay open — or that was under
// way when a cut-off command was read back — may hold energy used before
// the relay opened (a 7 kW load uses 20 Wh in the 10 s before a cut-off),
// and such a cut-off is no theft. The relay state a reading begun before a
// command's read-back shows is the read-back's (live.Picture.Update).
func (p *Pipeline) checkBypass(w *cycleWork, rd meter.Reading, start time.Time, mb *MeterState, out counter.Outcome) {
	relay := rd.Relay
	confirmed, at, ok := p.picture.RelayConfirmed(rd.Meter)
	if ok && start.Before(at) {
		relay = meter.RelayUnknown
		if confirmed == meter.RelayOpen.String() {
			relay = meter.RelayOpen
		}
	}
	ow := p.open[rd.Meter]
	if ok && confirmed == meter.RelayOpen.String() && ow != nil && at.After(ow.since) {
		// Cut again after a restore that no reading saw: a new spell, or
		// the energy used while power was back would count against it.
		ow, mb.Bypass = nil, false
	}
	switch relay {
	case meter.RelayClosed:
		mb.Bypass = false
		delete(p.open, rd.Meter)
		return
	case meter.RelayUnknown:
		return
	}
	if ow == nil {
		ow = &openWatch{since: rd.Time}
		if ok && confirmed == meter.RelayOpen.String() && at.Before(ow.since) {
			ow.since = at
		}
		p.open[rd.Meter] = ow
	}
	if start.Before(ow.since) || (out.Verdict != counter.Accepted && out.Verdict != counter.Duplicate) {
		return
	}
	wh, _ := rd.ImportWh()
	if !ow.based || ow.chain != mb.Counter.Chain {
		ow.based, ow.chain, ow.base = true, mb.Counter.Chain, wh
		return
	}
	rise := wh - ow.base
	if mb.Bypass || rise <= p.resolutionWh(rd.Meter, wh) {
		return
	}
	mb.Bypass = true
	m := p.meterCfg[rd.Meter]
	text := fmt.Sprintf("bypass suspected: the relay of %s reads open, yet its counter rose %s kWh since %s",
		rd.Meter, meter.FormatKWh(rise), p.cfg.HumanTime(ow.since))
	p.log.Warn().Str("meter", rd.Meter).Str("tenant", m.Tenant).Int64("wh", rise).Msg(text)
	w.sc.Events = append(w.sc.Events, store.Event{Time: rd.Time, Kind: "bypass_suspected", Meter: rd.Meter, Tenant: m.Tenant, Text: text,
		Args: map[string]string{"meter": rd.Meter, "kwh": meter.FormatKWh(rise), "since_at": p.cfg.SiteTime(ow.since).Format(time.RFC3339)}})
}

// resolutionWh is the least rise meter id's counter shows near wh.
func (p *Pipeline) resolutionWh(id string, wh int64) int64 {
	model := p.models[id]
	if model == nil {
		return 1
	}
	ratio := int64(1)
	if m := p.meterCfg[id]; model.Secondary {
		ratio = max(int64(m.CTRatio), 1) * max(int64(m.PTRatio), 1)
	}
	return model.ResolutionWh(wh, ratio)
}

// apply moves a meter's state on by an outcome: its counter state (the
// remainder stays the meter's own), the chain break it records, and the
// energy and charges of each of its spans. actor and note go with the
// break (who recorded an exchange, and why).
func (p *Pipeline) apply(w *cycleWork, meterID string, mb *MeterState, out counter.Outcome, actor, note string) error {
	remainder := mb.Counter.Remainder
	mb.Counter = out.Next
	mb.Counter.Remainder = remainder
	// The old counter's spans come before the break that starts a new
	// chain, so that a mark of where billing stops or starts on the old
	// chain is stored before the new chain begins.
	b := out.Break
	startsChain := b != nil && !b.Amends
	chargeSpans := func(before bool) error {
		for _, sp := range out.Spans {
			if (startsChain && sp.Chain < b.Chain) != before {
				continue
			}
			w.sc.Energy = append(w.sc.Energy, apportionSlots(meterID, sp.From, sp.To, sp.Wh())...)
			if err := p.charge(w, meterID, mb, sp); err != nil {
				return err
			}
		}
		return nil
	}
	if err := chargeSpans(true); err != nil {
		return err
	}
	if b != nil {
		w.sc.Breaks = append(w.sc.Breaks, store.Break{Meter: meterID, Chain: b.Chain, Kind: string(b.Kind), At: b.At,
			OldEndWh: b.OldEndWh, NewStartWh: b.NewStartWh, Amends: b.Amends, Actor: actor, Note: note})
	}
	return chargeSpans(false)
}

// charge prices a span of accepted energy with the tenant's tariff and adds
// it to the meter's open charge, posting the open charge whenever the slot,
// the price or the counter chain changes: a charge never spans two
// counters.
func (p *Pipeline) charge(w *cycleWork, meterID string, mb *MeterState, sp counter.Span) error {
	// Public and main meters are shared out, not charged; without tariffs
	// energy is recorded and nothing charged.
	m, billable := p.meterCfg[meterID]
	var tf tariff.Tariff
	if billable = billable && m.Role == config.TenantMeter; billable {
		tf, billable = p.cfg.TariffOf(m.Tenant)
	}
	p.noteBilling(w, meterID, mb, sp, billable)
	if !billable {
		return nil
	}
	loc := p.cfg.Location
	from, to := sp.From.In(loc), sp.To.In(loc)
	tm := p.month(w, m.Tenant)
	tm.reach(from)
	parts, ok := rateParts(m, tf, sp, from, to)
	if !ok {
		var err error
		if parts, err = tf.Split(from, to, sp.Wh(), tm.Wh); err != nil {
			return fmt.Errorf("tariff %s: %w", tf.Name(), err)
		}
	}
	cursor := sp.FromWh
	rem := mb.Counter.Remainder
	for _, part := range parts {
		if tm.reach(part.From) {
			tm.Wh += part.Wh
		}
		fen, r, err := billing.Charge(rem, part.Wh, part.Price)
		if err != nil {
			return err
		}
		rem = r
		slot := part.From.Truncate(chargeSlot)
		if o := mb.Open; o != nil && (!o.Slot.Equal(slot) || o.Price != part.Price || o.Window != part.Window || o.Account != m.Tenant ||
			o.Chain != sp.Chain || o.ToWh != cursor) {
			p.post(w, meterID, mb)
		}
		if mb.Open == nil {
			mb.Open = &OpenCharge{Account: m.Tenant, Chain: sp.Chain, Slot: slot, Window: part.Window, Price: part.Price,
				FromWh: cursor, ToWh: cursor, From: part.From, To: part.From}
		}
		o := mb.Open
		o.ToWh, o.To, o.Amount = cursor+part.Wh, part.To, o.Amount+fen
		cursor += part.Wh
	}
	mb.Counter.Remainder = rem
	return nil
}

// noteBilling records where a meter's energy stops and starts being
// charged (a meter made public or a tenant's, tariffs added), as a break
// of kind unbilled or billed on the span's chain: verify then knows which
// part of each chain no charge is owed for.
func (p *Pipeline) noteBilling(w *cycleWork, meterID string, mb *MeterState, sp counter.Span, billable bool) {
	if billable != mb.Unbilled {
		return // no change
	}
	mb.Unbilled = !billable
	m := p.meterCfg[meterID]
	br := store.Break{Meter: meterID, Chain: sp.Chain, Kind: BreakBilled, At: sp.From, NewStartWh: sp.FromWh}
	text := fmt.Sprintf("%s: energy charged to %s from %s", meterID, m.Tenant, meter.FormatKWh(sp.FromWh)+" kWh")
	args := map[string]string{"meter": meterID, "tenant": m.Tenant, "from_kwh": meter.FormatKWh(sp.FromWh)}
	if !billable {
		if mb.Open != nil {
			p.post(w, meterID, mb)
		}
		br.Kind, br.NewStartWh, br.OldEndWh = BreakUnbilled, 0, sp.FromWh
		why := "it is not a tenant's meter (role " + string(m.Role) + ")"
		// The kind's own sentence is a meter of another role; forms
		// unconfigured and no_tariff.
		args["meter_role"] = string(m.Role)
		switch {
		case m.ID == "":
			why = "it is not in the configuration"
			args["form"] = "unconfigured"
		case m.Role == config.TenantMeter:
			why = "tenant " + m.Tenant + " has no tariff"
			args["form"] = "no_tariff"
		}
		text = fmt.Sprintf("%s: energy from %s kWh is not charged: %s", meterID, meter.FormatKWh(sp.FromWh), why)
	}
	w.sc.Breaks = append(w.sc.Breaks, br)
	// The event says why, on the status page and to verify, which checks
	// that every mark has one.
	p.log.Info().Str("meter", meterID).Msg(text)
	w.sc.Events = append(w.sc.Events, store.Event{Time: sp.To, Kind: BillingEventKind(br.Kind), Meter: meterID, Tenant: m.Tenant, Text: text, Args: args})
}

// BillingEventKind is the kind of the event stored with each billing mark
// (BreakUnbilled, BreakBilled); "" for any other break.
func BillingEventKind(mark string) string {
	switch mark {
	case BreakUnbilled:
		return "billing_stopped"
	case BreakBilled:
		return "billing_started"
	}
	return ""
}

// OnCommit sets what runs after each committed cycle or operator action:
// the balances changed, so enforcement looks again. Set it before the
// pipeline runs.
func (p *Pipeline) OnCommit(f func()) { p.afterCommit = f }

// ObserveCommits sets what is told how long each bus cycle's commit (its
// one store transaction) took; failed commits are told to
// ObserveCommitFailures instead. Set it before the pipeline runs.
func (p *Pipeline) ObserveCommits(f func(took time.Duration)) { p.committed = f }

// ObserveCommitFailures sets what is told each bus cycle's commit that
// failed (a failing or full disk, a lost database), with its error: a
// disk that refuses every commit leaves ObserveCommits nothing to time.
// Set it before the pipeline runs.
func (p *Pipeline) ObserveCommitFailures(f func(err error)) { p.commitFailed = f }

// State returns a copy of a meter's billing state as the pipeline holds it,
// or nil for a meter it has none of.
func (p *Pipeline) State(meterID string) *MeterState {
	p.mu.Lock()
	defer p.mu.Unlock()
	mb, ok := p.meters[meterID]
	if !ok {
		return nil
	}
	return mb.clone()
}

// Kinds of the breaks that mark where charging stops and starts on a
// chain; the others start chains (counter.Baseline, Reset, Exchanged).
const (
	BreakUnbilled = "unbilled" // OldEndWh: the counter from which nothing is charged
	BreakBilled   = "billed"   // NewStartWh: the counter from which charges start again
)

// rateNames are the meter's own rate counters, in counter.Sample order.
var rateNames = [4]string{"sharp", "peak", "flat", "valley"}

// rateParts prices a span by the meter's own rate counters, for a meter
// configured so: each rate's share of the energy at the tariff's price of
// that rate. It is false (time apportioning is used) when the meter is not
// so configured, the span has no rate rises to go by, or the tariff does
// not price by those rates.
func rateParts(m config.Meter, tf tariff.Tariff, sp counter.Span, from, to time.Time) ([]tariff.Part, bool) {
	if m.Apportion != config.ApportionRates {
		return nil, false
	}
	shares, ok := sp.RateParts()
	if !ok {
		return nil, false
	}
	var parts []tariff.Part
	for i, wh := range shares {
		if wh == 0 {
			continue
		}
		price, ok := tariff.RatePrice(tf, rateNames[i])
		if !ok {
			return nil, false
		}
		parts = append(parts, tariff.Part{From: from, To: to, Wh: wh, Price: price, Window: rateNames[i]})
	}
	return parts, true
}

// closeDue posts a meter's open charge once its slot has ended by now.
func (p *Pipeline) closeDue(w *cycleWork, meterID string, now time.Time) {
	mb := p.state(w, meterID)
	if mb.Open != nil && !now.Before(mb.Open.Slot.Add(chargeSlot)) {
		p.post(w, meterID, mb)
	}
	if mb.Open == nil {
		if _, ok := p.meters[meterID]; ok && !p.changed(w, meterID) {
			delete(w.meters, meterID) // nothing to write for this meter
		}
	}
}

// changed reports whether this cycle did anything to a meter's state.
func (p *Pipeline) changed(w *cycleWork, meterID string) bool {
	if _, judged := w.verdict[meterID]; judged {
		return true
	}
	old, ok := p.meters[meterID]
	return !ok || old.Open != nil
}

// post turns the meter's open charge into a ledger entry of this cycle.
func (p *Pipeline) post(w *cycleWork, meterID string, mb *MeterState) {
	o := mb.Open
	from, to := o.From, o.To
	w.sc.Charges = append(w.sc.Charges, store.Entry{
		Time: to, Account: o.Account, Kind: store.Charge, Amount: -o.Amount,
		Meter: meterID, Chain: o.Chain, FromWh: o.FromWh, ToWh: o.ToWh, Wh: o.ToWh - o.FromWh,
		From: &from, To: &to, Window: o.Window, UnitPrice: o.Price, Actor: "gateway",
	})
	mb.Open = nil
}

// noteVerdict logs when a meter's counter starts and stops being refused,
// not at every cycle in between.
func (p *Pipeline) noteVerdict(bus, meterID string, v counter.Verdict, wh int64) {
	was, rejecting := p.rejecting[meterID]
	switch {
	case v.Refused() && (!rejecting || was != v):
		p.rejecting[meterID] = v
		p.log.Warn().Str("bus", bus).Str("meter", meterID).Int64("counter_wh", wh).Str("verdict", string(v)).Msg("reading not billed")
	case !v.Refused() && rejecting:
		delete(p.rejecting, meterID)
		p.log.Info().Str("bus", bus).Str("meter", meterID).Int64("counter_wh", wh).Str("verdict", string(v)).Msg("counter billed again")
	}
}

// allZero reports a reading whose every value is zero: a meter's glitch
// (seen on real KPM33Bs), never a counter reset.
func allZero(rd meter.Reading) bool {
	var buf [32]meter.Quantity
	for _, q := range rd.AppendQuantities(buf[:0]) {
		if v, _ := rd.Value(q); v != 0 {
			return false
		}
	}
	return true
}

func rateCounters(rd meter.Reading) ([4]int64, bool) {
	var out [4]int64
	for i, q := range []meter.Quantity{meter.Sharp, meter.Peak, meter.Flat, meter.Valley} {
		wh, ok := rd.EnergyWh(q)
		if !ok {
			return out, false
		}
		out[i] = wh
	}
	return out, true
}

// apportionSlots spreads wh used over [from, to) over the 15-minute slots
// it covers, in proportion to time (largest remainder, so the parts add up
// to wh exactly): a meter offline for an hour shows its hour's energy over
// the hour, not in one slot.
func apportionSlots(meterID string, from, to time.Time, wh int64) []store.IntervalEnergy {
	if !to.After(from) || store.IntervalStart(from).Equal(store.IntervalStart(to.Add(-1))) {
		return []store.IntervalEnergy{{Meter: meterID, Time: from, Wh: wh}} // one slot: the usual case
	}
	total := to.Sub(from)
	var out []store.IntervalEnergy
	var given int64
	type rest struct {
		i   int
		rem int64
	}
	var rests []rest
	for s := store.IntervalStart(from); s.Before(to); s = s.Add(store.IntervalLength) {
		lo, hi := maxTime(s, from), minTime(s.Add(store.IntervalLength), to)
		share := hi.Sub(lo)
		// wh × share / total without overflow for any real gap: share and
		// total are at most years in ns (< 2^60), wh below 2^40.
		q, r := mulDiv(wh, int64(share), int64(total))
		out = append(out, store.IntervalEnergy{Meter: meterID, Time: lo, Wh: q})
		rests = append(rests, rest{len(out) - 1, r})
		given += q
	}
	for left := wh - given; left > 0; left-- {
		best := 0
		for j := range rests {
			if rests[j].rem > rests[best].rem {
				best = j
			}
		}
		out[rests[best].i].Wh++
		rests[best].rem = -1
	}
	return out
}

// mulDiv returns a×b÷c and the remainder, exactly, with 128-bit
// arithmetic; a, b, c > 0 and b <= c (a share of a span is never longer
// than the span), so the quotient fits.
func mulDiv(a, b, c int64) (q, r int64) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	qq, rr := bits.Div64(hi, lo, uint64(c))
	return int64(qq), int64(rr)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func toStore(rd meter.Reading) store.Reading {
	r := store.Reading{Meter: rd.Meter, Time: rd.Time, Relay: rd.Relay.String()}
	r.ImportWh, _ = rd.ImportWh()
	var buf [32]meter.Quantity
	qs := rd.AppendQuantities(buf[:0])
	r.Values = make([]store.Value, 0, len(qs))
	for _, q := range qs {
		switch {
		case q == meter.Import:
		case q.IsEnergy():
			wh, _ := rd.EnergyWh(q)
			r.Counters = append(r.Counters, store.Counter{Name: string(q), Wh: wh})
		default:
			v, _ := rd.Value(q)
			r.Values = append(r.Values, store.Value{Name: string(q), Value: v})
		}
	}
	return r
}
