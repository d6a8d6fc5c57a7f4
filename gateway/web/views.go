package web

import "time"

// Source is what the web layer reads. The gateway implements it.
type Source interface {
	Status() StatusView
	Meters() []MeterView
}

// StatusView is GET /api/v1/status.
type StatusView struct {
	Site string `json:"site"`
	// Timezone is site.timezone: every time in the API is in it, with its
	// offset, and the page shows times in it whatever the browser's zone.
	Timezone string     `json:"timezone"`
	Version  string     `json:"version"`
	Started  time.Time  `json:"started"`
	Now      time.Time  `json:"now"`
	Buses    []BusView  `json:"buses"`
	Counts   CountsView `json:"counts"`
	Database string     `json:"database"`
	// Polling is every meter's bus statistics, in configuration order.
	Polling []PollingView `json:"polling"`
	// Uplink is the link to the mall group's broker; nil when none is
	// configured. The site runs the same without it: /healthz never
	// looks at it.
	Uplink *UplinkView `json:"uplink,omitempty"`
}

// UplinkView is the uplink in StatusView: the link to the group's broker
// and the outbox of messages waiting for it.
type UplinkView struct {
	// Broker is the broker's scheme, host and port: never a user or a
	// password.
	Broker    string `json:"broker"`
	SiteID    string `json:"site_id"`
	Connected bool   `json:"connected"`
	// Since is when the link went up (Connected) or down; absent before
	// it has run.
	Since time.Time `json:"since,omitzero"`
	// Depth is how many messages wait for the broker's acknowledgement,
	// Bytes their size.
	Depth int64 `json:"depth"`
	Bytes int64 `json:"bytes"`
	// Oldest is when the oldest message waiting was made, OldestAgeS its
	// age in seconds (0 and absent: none waits).
	Oldest     time.Time `json:"oldest,omitzero"`
	OldestAgeS int64     `json:"oldest_age_s"`
	// Backlog says the oldest waits longer than the feed allows for a
	// link that keeps up (10 minutes): the page highlights it.
	Backlog bool `json:"backlog"`
	// Head is the last seq given to a message; LastAck when the broker's
	// acknowledgements were last written (absent: none since the start).
	Head    uint64    `json:"head"`
	LastAck time.Time `json:"last_ack,omitzero"`
	// LastCommand is the last command of the platform handled since the
	// start; nil: none.
	LastCommand *UplinkCommandView `json:"last_command,omitempty"`
	// Error says the outbox could not be read: the figures above are
	// then zero, not a quiet outbox.
	Error string `json:"error,omitempty"`
}

// UplinkCommandView is a command handled, in UplinkView.
type UplinkCommandView struct {
	ID     string `json:"id"`
	Status string `json:"status"` // ok | refused
	Reason string `json:"reason,omitempty"`
	// Duplicate: a command delivered again, answered with its first
	// result.
	Duplicate bool      `json:"duplicate,omitempty"`
	Time      time.Time `json:"time"`
}

// PollingView is one meter's polling statistics in StatusView.
type PollingView struct {
	Meter   string `json:"meter"`
	Bus     string `json:"bus"`
	Address int    `json:"address"`
	Online  bool   `json:"online"`
	// NextProbe is set while an absent meter is being backed off.
	NextProbe *time.Time `json:"next_probe,omitempty"`
	StatsView
}

// BusView is one bus in StatusView.
type BusView struct {
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Port      string    `json:"port"`
	Meters    int       `json:"meters"`
	Online    int       `json:"online"`
	LastCycle time.Time `json:"last_cycle,omitzero"` // absent until the bus's first cycle
	CycleMS   int64     `json:"cycle_ms"`            // duration of the last cycle
}

// CountsView totals the meters.
type CountsView struct {
	Meters  int `json:"meters"`
	Online  int `json:"online"`
	Offline int `json:"offline"`
}

// MeterView is one meter in GET /api/v1/meters.
type MeterView struct {
	ID      string `json:"id"`
	Bus     string `json:"bus"`
	Address int    `json:"address"`
	Model   string `json:"model"`
	Role    string `json:"role"`
	Tenant  string `json:"tenant,omitempty"`
	// TenantName is the shop's name as the control room knows it.
	TenantName string `json:"tenant_name,omitempty"`
	Online     bool   `json:"online"`
	// ReadingTime is when the values below were read; nil before the first read.
	ReadingTime *time.Time `json:"reading_time"`
	// ImportKWh is the billing counter as a decimal string ("1234.567"),
	// exact to the Wh: energy never passes through a float here.
	ImportKWh string `json:"import_kwh"`
	// LastSeen is when the meter last answered (nil: never).
	LastSeen *time.Time `json:"last_seen"`
	// Energy holds the other counters (export, sharp/peak/flat/valley) as
	// exact decimal kWh strings, by quantity name. A meter's own view has
	// them; the list and its stream do not (ListView).
	Energy map[string]string `json:"energy_kwh,omitempty"`
	Values map[string]Value  `json:"values"`
	Relay  RelayView         `json:"relay"`
	// Stats are the meter's polling statistics: in a meter's own view,
	// not in the list (GET /api/v1/status has every meter's).
	Stats StatsView `json:"stats,omitzero"`
	// Encoded, when the Source sets it, is ListView's JSON exactly as
	// json.Marshal writes it: a source that keeps each meter's encoding
	// until the meter changes spares every list and stream from encoding
	// 2,000 meters again. Nil means the web layer encodes it.
	Encoded []byte `json:"-"`
}

// ListView is m as the meter list (GET /api/v1/meters) and its stream
// carry it: what the list shows — identity, online, last seen, relay,
// the billing counter and the instantaneous values — without the rate
// counters and polling statistics, which a meter's own view
// (GET /api/v1/meters/{id}) and GET /api/v1/status give. At 2,000 meters
// they would be a third of the list's compressed size (docs/BENCHMARKS.md).
// Its times are to the millisecond: the nanoseconds of a clock reading
// are noise, and 20 KB of the list's compressed size at 2,000 meters.
func (m MeterView) ListView() MeterView {
	m.Energy, m.Stats, m.Encoded = nil, StatsView{}, nil
	m.ReadingTime, m.LastSeen = toMilli(m.ReadingTime), toMilli(m.LastSeen)
	return m
}

func toMilli(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	ms := t.Truncate(time.Millisecond)
	return &ms
}

// Value is a measurement with its unit.
type Value struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// RelayView is a meter's relay: what enforcement wants and what the meter says.
type RelayView struct {
	Desired string `json:"desired"` // closed | open: what enforcement drives it to
	Actual  string `json:"actual"`  // closed | open | unknown
}

// StatsView is a meter's polling statistics.
type StatsView struct {
	Requests  int64            `json:"requests"`
	Errors    map[string]int64 `json:"errors"`
	LastSeen  *time.Time       `json:"last_seen"`
	LastError string           `json:"last_error,omitempty"`
	P50MS     float64          `json:"latency_p50_ms"`
	P99MS     float64          `json:"latency_p99_ms"`
}
