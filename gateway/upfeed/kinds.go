package upfeed

import (
	"time"

	"mallgrid/billing"
	"mallgrid/store"
)

// Kinds of uplink messages: the topic's last level and UplinkMessage.Kind.
// KindCommandResult is made by gateway/uplink, the others by the Feed.
const (
	KindInterval      = "interval"
	KindLedger        = "ledger"
	KindAccounts      = "accounts"
	KindEvent         = "event"
	KindMeterHealth   = "meter_health"
	KindHeartbeat     = "heartbeat"
	KindCommandResult = "command_result"
)

// Kinds lists every kind, in the order docs/UPLINK.md describes them.
var Kinds = []string{KindInterval, KindLedger, KindAccounts, KindEvent, KindMeterHealth, KindHeartbeat, KindCommandResult}

// MaxBatch bounds the records (events, entries, meters, accounts) of one
// message: 500 ledger entries are some 200 KB, well inside the packet
// sizes brokers accept by default, and a receiver's insert of one message
// stays small.
const MaxBatch = 500

// The bodies below are the wire format: their JSON names are what the
// group's systems read, checked against docs/uplink/*.schema.json by the
// tests. Renaming one is a change of the format.

// IntervalBody is a closed quarter hour's energy, per meter: Part of Parts
// when the site has more than MaxBatch meters.
type IntervalBody struct {
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end"`
	Part   int           `json:"part"`
	Parts  int           `json:"parts"`
	Meters []MeterEnergy `json:"meters"`
}

// MeterEnergy is one meter's energy in a quarter hour.
type MeterEnergy struct {
	Meter  string `json:"meter"`
	Tenant string `json:"tenant,omitempty"` // set for a tenant's meter
	Role   string `json:"role"`             // tenant | public | main, as configured
	Wh     int64  `json:"wh"`
	// Final says the meter was read after the quarter ended: its energy
	// in the quarter will not grow. A meter offline across the quarter's
	// end has its energy apportioned into it when it answers again, after
	// this message was made; the ledger's charges carry that energy.
	Final bool `json:"final"`
}

// LedgerBody is a batch of ledger entries, every account, in id order.
type LedgerBody struct {
	Entries []LedgerEntry `json:"entries"`
}

// LedgerEntry is one ledger entry as it goes up. Amounts are decimal
// strings of yuan.
type LedgerEntry struct {
	ID      uint64    `json:"id"`
	Time    time.Time `json:"time"`
	Tenant  string    `json:"tenant"`
	Kind    string    `json:"kind"`
	Amount  string    `json:"amount"`
	Balance string    `json:"balance"`
	// A charge's source.
	Meter     string     `json:"meter,omitempty"`
	Wh        int64      `json:"wh,omitempty"`
	From      *time.Time `json:"from,omitempty"`
	To        *time.Time `json:"to,omitempty"`
	Window    string     `json:"window,omitempty"`
	UnitPrice string     `json:"unit_price,omitempty"` // yuan per kWh
	// A top-up's or a correction's source.
	Ref      string `json:"ref,omitempty"`
	Channel  string `json:"channel,omitempty"`
	Reverses uint64 `json:"reverses,omitempty"`
	Actor    string `json:"actor,omitempty"`
	Note     string `json:"note,omitempty"`
	// Receipt is a top-up's receipt number as printed on it
	// (store.Entry.ReceiptNo: "R00000001"; a top-up credited before
	// receipts were numbered has its entry id's), the string
	// command_result sends too.
	Receipt string   `json:"receipt,omitempty"`
	Invoice *Invoice `json:"invoice,omitempty"`
}

// Invoice is a top-up's e-invoice request as it stood when its entry went
// up (its later status is news of the group's own making).
type Invoice struct {
	Title  string `json:"title"`
	TaxID  string `json:"tax_id,omitempty"`
	Email  string `json:"email,omitempty"`
	Status string `json:"status"`
}

// EventBody is a batch of events in id order.
type EventBody struct {
	Events []Event `json:"events"`
}

// Event is one stored event as it goes up.
type Event struct {
	ID     uint64            `json:"id"`
	Time   time.Time         `json:"time"`
	Kind   string            `json:"kind"`
	Meter  string            `json:"meter,omitempty"`
	Tenant string            `json:"tenant,omitempty"`
	Bus    string            `json:"bus,omitempty"`
	Text   string            `json:"text"`
	Args   map[string]string `json:"args,omitempty"`
}

// AccountsBody is the snapshot of every tenant's account made at the
// first round of a quarter hour.
type AccountsBody struct {
	// Quarter is the start of the quarter hour it is the snapshot of; At
	// when it was taken (later than Quarter after a gateway's start).
	Quarter  time.Time      `json:"quarter"`
	At       time.Time      `json:"at"`
	Part     int            `json:"part"`
	Parts    int            `json:"parts"`
	Accounts []AccountState `json:"accounts"`
}

// AccountState is one tenant's account in a snapshot.
type AccountState struct {
	Tenant  string `json:"tenant"`
	Balance string `json:"balance"`
	State   string `json:"state"`
	Relay   string `json:"relay"`
}

// MeterHealthBody is the snapshot of every meter's health made at the
// first round of a quarter hour (Quarter and At as in AccountsBody).
type MeterHealthBody struct {
	Quarter time.Time     `json:"quarter"`
	At      time.Time     `json:"at"`
	Part    int           `json:"part"`
	Parts   int           `json:"parts"`
	Meters  []MeterStatus `json:"meters"`
}

// MeterStatus is one meter's health in a snapshot.
type MeterStatus struct {
	Meter    string     `json:"meter"`
	Online   bool       `json:"online"`
	LastSeen *time.Time `json:"last_seen"` // null: never answered
	Errors   int64      `json:"errors"`
}

// HeartbeatBody says the gateway is alive, and how far behind its outbox
// is.
type HeartbeatBody struct {
	Version string      `json:"version"`
	Started time.Time   `json:"started"`
	UptimeS int64       `json:"uptime_s"`
	Outbox  OutboxState `json:"outbox"`
	Buses   BusesState  `json:"buses"`
	// Stalled names the sources (event, ledger, interval, accounts,
	// meter_health) that failed in the round that made the heartbeat:
	// a record that cannot be read, a provider's error. Each is tried
	// again at every round; the others go on meanwhile.
	Stalled []string `json:"stalled"`
}

// OutboxState is the uplink outbox when a heartbeat was made (before the
// heartbeat itself was queued).
type OutboxState struct {
	Head       uint64     `json:"head"`   // last seq given
	Oldest     uint64     `json:"oldest"` // oldest not acknowledged; 0: none
	OldestTime *time.Time `json:"oldest_time"`
	// OldestAgeS is how long the oldest has waited, in seconds, by the
	// clock that made the heartbeat (0: none waits).
	OldestAgeS int64 `json:"oldest_age_s"`
	Depth      int64 `json:"depth"`
	Bytes      int64 `json:"bytes"`
}

// BusesState counts the buses up; Down names the others.
type BusesState struct {
	Up    int      `json:"up"`
	Total int      `json:"total"`
	Down  []string `json:"down"`
}

// Account is what the root's Accounts provider gives for one tenant.
type Account struct {
	Tenant  string
	Balance billing.Money
	// State is the account's policy state as enforcement names it
	// (normal, warning, …, cut_off).
	State string
	// Relay is the state of the tenant's relays: closed, open, mixed or
	// unknown.
	Relay string
}

// MeterHealth is what the root's Meters provider gives for one meter.
type MeterHealth struct {
	Meter    string
	Online   bool
	LastSeen time.Time // zero: never answered
	// Errors counts the meter's failed reads since the gateway started.
	Errors int64
}

// Bus is what the root's Buses provider gives for one bus.
type Bus struct {
	Name string
	Up   bool
}

// ledgerEntry is e as it goes up, times in loc, with inv if it has one.
func ledgerEntry(e store.Entry, loc *time.Location, inv *Invoice) LedgerEntry {
	out := LedgerEntry{
		ID: e.ID, Time: e.Time.In(loc), Tenant: e.Account, Kind: string(e.Kind),
		Amount: e.Amount.String(), Balance: e.Balance.String(),
		Meter: e.Meter, Wh: e.Wh, Window: e.Window,
		Ref: e.Ref, Channel: e.Channel, Reverses: e.Reverses, Actor: e.Actor, Note: e.Note, Receipt: e.ReceiptNo(),
		Invoice: inv,
	}
	if e.From != nil {
		t := e.From.In(loc)
		out.From = &t
	}
	if e.To != nil {
		t := e.To.In(loc)
		out.To = &t
	}
	if e.UnitPrice != 0 {
		out.UnitPrice = e.UnitPrice.String()
	}
	return out
}

// event is e as it goes up, its time in loc.
func event(e store.Event, loc *time.Location) Event {
	return Event{ID: e.ID, Time: e.Time.In(loc), Kind: e.Kind, Meter: e.Meter, Tenant: e.Tenant, Bus: e.Bus, Text: e.Text, Args: e.Args}
}
