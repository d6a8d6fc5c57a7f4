package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"mallgrid/gateway/yamlcheck"
)

// BusCompereMQTT is a bus of Compere's MQTT meters (KPM31, KPM33B, KPM37,
// KPM312): the gateway is either the broker they connect to (Bus.Listen)
// or a client of the mall's broker (Bus.Broker).
const BusCompereMQTT = "compere-mqtt"

// MQTTModels are the models a compere-mqtt bus takes; no other bus takes
// kpm31, kpm37 or kpm312, and kpm33b on a Modbus bus is its RS-485 port.
var MQTTModels = []string{"kpm31", "kpm33b", "kpm37", "kpm312"}

// DeviceIDLen is the length of a Compere meter id ("33B1225950027").
const DeviceIDLen = 13

// CommandSuffixLen is how many of a meter id's last characters name its
// command topics (MQTT_TELECTRL_<last 8>).
const CommandSuffixLen = 8

// IsMQTT reports whether b is a compere-mqtt bus.
func (b Bus) IsMQTT() bool { return b.Type == BusCompereMQTT }

// Embedded reports whether a compere-mqtt bus is served by the gateway's
// own broker rather than a client of the mall's.
func (b Bus) Embedded() bool { return b.IsMQTT() && b.Listen != "" }

// BusSecretVar is the environment variable that gives bus name's broker
// password: MALLGRID_BUS_FLOOR3_PASSWORD for bus floor3.
func BusSecretVar(name string) string {
	up := strings.ToUpper(strings.NewReplacer("-", "_").Replace(name))
	return EnvPrefix + "BUS_" + up + "_PASSWORD"
}

// busSecrets sets the passwords of compere-mqtt client buses from their
// variables in vars and returns the variables it read, and every one it
// would read (hints for a misspelt one). A variable for a bus that takes no
// password (not a broker client) is a warning: set, it would be ignored.
func busSecrets(cfg *Config, r *yamlcheck.Report, vars map[string]string) (used, known []string) {
	for i := range cfg.Buses {
		b := &cfg.Buses[i]
		if b.Name == "" {
			continue
		}
		name := BusSecretVar(b.Name)
		if b.Type != BusCompereMQTT || b.Listen != "" {
			if vars[name] != "" {
				r.WarnAt(0, "", "env %s: bus %s is not a client of an MQTT broker and takes no password: ignored", name, b.Name)
				used = append(used, name)
			}
			continue
		}
		known = append(known, name)
		if v := vars[name]; v != "" {
			r.Override(yamlcheck.Index("buses", i)+".password", "env "+name, v, &b.Password)
			used = append(used, name)
		}
	}
	return used, known
}

var (
	deviceID  = regexp.MustCompile(`^[0-9A-Za-z]{13}$`)
	hexSHA256 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	clientIDs = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)
)

// modbusBusKeys are the keys only Modbus buses take, mqttBusKeys those only
// compere-mqtt buses take.
var (
	modbusBusKeys = []string{"port", "baud", "parity", "stop_bits", "rs485", "timeout", "pause", "interval"}
	mqttBusKeys   = []string{"listen", "tls_cert", "tls_key", "username", "password_sha256", "broker", "ca_file", "password", "client_id"}
)

// validateMQTTBus checks compere-mqtt bus i. listens maps each listen
// address met so far to the index of its bus, and each client session
// (clientKey) to the index of the bus that holds it.
func validateMQTTBus(cfg *Config, r *yamlcheck.Report, i int, listens map[string]int) {
	b := &cfg.Buses[i]
	p := yamlcheck.Index("buses", i)
	for _, k := range modbusBusKeys {
		if r.Given(p + "." + k) {
			r.Add(p+"."+k, "applies to Modbus buses only (this bus is %s: its meters publish over MQTT)", b.Type)
		}
	}
	switch {
	case b.Listen == "" && b.Broker == "":
		r.Add(p, "a compere-mqtt bus needs listen: (the gateway is the meters' broker) or broker: (a client of the mall's broker)")
		return
	case b.Listen != "" && b.Broker != "":
		r.Add(p+".broker", "give either listen: (embedded broker) or broker: (client of the mall's broker), not both")
		return
	}
	if b.Listen != "" {
		validateEmbedded(cfg, r, i, listens)
	} else {
		validateClient(cfg, r, i, listens)
	}
}

// clientKey names a client bus's session on its broker: two buses with one
// client id on one broker would throw each other off, again and again.
func clientKey(b Bus) string { return "client\x00" + brokerKey(b.Broker) + "\x00" + b.ClientID }

// brokerKey is broker as two spellings of one broker compare: scheme and
// host name are case-insensitive. A name and an address of one host
// cannot be told apart without asking DNS, which a check must not.
func brokerKey(broker string) string { return strings.ToLower(broker) }

// commandScope is where a meter's command topics are heard: its bus's own
// broker, or the mall's broker, which every client bus of it shares.
func commandScope(b Bus) string {
	if b.Embedded() {
		return "bus " + b.Name
	}
	return "broker " + brokerKey(b.Broker)
}

func validateEmbedded(cfg *Config, r *yamlcheck.Report, i int, listens map[string]int) {
	b := cfg.Buses[i]
	p := yamlcheck.Index("buses", i)
	for _, k := range []string{"broker", "ca_file", "password", "client_id"} {
		if r.Given(p + "." + k) {
			r.Add(p+"."+k, "applies to a client of the mall's broker only (this bus listens: the gateway is the broker)")
		}
	}
	if msg := checkHostPort(b.Listen, true); msg != "" {
		r.Add(p+".listen", "%s", msg)
	} else {
		host, port, _ := net.SplitHostPort(b.Listen)
		if ip := net.ParseIP(host); ip != nil {
			host = ip.String()
		}
		n, _ := strconv.Atoi(port)
		// A wildcard host takes the port on every address: it collides
		// with any other listener on that port.
		for addr, first := range listens {
			fh, fp, _ := net.SplitHostPort(addr)
			if fp != strconv.Itoa(n) || n == 0 {
				continue
			}
			if fh == host || wildcard(fh) || wildcard(host) {
				r.Add(p+".listen", "the same address as bus %s (%s): two brokers cannot listen on one port", cfg.Buses[first].Name,
					r.Where(yamlcheck.Index("buses", first)+".listen"))
				break
			}
		}
		listens[net.JoinHostPort(host, strconv.Itoa(n))] = i
	}
	// Anonymous meters are refused: anyone on the mall's WiFi could
	// otherwise publish readings or subscribe to relay commands.
	r.Need(p+".username", b.Username)
	if r.Need(p+".password_sha256", b.PasswordSHA256) && !hexSHA256.MatchString(b.PasswordSHA256) {
		r.Add(p+".password_sha256", "want the hex SHA-256 of the meters' password (64 hex digits, e.g. from sha256sum), got %d characters", len(b.PasswordSHA256))
	} else if pw, ok := guessableDigest(b.PasswordSHA256); ok {
		r.Add(p+".password_sha256", "the SHA-256 of %q, a password anyone tries: any device that reaches %s could log in as %s and publish readings for this bus's meters; "+
			"make one (openssl rand -base64 18), set the meters up with it and give its SHA-256 (echo -n PASSWORD | sha256sum)", pw, b.Listen, b.Username)
	}
	if (b.TLSCert == "") != (b.TLSKey == "") {
		r.Add(p+".tls_key", "tls_cert and tls_key go together (one is missing)")
	} else if b.TLSCert != "" {
		okPaths := true
		for _, f := range []struct{ key, path string }{{p + ".tls_cert", b.TLSCert}, {p + ".tls_key", b.TLSKey}} {
			if !strings.HasPrefix(f.path, "/") {
				r.Add(f.key, "want an absolute path, got %q", f.path)
				okPaths = false
			}
		}
		if okPaths {
			if _, err := tls.LoadX509KeyPair(b.TLSCert, b.TLSKey); err != nil {
				r.Add(p+".tls_key", "the certificate and key are not a pair the broker can serve with: %v", err)
			}
		}
	}
}

func wildcard(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

func validateClient(cfg *Config, r *yamlcheck.Report, i int, sessions map[string]int) {
	b := &cfg.Buses[i]
	p := yamlcheck.Index("buses", i)
	for _, k := range []string{"tls_cert", "tls_key", "password_sha256"} {
		if r.Given(p + "." + k) {
			r.Add(p+"."+k, "applies to the embedded broker only (this bus is a client of %s)", b.Broker)
		}
	}
	scheme := checkBroker(r, p+".broker", b.Broker)
	checkCAFile(r, p+".ca_file", b.CAFile, scheme)
	if b.Password != "" && b.Username == "" {
		r.Add(p+".password", "a password needs a username")
	}
	if placeholder(b.Password) {
		r.Add(p+".password", "a placeholder, not a password: give the one the broker has for the gateway in %s (the service's environment file, /etc/mallgrid/environment)", BusSecretVar(b.Name))
	}
	if b.ClientID == "" {
		b.ClientID = defaultClientID(cfg.Site.Name, b.Name)
	} else if !clientIDs.MatchString(b.ClientID) {
		r.Add(p+".client_id", "want 1..64 letters, digits, _ . and -, got %q", b.ClientID)
	}
	if first, dup := sessions[clientKey(*b)]; dup {
		r.Add(p+".client_id", "bus %s already connects to %s as %s: the broker would throw one off for the other, again and again",
			cfg.Buses[first].Name, cfg.Buses[first].Broker, b.ClientID)
	} else {
		sessions[clientKey(*b)] = i
	}
}

// checkBroker checks an MQTT broker's address, tcp://host:port or
// ssl://host:port, at key and returns its scheme ("" when it is not good).
func checkBroker(r *yamlcheck.Report, key, broker string) string {
	u, err := url.Parse(broker)
	switch {
	case err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl"):
		r.Add(key, "want tcp://host:port or ssl://host:port, got %q", broker)
	case u.Path != "" || u.User != nil || u.RawQuery != "":
		r.Add(key, "want only scheme, host and port, got %q (credentials go in username and password)", broker)
	default:
		if msg := checkHostPort(u.Host, false); msg != "" {
			r.Add(key, "%s", msg)
			return ""
		}
		return u.Scheme
	}
	return ""
}

// checkCAFile checks the CA file at key, if one is given, that a client
// of a broker whose address has scheme ("" when not good) trusts.
func checkCAFile(r *yamlcheck.Report, key, path, scheme string) {
	switch {
	case path == "":
	case scheme == "tcp":
		r.Add(key, "applies to ssl:// brokers only")
	case !strings.HasPrefix(path, "/"):
		r.Add(key, "want an absolute path, got %q", path)
	default:
		if pem, err := os.ReadFile(path); err != nil {
			r.Add(key, "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			r.Add(key, "holds no PEM certificate")
		}
	}
}

// defaultClientID derives a stable client id from the site and bus names:
// the broker keeps the persistent session under it across restarts.
func defaultClientID(site, bus string) string {
	var s strings.Builder
	for _, c := range strings.ToLower(site) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			s.WriteRune(c)
		case s.Len() > 0 && !strings.HasSuffix(s.String(), "-"):
			s.WriteByte('-')
		}
	}
	id := "mallgrid-" + strings.Trim(s.String(), "-") + "-" + bus
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}

// checkMQTTMeter checks meter i on compere-mqtt bus b and sets its DeviceID.
// ids maps each device id met so far to the index of its meter, suffixes
// each bus and command-topic suffix likewise.
func checkMQTTMeter(cfg *Config, r *yamlcheck.Report, i int, ids map[string]int, suffixes map[[2]string]int) {
	m := &cfg.Meters[i]
	p := yamlcheck.Index("meters", i)
	for _, k := range []string{"function", "timeout", "interval", "ct_ratio", "pt_ratio"} {
		if r.Given(p + "." + k) {
			r.Add(p+"."+k, "applies to Modbus meters only (bus %s is %s: the meter publishes its own primary values)", m.Bus, BusCompereMQTT)
		}
	}
	if r.Given(p+".model") && !slices.Contains(MQTTModels, m.Model) {
		r.Add(p+".model", "want one of %s on a %s bus, got %q", strings.Join(MQTTModels, ", "), BusCompereMQTT, m.Model)
	}
	if r.Given(p+".relay_output") && m.RelayOutput != 1 && (m.Model != "kpm37" || m.RelayOutput != 2) {
		r.Add(p+".relay_output", "want 1 (do1), or 2 (do2) on a kpm37, the one model with a second output; got %d on a %s", m.RelayOutput, m.Model)
	}
	if !deviceID.MatchString(m.AddressText) {
		r.Add(p+".address", "want the meter's 13-character id like \"33B1225950027\" on a %s bus, got %q", BusCompereMQTT, m.AddressText)
		return
	}
	m.DeviceID = m.AddressText
	if first, dup := ids[m.DeviceID]; dup {
		r.Add(p+".address", "meter id %s is already meter %s's (%s)", m.DeviceID, cfg.Meters[first].ID, r.Where(yamlcheck.Index("meters", first)+".address"))
		return
	}
	ids[m.DeviceID] = i
	// Commands go to MQTT_TELECTRL_<last 8>: two meters sharing those
	// would both obey every relay command meant for one — on one bus's
	// broker, or on the mall's broker, whichever buses are its clients.
	b, _ := cfg.Bus(m.Bus)
	k := [2]string{commandScope(b), m.DeviceID[DeviceIDLen-CommandSuffixLen:]}
	if first, dup := suffixes[k]; dup {
		r.Add(p+".address", "meter id %s ends like meter %s's (%s) on %s: both would obey the commands to either, whose topics end with the last %d characters",
			m.DeviceID, cfg.Meters[first].ID, cfg.Meters[first].DeviceID, k[0], CommandSuffixLen)
		return
	}
	suffixes[k] = i
}

// Output is the relay output that switches m's circuit: RelayOutput, 1
// when not set.
func (m Meter) Output() int { return max(m.RelayOutput, 1) }

// parseModbusAddress reads a Modbus meter's address: an integer, in any
// notation YAML gives one (0x10 too).
func parseModbusAddress(s string) (int, bool) {
	n, err := strconv.ParseInt(s, 0, 32)
	return int(n), err == nil
}

// PasswordDigest returns b's password_sha256 decoded (nil when unset):
// the embedded broker compares a client's hashed password with it.
func (b Bus) PasswordDigest() []byte {
	h, _ := hex.DecodeString(b.PasswordSHA256)
	return h
}
