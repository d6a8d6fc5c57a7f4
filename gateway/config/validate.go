package config

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mallgrid/drivers/meter"
)

// validate checks what decoding cannot: required keys, ranges, allowed
// values, uniqueness and references between sections. It reports every
// problem and fills cfg.Location and cfg.Catalogue when their inputs are good.
func validate(cfg *Config, r *report) {
	validateSite(cfg, r)
	validateStorage(cfg, r)
	validateHTTP(cfg, r)
	validateLog(cfg, r)
	buses := validateBuses(cfg, r)
	models := validateModels(cfg, r)
	tenants := validateTenants(cfg, r)
	validateMeters(cfg, r, buses, models, tenants)
}

var (
	currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)
	busName      = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

func validateSite(cfg *Config, r *report) {
	r.need("site.name", cfg.Site.Name)
	if r.need("site.timezone", cfg.Site.Timezone) {
		// "Local" is whatever the machine says: the file would mean
		// different hours on the laptop and on the gateway.
		loc, err := time.LoadLocation(cfg.Site.Timezone)
		if err != nil || cfg.Site.Timezone == "Local" {
			r.add("site.timezone", "unknown time zone %q; want an IANA name like Asia/Shanghai", cfg.Site.Timezone)
		} else {
			cfg.Location = loc
		}
	}
	if r.need("site.currency", cfg.Site.Currency) && !currencyCode.MatchString(cfg.Site.Currency) {
		r.add("site.currency", "want an ISO 4217 code like CNY, got %q", cfg.Site.Currency)
	}
}

func validateStorage(cfg *Config, r *report) {
	r.need("storage.path", cfg.Storage.Path)
	r.durationIn("storage.lock_timeout", cfg.Storage.LockTimeout, 100*time.Millisecond, 10*time.Minute)
}

func validateHTTP(cfg *Config, r *report) {
	if r.need("http.listen", cfg.HTTP.Listen) {
		if msg := checkHostPort(cfg.HTTP.Listen, true); msg != "" {
			r.add("http.listen", "%s", msg)
		}
	}
	roles := []string{RoleAdmin, RoleOperator, RoleViewer}
	users := r.unique("user name")
	for i, u := range cfg.HTTP.Users {
		p := index("http.users", i)
		if r.need(p+".name", u.Name) {
			users.check(p+".name", u.Name)
		}
		r.oneOf(p+".role", u.Role, roles...)
		if r.need(p+".password_hash", u.PasswordHash) && !isBcrypt(u.PasswordHash) {
			r.add(p+".password_hash", "want a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters), not the password itself")
		}
	}
	tokens := r.unique("token name")
	for i, t := range cfg.HTTP.Tokens {
		p := index("http.tokens", i)
		if r.need(p+".name", t.Name) {
			tokens.check(p+".name", t.Name)
		}
		r.oneOf(p+".role", t.Role, roles...)
		if r.need(p+".sha256", t.SHA256) {
			if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
				r.add(p+".sha256", "want the token's SHA-256 as 64 hex digits, not the token itself")
			}
		}
	}
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

func validateLog(cfg *Config, r *report) {
	r.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	r.oneOf("log.format", cfg.Log.Format, "json", "console")
}

// validateBuses returns the names of the buses, good or not, so that a
// meter on a bus with a problem is not also told its bus does not exist.
func validateBuses(cfg *Config, r *report) map[string]bool {
	if len(cfg.Buses) == 0 {
		r.add("buses", "at least one bus is required")
	}
	names := make(map[string]bool)
	seen := r.unique("bus name")
	for i, b := range cfg.Buses {
		p := index("buses", i)
		if r.need(p+".name", b.Name) {
			names[b.Name] = true
			if !busName.MatchString(b.Name) {
				r.add(p+".name", "want lower-case letters, digits, _ and -, got %q", b.Name)
			} else {
				seen.check(p+".name", b.Name)
			}
		}
		typeOK := r.oneOf(p+".type", b.Type, BusRTU, BusTCP, BusRTUOverTCP)
		if r.need(p+".port", b.Port) && typeOK {
			if b.Type == BusRTU {
				if !strings.HasPrefix(b.Port, "/") {
					hint := ""
					if strings.Contains(b.Port, ":") {
						hint = " (host:port needs type tcp or rtu+tcp)"
					}
					r.add(p+".port", "want a device path like /dev/ttyUSB0 for an rtu bus, got %q%s", b.Port, hint)
				}
			} else if msg := checkHostPort(b.Port, false); msg != "" {
				r.add(p+".port", "%s", msg)
			}
		}
		if typeOK && b.Type != BusRTU {
			// A serial setting on a network bus does nothing; an rtu+tcp
			// converter keeps its own. Saying so beats silently ignoring it.
			for _, k := range []string{"baud", "parity", "stop_bits", "rs485"} {
				if r.set[p+"."+k] {
					r.add(p+"."+k, "applies to rtu buses only (this bus is %s)", b.Type)
				}
			}
		} else {
			r.intOneOf(p+".baud", b.Baud, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
			r.oneOf(p+".parity", b.Parity, "N", "E", "O")
			r.intOneOf(p+".stop_bits", b.StopBits, 1, 2)
		}
		// tarm/serial's read timeout tops out at 25.5 s.
		r.durationIn(p+".timeout", b.Timeout, 10*time.Millisecond, 25*time.Second)
		r.durationIn(p+".pause", b.Pause, 0, 5*time.Second)
		r.durationIn(p+".interval", b.Interval, time.Second, time.Hour)
	}
	return names
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
func validateTenants(cfg *Config, r *report) map[string]bool {
	ids := make(map[string]bool)
	seen := r.unique("tenant id")
	for i, t := range cfg.Tenants {
		p := index("tenants", i)
		if r.need(p+".id", t.ID) {
			ids[t.ID] = true
			seen.check(p+".id", t.ID)
		}
		r.need(p+".name", t.Name)
		r.need(p+".category", t.Category)
		if math.IsNaN(t.AreaM2) || math.IsInf(t.AreaM2, 0) || t.AreaM2 < 0 {
			r.add(p+".area_m2", "want a number >= 0, got %v", t.AreaM2)
		}
		r.need(p+".credit_rating", t.CreditRating)
		r.need(p+".tariff", t.Tariff)
		for j, c := range t.Contacts {
			cp := index(p+".contacts", j)
			r.need(cp+".name", c.Name)
			if c.Phone == "" && c.Email == "" {
				r.add(cp, "want a phone or an email to reach %s", c.Name)
			}
		}
	}
	return ids
}

func validateMeters(cfg *Config, r *report, buses, models, tenants map[string]bool) {
	ids := r.unique("meter id")
	type slot struct {
		bus  string
		addr int
	}
	taken := make(map[slot]int) // → index of the first meter there
	for i, m := range cfg.Meters {
		p := index("meters", i)
		if r.need(p+".id", m.ID) {
			ids.check(p+".id", m.ID)
		}
		busOK := false
		if r.need(p+".bus", m.Bus) {
			if busOK = buses[m.Bus]; !busOK {
				r.add(p+".bus", "unknown bus %q (buses: %s)", m.Bus, strings.Join(sortedKeys(buses), ", "))
			}
		}
		if !r.set[p+".address"] {
			r.add(p+".address", "required, not set")
		} else if r.intIn(p+".address", m.Address, 1, 247) && busOK {
			s := slot{m.Bus, m.Address}
			if first, dup := taken[s]; dup {
				r.add(p+".address", "address %d on bus %s is already used by meter %s (line %d)",
					m.Address, m.Bus, cfg.Meters[first].ID, r.line(index("meters", first)))
			} else {
				taken[s] = i
			}
		}
		if r.need(p+".model", m.Model) && !models[m.Model] {
			r.add(p+".model", "unknown model %q (models: %s)", m.Model, strings.Join(sortedKeys(models), ", "))
		}
		if r.oneOf(p+".role", m.Role, TenantMeter, PublicMeter, MainMeter) {
			switch {
			case m.Role == TenantMeter && m.Tenant == "":
				r.add(p+".tenant", "required for a tenant meter")
			case m.Role == TenantMeter && !tenants[m.Tenant]:
				r.add(p+".tenant", "unknown tenant %q", m.Tenant)
			case m.Role != TenantMeter && m.Tenant != "":
				r.add(p+".tenant", "only tenant meters name a tenant (this meter is %s)", m.Role)
			}
		}
		// Bounded so that ratio × counter stays far inside int64 Wh.
		r.intIn(p+".ct_ratio", m.CTRatio, 1, 10_000)
		r.intIn(p+".pt_ratio", m.PTRatio, 1, 1_000)
		checkRatios(cfg, r, p, m)
		r.intIn(p+".rated_current", m.RatedCurrent, 1, math.MaxInt32)
		// Both are optional: unset, the model's codes and the bus's timeout
		// apply. Written out, 0 is refused rather than read as "the
		// default": it looks like function code 0 or no deadline at all.
		if r.set[p+".function"] {
			r.intOneOf(p+".function", m.Function, int(meter.ReadHolding), int(meter.ReadInput))
		}
		if r.set[p+".timeout"] {
			// The bus's range: tarm/serial's read timeout tops out at 25.5 s.
			r.durationIn(p+".timeout", m.Timeout, 10*time.Millisecond, 25*time.Second)
		}
	}
}

// need reports a required string key that is empty and returns whether
// it is set.
func (r *report) need(key, val string) bool {
	if val != "" {
		return true
	}
	if r.set[key] || r.env[key] != "" {
		r.add(key, "must not be empty")
	} else {
		r.add(key, "required, not set")
	}
	return false
}

// oneOf reports a value outside allowed and returns whether it is allowed.
func (r *report) oneOf(key, val string, allowed ...string) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	r.add(key, "want one of %s, got %q", strings.Join(allowed, ", "), val)
	return false
}

func (r *report) intOneOf(key string, val int, allowed ...int) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = strconv.Itoa(a)
	}
	r.add(key, "want one of %s, got %d", strings.Join(s, ", "), val)
	return false
}

func (r *report) intIn(key string, val, lo, hi int) bool {
	if lo <= val && val <= hi {
		return true
	}
	if hi == math.MaxInt32 {
		r.add(key, "want an integer >= %d, got %d", lo, val)
	} else {
		r.add(key, "want %d..%d, got %d", lo, hi, val)
	}
	return false
}

func (r *report) durationIn(key string, val, lo, hi time.Duration) bool {
	if lo <= val && val <= hi {
		return true
	}
	r.add(key, "want %s..%s, got %s", shortDuration(lo), shortDuration(hi), shortDuration(val))
	return false
}

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// uniqueNames reports the second and later uses of a name.
type uniqueNames struct {
	r     *report
	what  string
	first map[string]string // name → key of its first use
}

func (r *report) unique(what string) *uniqueNames {
	return &uniqueNames{r: r, what: what, first: make(map[string]string)}
}

func (u *uniqueNames) check(key, name string) {
	if first, dup := u.first[name]; dup {
		u.r.add(key, "duplicate %s %q (first at %s)", u.what, name, u.r.where(first))
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
func checkRatios(cfg *Config, r *report, p string, m Meter) {
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
	r.add(key, "model %s reports primary values: set the transformer ratio in the meter, "+
		"or use a model with secondary: true", m.Model)
}
