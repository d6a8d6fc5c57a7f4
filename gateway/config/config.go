package config

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"
	// The gateway box may lack /usr/share/zoneinfo; site.timezone must load
	// the same way there as on the technician's laptop.
	_ "time/tzdata"

	"mallgrid/billing/policy"
	"mallgrid/billing/tariff"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/alarm"
)

// Config is a loaded, validated configuration. Load and Parse return it only
// when the file had no problem; it is read-only afterwards and safe to share
// between goroutines.
type Config struct {
	Site    Site     `yaml:"site"`
	Storage Storage  `yaml:"storage"`
	HTTP    HTTP     `yaml:"http"`
	Log     Log      `yaml:"log"`
	Buses   []Bus    `yaml:"buses"`
	Models  []Model  `yaml:"models"`
	Meters  []Meter  `yaml:"meters"`
	Tenants []Tenant `yaml:"tenants"`
	// Tariffs are the prices tenants are charged; each tenant names one.
	Tariffs []tariff.Spec `yaml:"tariffs"`
	// Ratings are the credit ratings: warning levels, overdraft, grace and
	// restore level; each tenant names one as its credit_rating.
	Ratings []policy.RatingSpec `yaml:"ratings"`
	// ProtectedHours are when no cut-off may happen.
	ProtectedHours policy.ProtectedSpec `yaml:"protected_hours"`
	// Alarms are the rules over meters' instantaneous values: defaults,
	// then by tenant category, then by meter.
	Alarms alarm.Spec `yaml:"alarms"`
	// Notify is the notification outbox: channels, routes, staff.
	Notify Notify `yaml:"notify"`
	// Allocation are the rules that share public meters' energy out to
	// tenants (allocation.go).
	Allocation []AllocationRule `yaml:"allocation"`
	// Uplink is the link to the mall group's MQTT broker (uplink.go).
	Uplink Uplink `yaml:"uplink"`

	// Location is Site.Timezone loaded.
	Location *time.Location `yaml:"-"`
	// tariffs holds the Tariffs built, by name.
	tariffs map[string]tariff.Tariff
	// tenantAt finds a tenant by id: the pipeline asks for every reading.
	tenantAt map[string]int
	// ratings holds the Ratings built, by name; protected the hours.
	ratings   map[string]policy.Rating
	protected policy.Protected
	// alarmRules are Alarms resolved for every meter.
	alarmRules alarm.Rules
	// allocations are the Allocation rules built.
	allocations []Allocation
	// Catalogue holds the built-in meter models plus Models.
	Catalogue *meter.Catalogue `yaml:"-"`
	// Warnings are what the file does that is legal but unwise (a status
	// page open to every network, an unknown MALLGRID_ variable): `config
	// check` prints them and the daemon logs them; nil when there are none.
	Warnings Problems `yaml:"-"`
}

// Site names the installation.
type Site struct {
	Name     string `yaml:"name"`     // required
	Timezone string `yaml:"timezone"` // IANA name; tariffs and protected hours use it
	Currency string `yaml:"currency"` // ISO 4217 code
	// ResalePriceCap is the highest price per kWh a tenant may be charged
	// (some provinces cap resale at the grid price + 15 %); "" for none.
	ResalePriceCap string `yaml:"resale_price_cap"`
}

// Storage says where the bbolt database lives.
type Storage struct {
	Path string `yaml:"path"`
	// LockTimeout bounds the wait for the database's file lock; without it a
	// second gateway on the same file would hang forever.
	LockTimeout time.Duration `yaml:"lock_timeout"`
	// SamplesKeep is how long meters' one-minute power samples are kept,
	// in whole days ("90d"); older ones are pruned. Interval energy and the
	// ledger are kept whatever it says.
	SamplesKeep string `yaml:"samples_keep"`
	// Snapshots are the daily copies of the database the gateway keeps in
	// its state directory (gateway/backup).
	Snapshots Snapshots `yaml:"snapshots"`
}

// Snapshots is storage.snapshots: one copy of the database a day, at a
// time of day on the site's clock, into a directory, the newest Keep kept.
type Snapshots struct {
	// Keep is how many daily snapshots are kept; 0 turns them off. nil
	// (not given) is DefaultSnapshotKeep.
	Keep *int `yaml:"keep"`
	// At is the time of day, "HH:MM" on the site's clock; "" is
	// DefaultSnapshotAt.
	At string `yaml:"at"`
	// Dir is the directory they go in, an absolute path; "" is
	// "snapshots" beside the database.
	Dir string `yaml:"dir"`
}

// DefaultSnapshotKeep is storage.snapshots.keep's default: a week.
const DefaultSnapshotKeep = 7

// DefaultSnapshotAt is storage.snapshots.at's default: a quiet hour.
const DefaultSnapshotAt = "03:30"

// SnapshotKeep is how many daily snapshots to keep (0: none are taken).
func (s Storage) SnapshotKeep() int {
	if s.Snapshots.Keep == nil {
		return DefaultSnapshotKeep
	}
	return *s.Snapshots.Keep
}

// SnapshotDir is the directory daily snapshots (and the one taken before a
// schema upgrade) go in.
func (s Storage) SnapshotDir() string {
	if s.Snapshots.Dir != "" {
		return s.Snapshots.Dir
	}
	return filepath.Join(filepath.Dir(s.Path), "snapshots")
}

// SnapshotAt is the time of day of the daily snapshot, in minutes after
// the site's midnight (valid once the configuration is validated).
func (s Storage) SnapshotAt() int {
	at := s.Snapshots.At
	if at == "" {
		at = DefaultSnapshotAt
	}
	m, _ := parseClock(at)
	return m
}

// parseClock reads a time of day written "HH:MM" as minutes after midnight.
func parseClock(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// SamplesRetention is storage.samples_keep as a duration (0 before the
// configuration is validated).
func (s Storage) SamplesRetention() time.Duration {
	d, _ := parseDays(s.SamplesKeep)
	return d
}

// parseDays reads a whole number of days written like "90d".
func parseDays(s string) (time.Duration, bool) {
	n, ok := strings.CutSuffix(s, "d")
	if !ok || n == "" || len(n) > 5 {
		return 0, false
	}
	days := 0
	for _, c := range n {
		if c < '0' || c > '9' {
			return 0, false
		}
		days = days*10 + int(c-'0')
	}
	return time.Duration(days) * 24 * time.Hour, true
}

// HTTP configures the status page and JSON API.
type HTTP struct {
	Listen string  `yaml:"listen"` // host:port; an empty host listens on all interfaces
	Users  []User  `yaml:"users"`
	Tokens []Token `yaml:"tokens"`
	// Hosts are the names, besides the listen host and localhost, that
	// browsers may reach the gateway by (a "name" matches any port,
	// "name:port" that port only): any other Host header is refused, so a
	// web page whose own name was pointed at the gateway (DNS rebinding)
	// reads nothing.
	Hosts []string `yaml:"hosts"`
	// SessionIdle is how long a login lasts without a request.
	SessionIdle time.Duration `yaml:"session_idle"`
	// TLS, if set, makes the gateway serve HTTPS only.
	TLS *TLS `yaml:"tls"`
}

// TLS names the certificate and key files the gateway serves HTTPS with.
type TLS struct {
	Cert string `yaml:"cert"` // PEM certificate chain, the server's first
	Key  string `yaml:"key"`  // PEM private key of the certificate
}

// User is a control-room login.
type User struct {
	Name         string `yaml:"name"`
	Role         string `yaml:"role"`          // RoleAdmin, RoleOperator, RoleFinance or RoleViewer
	PasswordHash string `yaml:"password_hash"` // bcrypt
}

func (u *User) setDefaults() { u.Role = RoleViewer }

// Token is an API bearer token, kept only as the hex SHA-256 of the token.
type Token struct {
	Name   string `yaml:"name"`
	Role   string `yaml:"role"`
	SHA256 string `yaml:"sha256"`
}

func (t *Token) setDefaults() { t.Role = RoleViewer }

// Roles of users and tokens.
const (
	RoleAdmin    = "admin"    // everything, and the audit log
	RoleOperator = "operator" // alarms, relay overrides, protection, cash top-ups, meter counter records
	RoleFinance  = "finance"  // top-ups of any channel, reversals, reports
	RoleViewer   = "viewer"   // reads only
)

// Roles returns the roles a user or token may have.
func Roles() []string { return []string{RoleAdmin, RoleOperator, RoleFinance, RoleViewer} }

// Log configures the logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // json or console
}

// Bus is one Modbus line: a serial port, a Modbus TCP server, or an
// RTU-over-TCP converter; or a link to Compere's MQTT meters
// (BusCompereMQTT). One goroutine owns it.
type Bus struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // BusRTU, BusTCP, BusRTUOverTCP or BusCompereMQTT
	Port string `yaml:"port"` // device path for rtu, host:port otherwise
	// Baud, Parity, StopBits and RS485 apply to rtu buses only; an rtu+tcp
	// converter keeps its own serial settings.
	Baud     int    `yaml:"baud"`
	Parity   string `yaml:"parity"` // N, E or O
	StopBits int    `yaml:"stop_bits"`
	RS485    bool   `yaml:"rs485"` // set TIOCSRS485 on the port
	// Timeout is the reply deadline of one request.
	Timeout time.Duration `yaml:"timeout"`
	// Pause is the quiet time between two requests on this bus. 0 (the
	// default): the line's own silent interval, 3.5 characters at the
	// bus's baud rate, which the poller keeps whatever the pause.
	Pause time.Duration `yaml:"pause"`
	// Interval is the target time between two polls of one meter.
	Interval time.Duration `yaml:"interval"`

	// The keys below apply to compere-mqtt buses only. Listen (host:port)
	// makes the gateway the meters' broker, with TLS when TLSCert and
	// TLSKey are set, accepting only Username with the password whose
	// SHA-256 is PasswordSHA256 (hex). Broker (tcp:// or ssl://host:port)
	// makes it a client of the mall's broker instead, with Username and
	// Password (or BusSecretVar), CAFile to trust an ssl:// broker's
	// private CA, and ClientID naming its persistent session (default
	// derived from the site and bus names).
	Listen         string `yaml:"listen"`
	TLSCert        string `yaml:"tls_cert"`
	TLSKey         string `yaml:"tls_key"`
	Username       string `yaml:"username"`
	PasswordSHA256 string `yaml:"password_sha256"`
	Broker         string `yaml:"broker"`
	CAFile         string `yaml:"ca_file"`
	Password       string `yaml:"password"`
	ClientID       string `yaml:"client_id"`
}

// Bus types.
const (
	BusRTU        = "rtu"
	BusTCP        = "tcp"
	BusRTUOverTCP = "rtu+tcp"
)

func (b *Bus) setDefaults() {
	b.Type = BusRTU
	b.Baud = 9600
	b.Parity = "E" // the KPM33B's factory setting is 8E1
	b.StopBits = 1
	b.Timeout = 500 * time.Millisecond
	// No pause of its own: a fixed 20 ms cost 23 % of an SDM630's cycle at
	// 9600 baud, where the line needs 4 ms of silence between frames.
	b.Pause = 0
	b.Interval = 10 * time.Second
}

// Model is a custom meter model as the technician writes it. Load turns each
// into a *meter.Model in Config.Catalogue.
type Model struct {
	Name   string `yaml:"name"`
	Title  string `yaml:"title"`
	Manual string `yaml:"manual"`
	MaxGap int    `yaml:"max_gap"`
	// MaxRead is the longest read the meter answers, in registers.
	MaxRead    int        `yaml:"max_read"`
	Registers  []Register `yaml:"registers"`
	Unreadable []Span     `yaml:"unreadable"`
	Relay      *Relay     `yaml:"relay"`
	// Secondary: the meter reports values at its terminals, behind CT/PT;
	// the gateway multiplies by each meter's ct_ratio and pt_ratio.
	Secondary bool `yaml:"secondary"`
}

func (m *Model) setDefaults() {
	m.MaxGap = meter.DefaultMaxGap
	m.MaxRead = meter.MaxReadRegisters
}

// Register is one value of a custom model; see meter.Register.
type Register struct {
	Quantity  string  `yaml:"quantity"`
	Address   int     `yaml:"address"`
	Function  int     `yaml:"function"`
	Type      string  `yaml:"type"`
	WordOrder string  `yaml:"word_order"`
	ByteOrder string  `yaml:"byte_order"`
	Scale     float64 `yaml:"scale"`
	// Unit defaults to the quantity's own unit (kWh for energy, W for power…).
	Unit string `yaml:"unit"`
}

func (r *Register) setDefaults() {
	r.Function = int(meter.ReadHolding)
	r.WordOrder = string(meter.Big)
	r.ByteOrder = string(meter.Big)
	r.Scale = 1
}

// Span is an inclusive range of register addresses a read must not cover.
type Span struct {
	From int `yaml:"from"`
	To   int `yaml:"to"`
}

// Relay says how a custom model's load-control relay is switched.
type Relay struct {
	Coil       int            `yaml:"coil"`
	RemoteMode *RegisterWrite `yaml:"remote_mode"`
}

// RegisterWrite is a block of holding registers written before switching.
type RegisterWrite struct {
	Address int   `yaml:"address"`
	Values  []int `yaml:"values"`
}

// Meter is one metering point on a bus.
type Meter struct {
	ID  string `yaml:"id"`
	Bus string `yaml:"bus"`
	// AddressText is address: as written. Validation turns it into
	// Address on a Modbus bus and DeviceID on a compere-mqtt bus, so that
	// one key takes 5 on the one and "33B1225950027" on the other.
	AddressText string `yaml:"address"`
	Address     int    `yaml:"-"` // Modbus slave address, 1..247
	DeviceID    string `yaml:"-"` // compere-mqtt: the meter's 13-character id
	// RelayOutput is the relay output that switches the meter's circuit on
	// a compere-mqtt bus: do1, or do2 of a KPM37. 0 (not set) means 1.
	RelayOutput int    `yaml:"relay_output"`
	Model       string `yaml:"model"`
	Role        string `yaml:"role"`   // TenantMeter, PublicMeter or MainMeter
	Tenant      string `yaml:"tenant"` // set exactly when Role is TenantMeter
	CTRatio     int    `yaml:"ct_ratio"`
	PTRatio     int    `yaml:"pt_ratio"`
	// RatedCurrent in amperes is what load alarms compare against.
	RatedCurrent int `yaml:"rated_current"`
	// Apportion says how energy over a gap (the meter offline across
	// tariff windows) is priced: ApportionTime spreads it evenly over the
	// gap; ApportionRates prices what the meter's own sharp/peak/flat/valley
	// counters rose at those rates.
	Apportion string `yaml:"apportion"`
	// Function, when not 0, is the read function code (3 or 4) every
	// register of the meter's model is read with, for units whose firmware
	// answers on the other code than the catalogue's; see ModelOf.
	Function int `yaml:"function"`
	// Timeout is the reply deadline of one request to this meter; 0 means
	// the bus's. A slow meter gets its own, so that the bus's timeout, which
	// every absent meter costs, can stay short; see TimeoutOf.
	Timeout time.Duration `yaml:"timeout"`
	// Interval, when not 0, is how often this meter is read, shorter than
	// its bus's interval: a high-risk circuit (a restaurant's kitchen) is
	// then read, and its alarms judged, more often than its neighbours.
	// 0 means the bus's; see IntervalOf.
	Interval time.Duration `yaml:"interval"`
}

// Ways of apportioning a gap's energy.
const (
	ApportionTime  = "time"
	ApportionRates = "rates"
)

// Meter roles: a tenant's own supply, a public area whose energy is shared
// out, or the mall's incoming supply.
const (
	TenantMeter = "tenant"
	PublicMeter = "public"
	MainMeter   = "main"
)

func (m *Meter) setDefaults() {
	m.Role = TenantMeter
	m.CTRatio = 1
	m.PTRatio = 1
	m.RatedCurrent = 60
	m.Apportion = ApportionTime
}

// Tenant is a shop, restaurant or office that buys power in advance.
type Tenant struct {
	ID           string    `yaml:"id"`
	Name         string    `yaml:"name"`
	Category     string    `yaml:"category"`
	AreaM2       float64   `yaml:"area_m2"`
	CreditRating string    `yaml:"credit_rating"`
	Tariff       string    `yaml:"tariff"`
	Contacts     []Contact `yaml:"contacts"`
}

func (t *Tenant) setDefaults() {
	t.Category = "retail"
	t.CreditRating = "A"
	t.Tariff = "standard"
}

// Contact is someone warned before a tenant's credit runs out: the notify
// routes to the tenant reach each contact at the address its channel
// needs, in the contact's language.
type Contact struct {
	Name         string `yaml:"name"`
	Phone        string `yaml:"phone"`
	Email        string `yaml:"email"`
	WeChatOpenID string `yaml:"wechat_openid"`
	Language     string `yaml:"language"` // en or zh-CN
}

func (c *Contact) setDefaults() { c.Language = "zh-CN" }

// defaulter is a list entry or an optional section with defaults for the
// keys it may leave out.
type defaulter interface{ setDefaults() }

// setDefaults is the decoder's yamlcheck.Decoder.Defaults, so that the
// defaults stay unexported, next to their fields.
func setDefaults(ptr any) {
	if d, ok := ptr.(defaulter); ok {
		d.setDefaults()
	}
}

// sectionDefaults returns the defaults of the top-level sections, the keys
// that environment variables may override.
func sectionDefaults() Config {
	return Config{
		Site:    Site{Timezone: "Asia/Shanghai", Currency: "CNY"},
		Storage: Storage{Path: "/var/lib/mallgrid/mallgrid.db", LockTimeout: 5 * time.Second, SamplesKeep: DefaultSamplesKeep},
		HTTP:    HTTP{Listen: "127.0.0.1:8080", SessionIdle: 30 * time.Minute},
		Log:     Log{Level: "info", Format: "json"},
		Notify:  notifyDefaults(),
		Uplink:  Uplink{BacklogRate: DefaultUplinkBacklogRate, Inflight: DefaultUplinkInflight},
	}
}

// Bus returns the bus called name.
func (c *Config) Bus(name string) (Bus, bool) {
	for _, b := range c.Buses {
		if b.Name == name {
			return b, true
		}
	}
	return Bus{}, false
}

// MetersOn returns the meters on bus, in file order, or nil if there are none.
func (c *Config) MetersOn(bus string) []Meter {
	var ms []Meter
	for _, m := range c.Meters {
		if m.Bus == bus {
			ms = append(ms, m)
		}
	}
	return ms
}

// ModelOf returns the model meter m is read with: its catalogue model,
// copied with every register's function code replaced when m sets
// function: (meter.Model.WithFunction; the copy keeps the model's name).
// The gateway, the simulator and the tools should all get a meter's model
// here rather than from the Catalogue, so that they agree. It fails only
// for a model the catalogue does not hold or a bad function code, which
// Load rules out.
func (c *Config) ModelOf(m Meter) (*meter.Model, error) {
	model, err := c.Catalogue.Lookup(m.Model)
	if err != nil {
		return nil, fmt.Errorf("meter %s: %w", m.ID, err)
	}
	if m.Function == 0 {
		return model, nil
	}
	if m.Function < 0 || m.Function > math.MaxUint8 {
		return nil, fmt.Errorf("meter %s: %w: %d", m.ID, meter.ErrBadFunction, m.Function)
	}
	model, err = model.WithFunction(uint8(m.Function))
	if err != nil {
		return nil, fmt.Errorf("meter %s: %w", m.ID, err)
	}
	return model, nil
}

// TimeoutOf returns the reply deadline of one request to meter m: its own
// timeout, or its bus's when it sets none (0 for a bus the configuration
// does not hold, which Load rules out).
func (c *Config) TimeoutOf(m Meter) time.Duration {
	if m.Timeout > 0 {
		return m.Timeout
	}
	b, _ := c.Bus(m.Bus)
	return b.Timeout
}

// IntervalOf returns how often meter m is read: its own interval, or its
// bus's when it sets none.
func (c *Config) IntervalOf(m Meter) time.Duration {
	if m.Interval > 0 {
		return m.Interval
	}
	b, _ := c.Bus(m.Bus)
	return b.Interval
}

// TariffOf returns the tariff tenant id is charged at; false for a tenant
// the configuration does not bill (no tariffs are configured at all).
func (c *Config) TariffOf(id string) (tariff.Tariff, bool) {
	t, ok := c.Tenant(id)
	if !ok {
		return nil, false
	}
	tf, ok := c.tariffs[t.Tariff]
	return tf, ok
}

// AlarmRules returns the alarm rules of every meter, resolved.
func (c *Config) AlarmRules() alarm.Rules { return c.alarmRules }

// RatingOf returns tenant id's credit rating; false when no ratings are
// configured (then no one is warned or cut off).
func (c *Config) RatingOf(id string) (policy.Rating, bool) {
	t, ok := c.Tenant(id)
	if !ok {
		return policy.Rating{}, false
	}
	r, ok := c.ratings[t.CreditRating]
	return r, ok
}

// Protected returns the site's protected hours.
func (c *Config) Protected() policy.Protected { return c.protected }

// Tenant returns the tenant whose id is id.
func (c *Config) Tenant(id string) (Tenant, bool) {
	if i, ok := c.tenantAt[id]; ok {
		return c.Tenants[i], true
	}
	return Tenant{}, false
}

// index builds the lookups of a loaded configuration, which is read-only
// from then on.
func (c *Config) index() {
	c.tenantAt = make(map[string]int, len(c.Tenants))
	for i, t := range c.Tenants {
		if _, dup := c.tenantAt[t.ID]; !dup {
			c.tenantAt[t.ID] = i
		}
	}
}
