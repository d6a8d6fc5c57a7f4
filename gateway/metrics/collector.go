package metrics

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"mallgrid/store"
)

// Sources are what a scrape reads from the running generation.
type Sources struct {
	// Meters returns every configured meter's state now; nil: none.
	// It is called once a scrape, and once more by detach.
	Meters func() []Meter
	// Uplink is set when an uplink is configured: the uplink outbox's
	// depth and age are reported only then.
	Uplink bool
	// MQTTBuses names the buses of meters that report over MQTT: their
	// errors are of mqttErrorKinds, the others' of modbusErrorKinds.
	MQTTBuses map[string]bool
}

// Meter is one meter's state as a scrape reads it.
type Meter struct {
	ID, Tenant, Bus string // Tenant "" for a public or main meter
	Online          bool
	LastSeen        time.Time // zero: never answered
	// Requests and Errors (by kind: timeout, crc, exception, short, …)
	// are the poller's counts since it started; they may start again
	// from zero with a new poller.
	Requests int64
	Errors   map[string]int64
}

// modbusErrorKinds are the kinds of failed transactions the pollers count
// (drivers/modbus.ErrorKind, and poll's timeout_retried: a first try
// that went unanswered), reported for every Modbus bus from its first
// scrape so that rate() sees a kind's first error; other kinds appear
// when seen.
var modbusErrorKinds = []string{"timeout", "crc", "exception", "short", "malformed", "wrong_slave", "no_link", "port_busy", "io", "timeout_retried"}

// mqttErrorKinds are the kinds of problems a bus of MQTT meters counts in
// its meters' messages and commands (gateway/mqttmeters), reported for
// every such bus from its first scrape as modbusErrorKinds are for the
// others: a reading's packets lost, a message that cannot be decoded, an
// all-zero frame dropped, a meter's clock absent, unreadable or reset (one
// that lost power reports 2005), a reply naming another meter's command,
// an upkeep command that failed (upload intervals, clock).
var mqttErrorKinds = []string{"lost_packets", "bad_message", "zero_frame", "clock", "foreign_reply", "upkeep"}

var (
	descTransactions = prometheus.NewDesc("mallgrid_bus_transactions_total",
		"Modbus transactions (or MQTT messages) with the bus's meters, answered or not.", []string{"bus"}, nil)
	descErrors = prometheus.NewDesc("mallgrid_bus_errors_total",
		"Failed transactions on the bus by kind: on Modbus timeout, crc, exception, short, malformed, wrong_slave, no_link, port_busy, io, "+
			"and timeout_retried (requests sent twice because the first try went unanswered); "+
			"on MQTT lost_packets, bad_message, zero_frame, clock, foreign_reply, upkeep.", []string{"bus", "kind"}, nil)
	descOnline = prometheus.NewDesc("mallgrid_meter_online",
		"1 while the meter answers, else 0.", []string{"meter", "tenant", "bus"}, nil)
	descLastSeen = prometheus.NewDesc("mallgrid_meter_last_seen_timestamp_seconds",
		"When the meter last answered (Unix time); absent for a meter never heard.", []string{"meter", "tenant", "bus"}, nil)
	descAlarms = prometheus.NewDesc("mallgrid_alarms_open",
		"Open alarms by kind, severity and state (active: nobody acknowledged it yet; acknowledged: the condition still holds).",
		[]string{"kind", "severity", "state"}, nil)
	descNotify = prometheus.NewDesc("mallgrid_notify_outbox_messages",
		"Notifications in the outbox by state: pending (waiting to be sent or retried) or dead (given up on).", []string{"state"}, nil)
	descUplinkDepth = prometheus.NewDesc("mallgrid_uplink_outbox_messages",
		"Messages waiting for the group broker's acknowledgement.", nil, nil)
	descUplinkBytes = prometheus.NewDesc("mallgrid_uplink_outbox_bytes",
		"Stored size of the messages waiting for the group broker.", nil, nil)
	descUplinkAge = prometheus.NewDesc("mallgrid_uplink_outbox_oldest_age_seconds",
		"Age of the oldest message waiting for the group broker; 0 when none waits.", nil, nil)
	descBalance = prometheus.NewDesc("mallgrid_ledger_balance_yuan",
		"Sum of every account's balance: the prepaid credit held for tenants (negative balances subtract).", nil, nil)
	descAccounts = prometheus.NewDesc("mallgrid_ledger_accounts",
		"Accounts with a ledger.", nil, nil)
	descCredited = prometheus.NewDesc("mallgrid_ledger_credited_yuan_total",
		"Credits posted to the ledger since the gateway started, by entry kind (topup, adjustment, reversal, …).", []string{"kind"}, nil)
	descDebited = prometheus.NewDesc("mallgrid_ledger_debited_yuan_total",
		"Debits posted to the ledger since the gateway started, by entry kind (charge, allocation, adjustment, reversal, …), as a positive amount.",
		[]string{"kind"}, nil)
	descChargedWh = prometheus.NewDesc("mallgrid_ledger_charged_wh_total",
		"Energy billed by charge entries posted since the gateway started, in watt-hours.", nil, nil)
)

// collector reads the scrape-time figures: the attached generation's
// meters, and the database's. Its lock serialises scrapes with each other
// and with attach and detach.
type collector struct {
	db  *store.DB
	now func() time.Time
	log zerolog.Logger

	mu  sync.Mutex
	src *Sources // nil while none is attached
	gen uint64   // counts attachments: a detach of an older one does nothing
	// buses holds each bus's counts, carried over sources: a counter of
	// a bus whose source went away stays at its last value.
	buses  map[string]*busCounts
	ledger ledgerTally
}

// busCounts are one bus's carried counters.
type busCounts struct {
	requests monotonic
	errors   map[string]*monotonic
}

// fold ends the bus's source: the next starts every count at 0.
func (b *busCounts) fold() {
	b.requests.fold()
	for _, e := range b.errors {
		e.fold()
	}
}

// monotonic turns a count that may start again from zero into one that
// never goes back: carried holds what earlier runs of it counted.
type monotonic struct{ carried, last int64 }

// observe takes the source's count v and returns the counter's value.
func (c *monotonic) observe(v int64) int64 {
	if v < c.last { // the source started again between two reads
		c.carried += c.last
	}
	c.last = v
	return c.carried + v
}

// fold ends the source: its last count is carried, the next starts at 0.
func (c *monotonic) fold() { c.carried, c.last = c.carried+c.last, 0 }

func (c *monotonic) value() int64 { return c.carried + c.last }

func newCollector(db *store.DB, now func() time.Time, log zerolog.Logger) *collector {
	c := &collector{db: db, now: now, log: log, buses: make(map[string]*busCounts)}
	if db != nil {
		// A database that cannot be read now is tried again at the first
		// scrape.
		if err := c.ledger.start(db); err != nil {
			log.Warn().Err(err).Msg("metrics: read the accounts for the ledger counters' base")
		}
	}
	return c
}

func (c *collector) attach(s Sources) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detachLocked()
	c.gen++
	gen := c.gen
	c.src = &s
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen == gen && c.src != nil {
			c.detachLocked()
		}
	}
}

// detachLocked reads the attached source's counts a last time and folds
// them in; c.mu held.
func (c *collector) detachLocked() {
	if c.src == nil {
		return
	}
	if c.src.Meters != nil {
		c.observeBuses(c.src.Meters(), c.src.MQTTBuses)
	}
	for _, b := range c.buses {
		b.fold()
	}
	c.src = nil
}

// observeBuses takes the meters' counts, summed per bus; mqtt names the
// buses of MQTT meters. c.mu held.
func (c *collector) observeBuses(meters []Meter, mqtt map[string]bool) {
	type sum struct {
		requests int64
		errors   map[string]int64
	}
	sums := make(map[string]*sum)
	for _, m := range meters {
		s := sums[m.Bus]
		if s == nil {
			s = &sum{errors: make(map[string]int64)}
			sums[m.Bus] = s
		}
		s.requests += m.Requests
		for k, n := range m.Errors {
			s.errors[k] += n
		}
	}
	for bus, s := range sums {
		b := c.buses[bus]
		if b == nil {
			b = &busCounts{errors: make(map[string]*monotonic)}
			kinds := modbusErrorKinds
			if mqtt[bus] {
				kinds = mqttErrorKinds
			}
			for _, k := range kinds {
				b.errors[k] = &monotonic{}
			}
			c.buses[bus] = b
		}
		if s.requests < b.requests.last {
			// The bus's poller started again: every count of it did,
			// also one that reads the same as before.
			b.fold()
		}
		b.requests.observe(s.requests)
		for k, e := range b.errors {
			e.observe(s.errors[k]) // a kind this source has none of counts 0 in it
		}
		for k, n := range s.errors {
			if b.errors[k] == nil {
				b.errors[k] = &monotonic{}
				b.errors[k].observe(n)
			}
		}
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTransactions, descErrors, descOnline, descLastSeen, descAlarms, descNotify,
		descUplinkDepth, descUplinkBytes, descUplinkAge, descBalance, descAccounts, descCredited, descDebited, descChargedWh} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var meters []Meter
	uplink := false
	if c.src != nil {
		if c.src.Meters != nil {
			meters = c.src.Meters()
		}
		uplink = c.src.Uplink
		c.observeBuses(meters, c.src.MQTTBuses)
	}
	c.collectBuses(ch)
	for _, m := range meters {
		online := 0.0
		if m.Online {
			online = 1
		}
		ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, online, m.ID, m.Tenant, m.Bus)
		if !m.LastSeen.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastSeen, prometheus.GaugeValue, float64(m.LastSeen.UnixMilli())/1e3, m.ID, m.Tenant, m.Bus)
		}
	}
	if c.db == nil {
		return
	}
	c.collectAlarms(ch)
	c.collectNotify(ch)
	if uplink {
		c.collectUplink(ch)
	}
	c.collectLedger(ch)
}

func (c *collector) collectBuses(ch chan<- prometheus.Metric) {
	names := make([]string, 0, len(c.buses))
	for name := range c.buses {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := c.buses[name]
		ch <- prometheus.MustNewConstMetric(descTransactions, prometheus.CounterValue, float64(b.requests.value()), name)
		for kind, e := range b.errors {
			ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(e.value()), name, kind)
		}
	}
}

func (c *collector) collectAlarms(ch chan<- prometheus.Metric) {
	counts, err := c.db.OpenAlarmCounts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descAlarms, err)
		return
	}
	// Every kind at its usual severity from the first scrape, at 0 while
	// none is open: a graph shows 0, not a gap.
	type key struct{ kind, severity, state string }
	n := make(map[key]int)
	for _, kind := range store.AlarmKinds() {
		for _, state := range []string{store.AlarmActive, store.AlarmAcknowledged} {
			n[key{kind, store.AlarmSeverity(kind), state}] = 0
		}
	}
	for _, a := range counts {
		n[key{a.Kind, a.Severity, a.State}] += a.N
	}
	for k, v := range n {
		ch <- prometheus.MustNewConstMetric(descAlarms, prometheus.GaugeValue, float64(v), k.kind, k.severity, k.state)
	}
}

func (c *collector) collectNotify(ch chan<- prometheus.Metric) {
	counts, err := c.db.DeliveryCounts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descNotify, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(descNotify, prometheus.GaugeValue, float64(n), state)
	}
}

func (c *collector) collectUplink(ch chan<- prometheus.Metric) {
	s, err := c.db.UplinkStats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descUplinkDepth, err)
		return
	}
	age := 0.0
	if !s.OldestTime.IsZero() {
		age = max(c.now().Sub(s.OldestTime).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(descUplinkDepth, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(descUplinkBytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(descUplinkAge, prometheus.GaugeValue, age)
}
