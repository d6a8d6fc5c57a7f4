package config

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/policy"
	"mallgrid/billing/tariff"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/alarm"
	"mallgrid/gateway/yamlcheck"
)

// validate checks what decoding cannot: required keys, ranges, allowed
// values, uniqueness and references between sections. It reports every
// problem and fills cfg.Location and cfg.Catalogue when their inputs are good.
func validate(cfg *Config, r *yamlcheck.Report) {
	validateSite(cfg, r)
	validateStorage(cfg, r)
	validateHTTP(cfg, r)
	validateLog(cfg, r)
	buses := validateBuses(cfg, r)
	models := validateModels(cfg, r)
	validateTariffs(cfg, r)
	validatePolicy(cfg, r)
	tenants := validateTenants(cfg, r)
	validateMeters(cfg, r, buses, models, tenants)
	validateAlarms(cfg, r)
	validateNotify(cfg, r)
	validateAllocation(cfg, r)
	validateUplink(cfg, r)
}

// validateAlarms resolves the alarm rules of every meter, reporting each
// problem at its key.
func validateAlarms(cfg *Config, r *yamlcheck.Report) {
	var categories []string
	// By tenant id: cfg.Tenant's index is built only once the file is
	// valid, after this.
	categoryOf := make(map[string]string, len(cfg.Tenants))
	for _, t := range cfg.Tenants {
		if !slices.Contains(categories, t.Category) {
			categories = append(categories, t.Category)
		}
		if _, dup := categoryOf[t.ID]; !dup {
			categoryOf[t.ID] = t.Category
		}
	}
	meters := make([]alarm.MeterInfo, 0, len(cfg.Meters))
	for i, m := range cfg.Meters {
		info := alarm.MeterInfo{ID: m.ID, RatedCurrent: m.RatedCurrent}
		if c, ok := categoryOf[m.Tenant]; ok && m.Role == TenantMeter {
			info.Category = c
		}
		// A main or public meter's default rating (a shop's 60 A) says
		// nothing of its feeder: it is watched for overload only when its
		// rated_current is written.
		if m.Role != TenantMeter && !r.Given(yamlcheck.Index("meters", i)+".rated_current") {
			info.RatedCurrent = 0
		}
		meters = append(meters, info)
	}
	rules, problems := alarm.Compile(cfg.Alarms, meters, categories)
	for _, pr := range problems {
		r.Add("alarms."+pr.Field, "%s", pr.Msg)
	}
	cfg.alarmRules = rules
}

var (
	currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)
	busName      = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

func validateSite(cfg *Config, r *yamlcheck.Report) {
	r.Need("site.name", cfg.Site.Name)
	if r.Need("site.timezone", cfg.Site.Timezone) {
		// "Local" is whatever the machine says: the file would mean
		// different hours on the laptop and on the gateway.
		loc, err := time.LoadLocation(cfg.Site.Timezone)
		if err != nil || cfg.Site.Timezone == "Local" {
			r.Add("site.timezone", "unknown time zone %q; want an IANA name like Asia/Shanghai", cfg.Site.Timezone)
		} else {
			cfg.Location = loc
		}
	}
	if r.Need("site.currency", cfg.Site.Currency) && !currencyCode.MatchString(cfg.Site.Currency) {
		r.Add("site.currency", "want an ISO 4217 code like CNY, got %q", cfg.Site.Currency)
	}
}

func validateStorage(cfg *Config, r *yamlcheck.Report) {
	// A relative path names a different file for each working directory
	// the gateway is started from: a new, empty ledger wherever it lands.
	if r.Need("storage.path", cfg.Storage.Path) {
		if !filepath.IsAbs(cfg.Storage.Path) {
			r.Add("storage.path", "want an absolute path like /var/lib/mallgrid/mallgrid.db, got %q", cfg.Storage.Path)
		} else if st, err := os.Stat(cfg.Storage.Path); err == nil && st.IsDir() {
			// The gateway would fail to open it only at start, as a
			// database error; the fix is in the file, so say so here.
			r.Add("storage.path", "%s is a directory; want the database file in it, like %s",
				cfg.Storage.Path, filepath.Join(cfg.Storage.Path, "mallgrid.db"))
		} else if n := len(cfg.Storage.Path) + len(".ctl"); n > maxSocketPath {
			// The control socket `mallgrid backup` asks is the path with
			// .ctl added, and a unix socket's address holds 107 bytes.
			r.Add("storage.path", "%d bytes long; the control socket beside it (the path with .ctl added) must fit in %d: use a shorter path",
				len(cfg.Storage.Path), maxSocketPath-len(".ctl"))
		}
	}
	r.DurationIn("storage.lock_timeout", cfg.Storage.LockTimeout, 100*time.Millisecond, 10*time.Minute)
	if d, ok := parseDays(cfg.Storage.SamplesKeep); !ok || d < 24*time.Hour || d > maxSamplesKeep {
		r.Add("storage.samples_keep", "want whole days like 90d, 1d..%dd, got %q", maxSamplesKeep/(24*time.Hour), cfg.Storage.SamplesKeep)
	}
	sn := cfg.Storage.Snapshots
	if sn.Keep != nil {
		r.IntIn("storage.snapshots.keep", *sn.Keep, 0, 366)
	}
	if _, ok := parseClock(sn.At); sn.At != "" && !ok {
		r.Add("storage.snapshots.at", "want a time of day on the site's clock like 03:30, got %q", sn.At)
	}
	if sn.Dir != "" && !filepath.IsAbs(sn.Dir) {
		r.Add("storage.snapshots.dir", "want an absolute path like /var/lib/mallgrid/snapshots, got %q", sn.Dir)
	}
}

// maxSocketPath is the longest path a unix socket's address holds
// (gateway/backup's control socket).
const maxSocketPath = 107

// DefaultSamplesKeep is storage.samples_keep's default: a quarter of
// one-minute power curves, about 1.1 MB a meter (12,288 bytes a meter a
// day, docs/BENCHMARKS.md) — 2.2 GB for 2,000 meters. The power chart
// shows a day; energy over longer spans comes from the interval energy,
// which is kept whatever this says.
const DefaultSamplesKeep = "90d"

// maxSamplesKeep bounds storage.samples_keep at five years: 22 MB a
// meter, 45 GB for 2,000 meters, past what a gateway's disk should hold.
const maxSamplesKeep = 5 * 366 * 24 * time.Hour

func validateHTTP(cfg *Config, r *yamlcheck.Report) {
	if r.Need("http.listen", cfg.HTTP.Listen) {
		if msg := checkHostPort(cfg.HTTP.Listen, true); msg != "" {
			r.Add("http.listen", "%s", msg)
		} else if msg := openListen(cfg.HTTP.Listen); msg != "" {
			r.Warn("http.listen", "%s", msg)
		}
	}
	roles := Roles()
	users := unique(r, "user name")
	hashes := make(map[string]int) // password hash → index of its first user
	for i, u := range cfg.HTTP.Users {
		p := yamlcheck.Index("http.users", i)
		if r.Need(p+".name", u.Name) {
			users.check(p+".name", u.Name)
		}
		r.OneOf(p+".role", u.Role, roles...)
		if !r.Need(p+".password_hash", u.PasswordHash) {
			continue
		}
		if !isBcrypt(u.PasswordHash) {
			r.Add(p+".password_hash", "want a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters), not the password itself")
			continue
		}
		// bcrypt salts every hash: the same one twice is a copy, so one
		// password opens both logins and the audit cannot tell who acted.
		if first, dup := hashes[u.PasswordHash]; dup {
			fp := yamlcheck.Index("http.users", first)
			r.Add(p+".password_hash", "the same hash as %s (%s, %s): each user needs a password of their own; hash a new one",
				fp, cfg.HTTP.Users[first].Name, r.Where(fp+".password_hash"))
		} else {
			hashes[u.PasswordHash] = i
		}
	}
	tokens := unique(r, "token name")
	digests := make(map[string]int) // lower-case SHA-256 → index of its first token
	for i, t := range cfg.HTTP.Tokens {
		p := yamlcheck.Index("http.tokens", i)
		if r.Need(p+".name", t.Name) {
			tokens.check(p+".name", t.Name)
		}
		r.OneOf(p+".role", t.Role, roles...)
		if !r.Need(p+".sha256", t.SHA256) {
			continue
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			r.Add(p+".sha256", "want the token's SHA-256 as 64 hex digits, not the token itself")
			continue
		}
		// One token under two names would act with whichever entry the
		// server matches first, whatever role the other gives it.
		d := strings.ToLower(t.SHA256)
		if first, dup := digests[d]; dup {
			fp := yamlcheck.Index("http.tokens", first)
			ft := cfg.HTTP.Tokens[first]
			r.Add(p+".sha256", "the same token as %s (%s, role %s, %s): a token has one name and one role; make a new token for each",
				fp, ft.Name, ft.Role, r.Where(fp+".sha256"))
		} else {
			digests[d] = i
		}
	}
	// A login outlives its last request by this long: a minute is too
	// short to read a page, and a day leaves a forgotten control-room
	// screen open to whoever sits down at it.
	r.DurationIn("http.session_idle", cfg.HTTP.SessionIdle, time.Minute, 24*time.Hour)
	for i, h := range cfg.HTTP.Hosts {
		p := yamlcheck.Index("http.hosts", i)
		if msg := checkHostName(h); msg != "" {
			r.Add(p, "%s", msg)
		}
	}
	if t := cfg.HTTP.TLS; t != nil {
		validateTLS(t, r)
	}
}

// checkHostName returns what is wrong with an http.hosts entry, a name or
// name:port as a browser's Host header carries it, or "".
func checkHostName(h string) string {
	name := h
	if strings.Contains(h, "/") {
		return fmt.Sprintf("%q: want a host name as a browser's address bar has it, without scheme or path", h)
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q: the port must be 1..65535", h)
		}
		name = host
	}
	switch {
	case name == "":
		return "want a host name like gateway.mall.lan or gateway.mall.lan:8443"
	case strings.ContainsAny(name, " \t@"):
		return fmt.Sprintf("%q: want a host name as a browser's address bar has it, without scheme or path", h)
	}
	return ""
}

// validateTLS checks that the certificate and key are absolute paths to
// readable files that make a pair, so that a gateway configured for HTTPS
// never starts without it.
func validateTLS(t *TLS, r *yamlcheck.Report) {
	ok := true
	for _, f := range []struct{ key, path string }{{"http.tls.cert", t.Cert}, {"http.tls.key", t.Key}} {
		switch {
		case !r.Need(f.key, f.path):
			ok = false
		case !filepath.IsAbs(f.path):
			r.Add(f.key, "want an absolute path like /etc/mallgrid/tls/%s.pem, got %q", strings.TrimPrefix(f.key, "http.tls."), f.path)
			ok = false
		default:
			if _, err := os.ReadFile(f.path); err != nil {
				r.Add(f.key, "cannot read it: %v", err)
				ok = false
			}
		}
	}
	if !ok {
		return
	}
	if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
		r.Add("http.tls.key", "the certificate and key are not a pair the gateway can serve with: %v", err)
	}
}

// openListen returns why listening on addr, a valid host:port, opens the
// status page and API beyond this machine, or "" for a loopback address.
// A host name other than localhost is not looked up (config check makes no
// network calls): it is taken for a name on the network.
func openListen(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return ""
	}
	ip := net.ParseIP(host)
	switch {
	case ip != nil && ip.IsLoopback():
		return ""
	case host == "" || ip != nil && ip.IsUnspecified():
		return "listens on every network interface: anyone on any network this box is on can reach the status page and API; " +
			"name the control room's address (like 192.168.10.5:8080), or 127.0.0.1:8080 behind a proxy"
	}
	return fmt.Sprintf("%s is not a loopback address: anyone on that network can reach the status page and API; "+
		"if that is meant (a control room on the LAN), keep the network closed and the tokens secret", host)
}

func isBcrypt(h string) bool {
	if len(h) != 60 {
		return false
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(h, prefix) {
			return true
		}
	}
	return false
}

func validateLog(cfg *Config, r *yamlcheck.Report) {
	r.OneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	r.OneOf("log.format", cfg.Log.Format, "json", "console")
}

// validateBuses returns the names of the buses, good or not, so that a
// meter on a bus with a problem is not also told its bus does not exist.
func validateBuses(cfg *Config, r *yamlcheck.Report) map[string]bool {
	if len(cfg.Buses) == 0 {
		r.Add("buses", "at least one bus is required")
	}
	names := make(map[string]bool)
	seen := unique(r, "bus name")
	lines := make(map[string]int)   // the line a bus's port leads to → index of its first bus
	listens := make(map[string]int) // a compere-mqtt broker's listen address → index of its bus
	for i, b := range cfg.Buses {
		p := yamlcheck.Index("buses", i)
		if r.Need(p+".name", b.Name) {
			names[b.Name] = true
			if !busName.MatchString(b.Name) {
				r.Add(p+".name", "want lower-case letters, digits, _ and -, got %q", b.Name)
			} else {
				seen.check(p+".name", b.Name)
			}
		}
		typeOK := r.OneOf(p+".type", b.Type, BusRTU, BusTCP, BusRTUOverTCP, BusCompereMQTT)
		if typeOK && b.Type == BusCompereMQTT {
			validateMQTTBus(cfg, r, i, listens)
			continue
		}
		for _, k := range mqttBusKeys {
			if r.Given(p + "." + k) {
				r.Add(p+"."+k, "applies to %s buses only (this bus is %s)", BusCompereMQTT, b.Type)
			}
		}
		if r.Need(p+".port", b.Port) && typeOK {
			portOK := true
			if b.Type == BusRTU {
				if !strings.HasPrefix(b.Port, "/") {
					hint := ""
					if strings.Contains(b.Port, ":") {
						hint = " (host:port needs type tcp or rtu+tcp)"
					}
					r.Add(p+".port", "want a device path like /dev/ttyUSB0 for an rtu bus, got %q%s", b.Port, hint)
					portOK = false
				}
			} else if msg := checkHostPort(b.Port, false); msg != "" {
				r.Add(p+".port", "%s", msg)
				portOK = false
			}
			if portOK {
				checkLine(cfg, r, lines, i)
			}
		}
		if typeOK && b.Type != BusRTU {
			// A serial setting on a network bus does nothing; an rtu+tcp
			// converter keeps its own. Saying so beats silently ignoring it.
			for _, k := range []string{"baud", "parity", "stop_bits", "rs485"} {
				if r.Given(p + "." + k) {
					r.Add(p+"."+k, "applies to rtu buses only (this bus is %s)", b.Type)
				}
			}
		} else {
			r.IntOneOf(p+".baud", b.Baud, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
			r.OneOf(p+".parity", b.Parity, "N", "E", "O")
			r.IntOneOf(p+".stop_bits", b.StopBits, 1, 2)
		}
		// tarm/serial's read timeout tops out at 25.5 s.
		r.DurationIn(p+".timeout", b.Timeout, 10*time.Millisecond, 25*time.Second)
		r.DurationIn(p+".pause", b.Pause, 0, 5*time.Second)
		r.DurationIn(p+".interval", b.Interval, time.Second, time.Hour)
	}
	return names
}

// checkLine refuses bus i when an earlier bus's port leads to the same
// line: the same serial device, however spelled (/dev/./ttyUSB0, or a
// /dev/serial/by-id link to it), or the same TCP host:port. Two buses are
// two masters polling at once: on RS-485 their frames collide, and behind
// one converter their requests queue and time out. lines maps each line
// met so far to the index of its bus.
func checkLine(cfg *Config, r *yamlcheck.Report, lines map[string]int, i int) {
	b := cfg.Buses[i]
	var line string
	if b.Type == BusRTU {
		line = filepath.Clean(b.Port)
		// A link that does not resolve (a device not plugged in, or
		// config check run on another machine) is compared as written.
		if real, err := filepath.EvalSymlinks(line); err == nil {
			line = real
		}
	} else {
		host, port, _ := net.SplitHostPort(b.Port) // checked by the caller
		if ip := net.ParseIP(host); ip != nil {
			host = ip.String()
		}
		n, _ := strconv.Atoi(port) // checked by the caller: 0502 is 502
		line = "tcp:" + net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n))
	}
	first, dup := lines[line]
	if !dup {
		lines[line] = i
		return
	}
	fb := cfg.Buses[first]
	fp := yamlcheck.Index("buses", first) + ".port"
	same := ""
	if b.Type == BusRTU && fb.Port != b.Port {
		same = fmt.Sprintf(" (%s and %s are both %s)", fb.Port, b.Port, line)
	}
	what := "serial port"
	if b.Type != BusRTU {
		what = "host:port"
	}
	r.Add(yamlcheck.Index("buses", i)+".port", "the same %s as bus %s (%s)%s: two buses on one line poll it at once and their requests collide; "+
		"put the meters of both on one bus", what, fb.Name, r.Where(fp), same)
}

// checkHostPort returns "" if s is host:port with a numeric port, or what
// is wrong. A listen address may leave the host out (all interfaces) and
// use port 0 (any free port); a bus must name both.
func checkHostPort(s string, listen bool) string {
	if strings.Contains(s, "://") {
		return fmt.Sprintf("want host:port without a scheme, got %q", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("want host:port, got %q", s)
	}
	if host == "" && !listen {
		return fmt.Sprintf("want host:port with a host, got %q", s)
	}
	lo := 1
	if listen {
		lo = 0
	}
	if n, err := strconv.Atoi(port); err != nil || n < lo || n > 65535 {
		return fmt.Sprintf("want a port number %d..65535, got %q", lo, port)
	}
	return ""
}

// validateTenants returns the ids of the tenants, good or not.
func validateTenants(cfg *Config, r *yamlcheck.Report) map[string]bool {
	ids := make(map[string]bool)
	seen := unique(r, "tenant id")
	for i, t := range cfg.Tenants {
		p := yamlcheck.Index("tenants", i)
		if r.Need(p+".id", t.ID) {
			ids[t.ID] = true
			seen.check(p+".id", t.ID)
		}
		r.Need(p+".name", t.Name)
		r.Need(p+".category", t.Category)
		if math.IsNaN(t.AreaM2) || math.IsInf(t.AreaM2, 0) || t.AreaM2 < 0 || t.AreaM2 > MaxAreaM2 {
			r.Add(p+".area_m2", "want a number from 0 to %d (m²), got %v", MaxAreaM2, t.AreaM2)
		}
		if r.Need(p+".credit_rating", t.CreditRating) && len(cfg.Ratings) > 0 && !slices.Contains(ratingNames(cfg), t.CreditRating) {
			r.Add(p+".credit_rating", "unknown rating %q (ratings: %s)", t.CreditRating, strings.Join(ratingNames(cfg), ", "))
		}
		// With no tariffs at all nothing is charged (the daemon says so when
		// it starts); once there are, every tenant must name one of them.
		if r.Need(p+".tariff", t.Tariff) && len(cfg.Tariffs) > 0 && cfg.tariffs != nil && !slices.Contains(tariffNames(cfg), t.Tariff) {
			r.Add(p+".tariff", "unknown tariff %q (tariffs: %s)", t.Tariff, strings.Join(tariffNames(cfg), ", "))
		}
		for j, c := range t.Contacts {
			cp := yamlcheck.Index(p+".contacts", j)
			r.Need(cp+".name", c.Name)
			validateAddresses(r, cp, c.Phone, c.Email, c.WeChatOpenID, c.Name)
			validateLanguage(r, cp+".language", c.Language)
		}
	}
	return ids
}

func validateMeters(cfg *Config, r *yamlcheck.Report, buses, models, tenants map[string]bool) {
	ids := unique(r, "meter id")
	type slot struct {
		bus  string
		addr int
	}
	taken := make(map[slot]int) // → index of the first meter there
	deviceIDs := make(map[string]int)
	suffixes := make(map[[2]string]int)
	for i := range cfg.Meters {
		m := &cfg.Meters[i]
		p := yamlcheck.Index("meters", i)
		if r.Need(p+".id", m.ID) {
			ids.check(p+".id", m.ID)
		}
		busOK := false
		if r.Need(p+".bus", m.Bus) {
			if busOK = buses[m.Bus]; !busOK {
				r.Add(p+".bus", "unknown bus %q (buses: %s)", m.Bus, strings.Join(sortedKeys(buses), ", "))
			}
		}
		bus, _ := cfg.Bus(m.Bus)
		mqtt := busOK && bus.IsMQTT()
		if !mqtt && r.Given(p+".relay_output") {
			r.Add(p+".relay_output", "applies to meters on a %s bus only", BusCompereMQTT)
		}
		if !r.Given(p + ".address") {
			r.Add(p+".address", "required, not set")
		} else if mqtt {
			checkMQTTMeter(cfg, r, i, deviceIDs, suffixes)
		} else if n, ok := parseModbusAddress(m.AddressText); !ok {
			hint := ""
			if deviceID.MatchString(m.AddressText) {
				hint = fmt.Sprintf(" (a Compere meter id: its bus must be %s)", BusCompereMQTT)
			}
			r.Add(p+".address", "want an integer, got %q%s", m.AddressText, hint)
		} else if m.Address = n; r.IntIn(p+".address", m.Address, 1, 247) && busOK {
			s := slot{m.Bus, m.Address}
			if first, dup := taken[s]; dup {
				r.Add(p+".address", "address %d on bus %s is already used by meter %s (line %d)",
					m.Address, m.Bus, cfg.Meters[first].ID, r.Line(yamlcheck.Index("meters", first)))
			} else {
				taken[s] = i
			}
		}
		if mqtt {
			r.Need(p+".model", m.Model) // checkMQTTMeter checks it is one of MQTTModels
		} else if r.Need(p+".model", m.Model) && !models[m.Model] && slices.Contains(MQTTModels, m.Model) {
			r.Add(p+".model", "model %s reports over MQTT: its bus must be %s (bus %s is %s)", m.Model, BusCompereMQTT, m.Bus, bus.Type)
		} else if m.Model != "" && !models[m.Model] {
			r.Add(p+".model", "unknown model %q (models: %s)", m.Model, strings.Join(sortedKeys(models), ", "))
		}
		if r.OneOf(p+".role", m.Role, TenantMeter, PublicMeter, MainMeter) {
			switch {
			case m.Role == TenantMeter && m.Tenant == "":
				r.Add(p+".tenant", "required for a tenant meter")
			case m.Role == TenantMeter && !tenants[m.Tenant]:
				r.Add(p+".tenant", "unknown tenant %q", m.Tenant)
			case m.Role != TenantMeter && m.Tenant != "":
				r.Add(p+".tenant", "only tenant meters name a tenant (this meter is %s)", m.Role)
			}
		}
		// Bounded so that ratio × counter stays far inside int64 Wh.
		r.IntIn(p+".ct_ratio", m.CTRatio, 1, 10_000)
		r.IntIn(p+".pt_ratio", m.PTRatio, 1, 1_000)
		if !mqtt {
			checkRatios(cfg, r, p, *m)
		}
		r.OneOf(p+".apportion", m.Apportion, ApportionTime, ApportionRates)
		r.IntIn(p+".rated_current", m.RatedCurrent, 1, math.MaxInt32)
		// Both are optional: unset, the model's codes and the bus's timeout
		// apply. Written out, 0 is refused rather than read as "the
		// default": it looks like function code 0 or no deadline at all.
		if !mqtt && r.Given(p+".function") {
			r.IntOneOf(p+".function", m.Function, int(meter.ReadHolding), int(meter.ReadInput))
		}
		if !mqtt && r.Given(p+".timeout") {
			// The bus's range: tarm/serial's read timeout tops out at 25.5 s.
			r.DurationIn(p+".timeout", m.Timeout, 10*time.Millisecond, 25*time.Second)
		}
		if !mqtt && r.Given(p+".interval") {
			// Down to the shortest bus interval, and up to the meter's own
			// bus's: the key reads a meter more often, never less (the bus
			// reads each of its meters once a cycle).
			if b, _ := cfg.Bus(m.Bus); busOK && m.Interval > b.Interval && b.Interval >= time.Second {
				r.Add(p+".interval", "%s is longer than bus %s's interval (%s); a meter is read at least once a cycle", m.Interval, b.Name, b.Interval)
			} else {
				r.DurationIn(p+".interval", m.Interval, time.Second, time.Hour)
			}
		}
	}
}

// uniqueNames reports the second and later uses of a name.
type uniqueNames struct {
	r     *yamlcheck.Report
	what  string
	first map[string]string // name → key of its first use
}

func unique(r *yamlcheck.Report, what string) *uniqueNames {
	return &uniqueNames{r: r, what: what, first: make(map[string]string)}
}

func (u *uniqueNames) check(key, name string) {
	if first, dup := u.first[name]; dup {
		u.r.Add(key, "duplicate %s %q (first at %s)", u.what, name, u.r.Where(first))
		return
	}
	u.first[name] = key
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkRatios refuses transformer ratios on a meter whose model reports
// primary values: the meter already applies its own ratio, and applying it
// again would bill the tenant ct × pt times over (or, unapplied, the
// technician would believe it is).
func checkRatios(cfg *Config, r *yamlcheck.Report, p string, m Meter) {
	if m.CTRatio == 1 && m.PTRatio == 1 || m.CTRatio < 1 || m.PTRatio < 1 || cfg.Catalogue == nil {
		return // no ratio, or one already reported out of range
	}
	model, err := cfg.Catalogue.Lookup(m.Model)
	if err != nil || model.Secondary {
		return
	}
	key := p + ".ct_ratio"
	if m.CTRatio == 1 {
		key = p + ".pt_ratio"
	}
	r.Add(key, "model %s reports primary values: set the transformer ratio in the meter, "+
		"or use a model with secondary: true", m.Model)
}

// validateTariffs builds every tariff, reporting each problem at its key,
// and checks them against the resale price cap.
func validateTariffs(cfg *Config, r *yamlcheck.Report) {
	var capPrice billing.Price
	if c := cfg.Site.ResalePriceCap; c != "" {
		p, err := billing.ParsePrice(c)
		if err != nil || p <= 0 {
			r.Add("site.resale_price_cap", "want a price per kWh like 1.15, got %q", c)
		} else {
			capPrice = p
		}
	}
	names := unique(r, "tariff name")
	cfg.tariffs = make(map[string]tariff.Tariff)
	for i, spec := range cfg.Tariffs {
		p := yamlcheck.Index("tariffs", i)
		if spec.Name != "" {
			names.check(p+".name", spec.Name)
		}
		t, problems := tariff.New(spec)
		for _, pr := range problems {
			r.Add(p+"."+pr.Field, "%s", pr.Msg)
		}
		if len(problems) > 0 {
			continue
		}
		if capPrice > 0 {
			for _, pr := range tariff.CheckCap(t, capPrice) {
				r.Add(p+"."+pr.Field, "%s (site.resale_price_cap is %s)", pr.Msg, capPrice)
			}
		}
		cfg.tariffs[spec.Name] = t
	}
}

// specNames returns the names of specs, built or not: a broken tariff or
// rating is reported where it is, not again at every tenant naming it.
func specNames[S any](specs []S, name func(S) string) []string {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		out = append(out, name(s))
	}
	return out
}

func tariffNames(cfg *Config) []string {
	return specNames(cfg.Tariffs, func(s tariff.Spec) string { return s.Name })
}

func ratingNames(cfg *Config) []string {
	return specNames(cfg.Ratings, func(s policy.RatingSpec) string { return s.Name })
}

// validatePolicy builds the credit ratings and the protected hours,
// reporting each problem at its key.
func validatePolicy(cfg *Config, r *yamlcheck.Report) {
	names := unique(r, "rating name")
	cfg.ratings = make(map[string]policy.Rating)
	for i, spec := range cfg.Ratings {
		p := yamlcheck.Index("ratings", i)
		if spec.Name != "" {
			names.check(p+".name", spec.Name)
		}
		rating, problems := policy.NewRating(spec)
		for _, pr := range problems {
			r.Add(p+"."+pr.Field, "%s", pr.Msg)
		}
		if len(problems) == 0 {
			cfg.ratings[spec.Name] = rating
		}
	}
	if cfg.Location == nil {
		return // site.timezone is reported already
	}
	prot, problems := policy.NewProtected(cfg.ProtectedHours, cfg.Location)
	for _, pr := range problems {
		r.Add("protected_hours."+pr.Field, "%s", pr.Msg)
	}
	cfg.protected = prot
}
