package config

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/drivers/meter"
)

// doc joins lines into a file, so that a case's line numbers can be read
// off its position in the list.
func doc(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// problems returns the problems in err, failing the test if err is not a
// *Problems.
func problems(t *testing.T, err error) Problems {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error; want problems")
	}
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got error %T %v; want *Problems", err, err)
	}
	if len(*ps) == 0 {
		t.Fatalf("got empty *Problems; want at least one problem")
	}
	return *ps
}

func TestParse_Problems(t *testing.T) {
	const head = "site: {name: M}"
	const bus = "buses: [{name: b1, port: /dev/ttyUSB0}]"
	cases := []struct {
		name string
		file []byte
		want string // the one problem, exactly
	}{
		// The file as a whole.
		{"empty file", doc(""), "t.yaml:1: file is empty; want a mapping with site, buses, meters…"},
		{"only comments", doc("# nothing yet"), "t.yaml:1: file is empty; want a mapping with site, buses, meters…"},
		{"not YAML", doc(head, "buses: [{name: b1, port: /dev/ttyUSB0}]", "meters: id: M-1"),
			"t.yaml:3: not YAML: mapping values are not allowed in this context"},
		{"tab indent", doc("site:", "\tname: M"),
			"t.yaml:2: not YAML: found character that cannot start any token (indent with spaces: YAML does not allow tabs)"},
		{"not a mapping", doc("- site", "- buses"), "t.yaml:1: want a mapping of keys, got a list"},
		{"second document", doc(head, bus, "---", "", "---", "site: {name: N}"), "t.yaml:5: a second YAML document; the file must hold one"},

		// Unknown and duplicate keys.
		{"unknown section", doc(head, bus, "tarifs: {}"),
			"t.yaml:3: tarifs: unknown key (did you mean tariffs?)"},
		{"unknown bus key", doc(head, "buses:", "  - name: b1", "    port: /dev/ttyUSB0", "    parit: E"),
			"t.yaml:5: buses[0].parit: unknown key (did you mean parity?)"},
		{"unknown key in wrong case", doc(head, "buses:", "  - name: b1", "    Port: /dev/ttyUSB0", "    port: /dev/ttyUSB0"),
			"t.yaml:4: buses[0].Port: unknown key (did you mean port?)"},
		{"unknown register key", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: uint32, scal: 0.01}"),
			"t.yaml:6: models[0].registers[0].scal: unknown key (did you mean scale?)"},
		{"duplicate key", doc(head, bus, "site: {name: N}"), "t.yaml:3: site: duplicate key (first at line 1)"},

		// Wrong types.
		{"word for an integer", doc(head, "buses:", "  - name: b1", "    port: /dev/ttyUSB0", "    baud: fast"),
			`t.yaml:5: buses[0].baud: want an integer, got "fast"`},
		{"fraction for an integer", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1.5, model: kpm33b, role: public}]"),
			`t.yaml:3: meters[0].address: want an integer, got "1.5"`},
		{"number without unit for a duration", doc(head, "buses:", "  - name: b1", "    port: /dev/ttyUSB0", "    timeout: 500"),
			`t.yaml:5: buses[0].timeout: want a duration like 500ms, 5s or 1m, got "500"`},
		{"word for a bool", doc(head, "buses:", "  - name: b1", "    port: /dev/ttyUSB0", "    rs485: maybe"),
			`t.yaml:5: buses[0].rs485: want true or false, got "maybe"`},
		{"scalar for a list", doc(head, "buses: b1"), `t.yaml:2: buses: want a list, got "b1"`},
		{"scalar for a section", doc("site: Demo Plaza", bus), `t.yaml:1: site: want a mapping of keys, got "Demo Plaza"`},
		{"list for a string", doc(head, "buses: [{name: [b1], port: /dev/ttyUSB0}]"),
			`t.yaml:2: buses[0].name: want a string, got a list`},

		// Missing required values.
		{"no site name", doc("site: {timezone: UTC}", bus), "t.yaml:1: site.name: required, not set"},
		{"no site section", doc(bus), "t.yaml:1: site.name: required, not set"},
		{"empty site name", doc(`site: {name: ""}`, bus), "t.yaml:1: site.name: must not be empty"},
		{"no buses", doc(head), "t.yaml:1: buses: at least one bus is required"},
		{"empty buses", doc(head, "buses: []"), "t.yaml:2: buses: at least one bus is required"},
		{"no bus port", doc(head, "buses:", "  - name: b1"), "t.yaml:3: buses[0].port: required, not set"},
		{"no meter address", doc(head, bus, "meters:", "  - id: M-1", "    bus: b1", "    model: kpm33b", "    role: public"),
			"t.yaml:4: meters[0].address: required, not set"},
		{"tenant meter without tenant", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b}]"),
			"t.yaml:3: meters[0].tenant: required for a tenant meter"},
		{"no tenant name", doc(head, bus, "tenants:", "  - id: T-1"), "t.yaml:4: tenants[0].name: required, not set"},

		// Out of range or not allowed.
		{"meter address", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 248, model: kpm33b, role: public}]"),
			"t.yaml:3: meters[0].address: want 1..247, got 248"},
		{"parity", doc(head, "buses: [{name: b1, port: /dev/ttyUSB0, parity: X}]"),
			`t.yaml:2: buses[0].parity: want one of N, E, O, got "X"`},
		{"baud", doc(head, "buses: [{name: b1, port: /dev/ttyUSB0, baud: 9601}]"),
			"t.yaml:2: buses[0].baud: want one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, got 9601"},
		{"stop bits", doc(head, "buses: [{name: b1, port: /dev/ttyUSB0, stop_bits: 3}]"),
			"t.yaml:2: buses[0].stop_bits: want one of 1, 2, got 3"},
		{"bus type", doc(head, "buses: [{name: b1, type: rs232, port: /dev/ttyUSB0}]"),
			`t.yaml:2: buses[0].type: want one of rtu, tcp, rtu+tcp, compere-mqtt, got "rs232"`},
		{"bus name", doc(head, "buses: [{name: Bus 1, port: /dev/ttyUSB0}]"),
			`t.yaml:2: buses[0].name: want lower-case letters, digits, _ and -, got "Bus 1"`},
		{"timeout", doc(head, "buses: [{name: b1, port: /dev/ttyUSB0, timeout: 30s}]"),
			"t.yaml:2: buses[0].timeout: want 10ms..25s, got 30s"},
		{"pause", doc(head, "buses: [{name: b1, port: /dev/ttyUSB0, pause: -1ms}]"),
			"t.yaml:2: buses[0].pause: want 0s..5s, got -1ms"},
		{"interval", doc(head, "buses: [{name: b1, port: /dev/ttyUSB0, interval: 2h}]"),
			"t.yaml:2: buses[0].interval: want 1s..1h, got 2h"},
		{"device path on rtu", doc(head, "buses: [{name: b1, port: '10.0.0.5:502'}]"),
			`t.yaml:2: buses[0].port: want a device path like /dev/ttyUSB0 for an rtu bus, got "10.0.0.5:502" (host:port needs type tcp or rtu+tcp)`},
		{"scheme on tcp", doc(head, "buses: [{name: b1, type: tcp, port: 'tcp://10.0.0.5:502'}]"),
			`t.yaml:2: buses[0].port: want host:port without a scheme, got "tcp://10.0.0.5:502"`},
		{"no host on rtu+tcp", doc(head, "buses: [{name: b1, type: rtu+tcp, port: ':502'}]"),
			`t.yaml:2: buses[0].port: want host:port with a host, got ":502"`},
		{"serial setting on tcp", doc(head, "buses:", "  - name: b1", "    type: tcp", "    port: 10.0.0.5:502", "    baud: 9600"),
			"t.yaml:6: buses[0].baud: applies to rtu buses only (this bus is tcp)"},
		{"relative storage path", doc(head, bus, "storage: {path: data/mallgrid.db}"),
			`t.yaml:3: storage.path: want an absolute path like /var/lib/mallgrid/mallgrid.db, got "data/mallgrid.db"`},
		{"lock timeout", doc(head, bus, "storage: {lock_timeout: 0s}"),
			"t.yaml:3: storage.lock_timeout: want 100ms..10m, got 0s"},
		{"samples kept in hours", doc(head, bus, "storage: {samples_keep: 48h}"),
			`t.yaml:3: storage.samples_keep: want whole days like 90d, 1d..1830d, got "48h"`},
		{"samples kept no days", doc(head, bus, "storage: {samples_keep: 0d}"),
			`t.yaml:3: storage.samples_keep: want whole days like 90d, 1d..1830d, got "0d"`},
		{"samples kept too long", doc(head, bus, "storage:", "  samples_keep: 2000d"),
			`t.yaml:4: storage.samples_keep: want whole days like 90d, 1d..1830d, got "2000d"`},
		{"time zone", doc("site: {name: M, timezone: Mars/Olympus}", bus),
			`t.yaml:1: site.timezone: unknown time zone "Mars/Olympus"; want an IANA name like Asia/Shanghai`},
		{"Local time zone", doc("site: {name: M, timezone: Local}", bus),
			`t.yaml:1: site.timezone: unknown time zone "Local"; want an IANA name like Asia/Shanghai`},
		{"currency", doc("site: {name: M, currency: yuan}", bus),
			`t.yaml:1: site.currency: want an ISO 4217 code like CNY, got "yuan"`},
		{"listen", doc(head, bus, "http: {listen: '8080'}"), `t.yaml:3: http.listen: want host:port, got "8080"`},
		{"log level", doc(head, bus, "log:", "  level: verbose"),
			`t.yaml:4: log.level: want one of debug, info, warn, error, got "verbose"`},
		{"log format", doc(head, bus, "log: {format: text}"), `t.yaml:3: log.format: want one of json, console, got "text"`},
		{"user role", doc(head, bus, "http:", "  users:", "    - name: ann",
			"      role: root", "      password_hash: $2b$10$GpDviQJehiJPXHenOvSob.HU0H5h.uzdR5LmWPmkAASC7CUzeo19q"),
			`t.yaml:6: http.users[0].role: want one of admin, operator, finance, viewer, got "root"`},
		{"password, not its hash", doc(head, bus, "http:", "  users:", "    - name: ann", "      password_hash: hunter2"),
			"t.yaml:6: http.users[0].password_hash: want a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters), not the password itself"},
		{"token, not its hash", doc(head, bus, "http:", "  tokens:", "    - name: sync", "      sha256: s3cret"),
			"t.yaml:6: http.tokens[0].sha256: want the token's SHA-256 as 64 hex digits, not the token itself"},
		{"finance is a role", doc(head, bus, "http:", "  tokens:", "    - name: sync", "      role: finances",
			"      sha256: 9e714eb902765d81f68c62012fd4986a419a6efa46f570129cbd5fea8d651a05"),
			`t.yaml:6: http.tokens[0].role: want one of admin, operator, finance, viewer, got "finances"`},
		{"session idle too short", doc(head, bus, "http: {session_idle: 10s}"), "t.yaml:3: http.session_idle: want 1m..24h, got 10s"},
		{"session idle too long", doc(head, bus, "http:", "  session_idle: 72h"), "t.yaml:4: http.session_idle: want 1m..24h, got 72h"},
		{"host with a scheme", doc(head, bus, "http:", "  hosts: [gw.mall.lan, 'http://gw.mall.lan']"),
			`t.yaml:4: http.hosts[1]: "http://gw.mall.lan": want a host name as a browser's address bar has it, without scheme or path`},
		{"host with a bad port", doc(head, bus, "http:", "  hosts:", "    - gw.mall.lan:99999"),
			`t.yaml:5: http.hosts[0]: "gw.mall.lan:99999": the port must be 1..65535`},
		{"tls without a key", doc(head, bus, "http:", "  tls:", "    cert: /etc/ssl/certs/ca-certificates.crt"),
			"t.yaml:4: http.tls.key: required, not set"},
		{"tls relative", doc(head, bus, "http:", "  tls: {cert: cert.pem, key: /dev/null}"),
			`t.yaml:4: http.tls.cert: want an absolute path like /etc/mallgrid/tls/cert.pem, got "cert.pem"`},
		{"meter role", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: landlord}]"),
			`t.yaml:3: meters[0].role: want one of tenant, public, main, got "landlord"`},
		{"ct ratio", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, ct_ratio: 0}]"),
			"t.yaml:3: meters[0].ct_ratio: want 1..10000, got 0"},
		{"ct ratio on a meter that reports primary values", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, ct_ratio: 40}]"),
			"t.yaml:3: meters[0].ct_ratio: model kpm33b reports primary values: set the transformer ratio in the meter, or use a model with secondary: true"},
		{"pt ratio", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, pt_ratio: -1}]"),
			"t.yaml:3: meters[0].pt_ratio: want 1..1000, got -1"},
		{"alarm factor", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public}]",
			"alarms:", "  defaults:", "    overload: {factor: 1.0, clear_factor: 1.2}"),
			"t.yaml:6: alarms.defaults.overload.clear_factor: 1.2 with factor 1: want above 0 and below factor, so that the alarm clears below where it is raised"},
		{"alarm category", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public}]",
			"alarms:", "  categories:", "    cinema: {appliance: {step_kw: 3}}"),
			`t.yaml:6: alarms.categories.cinema: no tenant has category "cinema" (tenants have [])`},
		{"alarm meter", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public}]",
			"alarms:", "  meters:", "    M-9:", "      voltage: {for: 5s}"),
			`t.yaml:6: alarms.meters.M-9: no meter "M-9" is configured`},
		{"alarm severity", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public}]",
			"alarms:", "  meters:", "    M-1:", "      voltage: {severity: loud}"),
			`t.yaml:7: alarms.meters.M-1.voltage.severity: want critical or warning, got "loud"`},
		{"alarm unknown key", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public}]",
			"alarms:", "  defaults:", "    overload: {fr: 10s}"),
			`t.yaml:6: alarms.defaults.overload.fr: unknown key (did you mean for?)`},
		{"rated current", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, rated_current: 0}]"),
			"t.yaml:3: meters[0].rated_current: want an integer >= 1, got 0"},
		{"meter function code", doc(head, bus, "meters:", "  - {id: M-1, bus: b1, address: 1, model: ddsu666, role: public,", "     function: 6}"),
			"t.yaml:5: meters[0].function: want one of 3, 4, got 6"},
		{"meter function code 0 written out", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: ddsu666, role: public, function: 0}]"),
			"t.yaml:3: meters[0].function: want one of 3, 4, got 0"},
		{"meter function code as a word", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: ddsu666, role: public, function: holding}]"),
			`t.yaml:3: meters[0].function: want an integer, got "holding"`},
		{"meter timeout too short", doc(head, bus, "meters:", "  - id: M-1", "    bus: b1", "    address: 1", "    model: kpm33b",
			"    role: public", "    timeout: 5ms"),
			"t.yaml:9: meters[0].timeout: want 10ms..25s, got 5ms"},
		{"meter timeout too long", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, timeout: 26s}]"),
			"t.yaml:3: meters[0].timeout: want 10ms..25s, got 26s"},
		{"meter timeout 0 written out", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, timeout: 0s}]"),
			"t.yaml:3: meters[0].timeout: want 10ms..25s, got 0s"},
		{"meter timeout without unit", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, timeout: 800}]"),
			`t.yaml:3: meters[0].timeout: want a duration like 500ms, 5s or 1m, got "800"`},
		{"meter interval longer than its bus's", doc(head, bus, "meters:", "  - {id: M-1, bus: b1, address: 1, model: kpm33b, role: public}",
			"  - {id: M-2, bus: b1, address: 2, model: kpm33b, role: public, interval: 20s}"),
			"t.yaml:5: meters[1].interval: 20s is longer than bus b1's interval (10s); a meter is read at least once a cycle"},
		{"meter interval under a second", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, interval: 500ms}]"),
			"t.yaml:3: meters[0].interval: want 1s..1h, got 500ms"},
		{"meter interval 0 written out", doc(head, bus, "meters: [{id: M-1, bus: b1, address: 1, model: kpm33b, role: public, interval: 0s}]"),
			"t.yaml:3: meters[0].interval: want 1s..1h, got 0s"},
		{"negative area", doc(head, bus, "tenants: [{id: T-1, name: Shop, area_m2: -1}]"),
			"t.yaml:3: tenants[0].area_m2: want a number from 0 to 10000000 (m²), got -1"},
		// Beyond 10 km² the area in cm² would overflow and be shared by as 0.
		{"area too large", doc(head, bus, "tenants: [{id: T-1, name: Shop, area_m2: 1e300}]"),
			"t.yaml:3: tenants[0].area_m2: want a number from 0 to 10000000 (m²), got 1e+300"},
		{"area just too large", doc(head, bus, "tenants: [{id: T-1, name: Shop, area_m2: 10000000.01}]"),
			"t.yaml:3: tenants[0].area_m2: want a number from 0 to 10000000 (m²), got 1.000000001e+07"},
		{"empty credit rating", doc(head, bus, "tenants: [{id: T-1, name: Shop, credit_rating: ''}]"),
			"t.yaml:3: tenants[0].credit_rating: must not be empty"},
		{"contact unreachable", doc(head, bus, "tenants:", "  - id: T-1", "    name: Shop", "    contacts:", "      - name: Li"),
			"t.yaml:7: tenants[0].contacts[0]: want a phone, an email or a wechat_openid to reach Li"},

		// Duplicates.
		{"bus names", doc(head, "buses:", "  - {name: b1, port: /dev/ttyUSB0}", "  - {name: b1, port: /dev/ttyUSB1}"),
			`t.yaml:4: buses[1].name: duplicate bus name "b1" (first at line 3)`},
		{"meter ids", doc(head, bus, "meters:",
			"  - {id: M-1, bus: b1, address: 1, model: kpm33b, role: public}",
			"  - {id: M-1, bus: b1, address: 2, model: kpm33b, role: public}"),
			`t.yaml:5: meters[1].id: duplicate meter id "M-1" (first at line 4)`},
		{"tenant ids", doc(head, bus, "tenants:", "  - {id: T-1, name: A}", "  - {id: T-1, name: B}"),
			`t.yaml:5: tenants[1].id: duplicate tenant id "T-1" (first at line 4)`},
		{"model names", doc(head, bus, "models:",
			"  - {name: mine, registers: [{quantity: import_kwh, address: 0, type: uint32}]}",
			"  - {name: mine, registers: [{quantity: import_kwh, address: 0, type: uint32}]}"),
			`t.yaml:5: models[1].name: duplicate model name "mine" (first at line 4)`},
		{"user names", doc(head, bus, "http:", "  users:",
			"    - {name: ann, password_hash: $2b$10$GpDviQJehiJPXHenOvSob.HU0H5h.uzdR5LmWPmkAASC7CUzeo19q}",
			"    - {name: ann, password_hash: $2b$10$4lzBHFu0lvDQdNWNoEtdIeHHnvc2G03e7jorAAHabtAYndYJG7gHe}"),
			`t.yaml:6: http.users[1].name: duplicate user name "ann" (first at line 5)`},
		{"token names", doc(head, bus, "http:", "  tokens:",
			"    - {name: sync, sha256: 9e714eb902765d81f68c62012fd4986a419a6efa46f570129cbd5fea8d651a05}",
			"    - {name: sync, sha256: 41e3be11b087c2ce15e7e9cfc20976e7bb5319f6507c8c3ac0b0319a00b0444b}"),
			`t.yaml:6: http.tokens[1].name: duplicate token name "sync" (first at line 5)`},
		{"bus and address", doc(head, bus, "meters:",
			"  - {id: M-1, bus: b1, address: 5, model: kpm33b, role: public}",
			"  - {id: M-2, bus: b1, address: 5, model: kpm33b, role: public}"),
			"t.yaml:5: meters[1].address: address 5 on bus b1 is already used by meter M-1 (line 4)"},

		// References; each points at the line of the referring key.
		{"unknown bus", doc(head, bus, "meters:", "  - id: M-1", "    bus: b9", "    address: 1", "    model: kpm33b", "    role: public"),
			`t.yaml:5: meters[0].bus: unknown bus "b9" (buses: b1)`},
		{"unknown model", doc(head, bus, "meters:", "  - id: M-1", "    bus: b1", "    address: 1", "    model: kpm99", "    role: public"),
			`t.yaml:7: meters[0].model: unknown model "kpm99" (models: ddsu666, dtsu666, kpm33b, sdm120, sdm630)`},
		{"unknown tenant", doc(head, bus, "meters:", "  - id: M-1", "    bus: b1", "    address: 1", "    model: kpm33b", "    tenant: T-9"),
			`t.yaml:8: meters[0].tenant: unknown tenant "T-9"`},
		{"tenant on a public meter", doc(head, bus, "tenants: [{id: T-1, name: Shop}]", "meters:",
			"  - {id: M-1, bus: b1, address: 1, model: kpm33b, role: public,", "     tenant: T-1}"),
			"t.yaml:6: meters[0].tenant: only tenant meters name a tenant (this meter is public)"},

		// Custom models.
		{"built-in name", doc(head, bus, "models:", "  - name: kpm33b",
			"    registers: [{quantity: import_kwh, address: 0, type: uint32}]"),
			`t.yaml:4: models[0].name: "kpm33b" is a built-in model; give the custom one another name`},
		{"unknown quantity", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: uint32}", "      - {quantity: energy, address: 2, type: uint32}"),
			`t.yaml:7: models[0].registers[1].quantity: want one of voltage_a, voltage_b, voltage_c, current_a, current_b, current_c, ` +
				`power_a, power_b, power_c, power, pf_a, pf_b, pf_c, pf, frequency, import_kwh, export_kwh, sharp_kwh, peak_kwh, ` +
				`flat_kwh, valley_kwh, residual_current, temp_a, temp_b, temp_c, temp_n, got "energy"`},
		{"quantity twice", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: uint32}", "      - {quantity: import_kwh, address: 2, type: uint32}"),
			"t.yaml:7: models[0].registers[1].quantity: import_kwh is mapped twice (first at line 6)"},
		{"no billing counter", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: power, address: 0, type: float32}"),
			"t.yaml:5: models[0].registers: no register holds import_kwh (the billing counter)"},
		{"no registers", doc(head, bus, "models:", "  - name: mine"),
			"t.yaml:4: models[0].registers: want at least the import_kwh register (the billing counter)"},
		{"unit cannot express quantity", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - quantity: import_kwh", "        address: 0", "        type: uint32", "        unit: kW"),
			`t.yaml:9: models[0].registers[0].unit: "kW" cannot express import_kwh (in kWh or a multiple)`},
		{"unit on power factor", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: uint32}", "      - {quantity: pf, address: 2, type: int16, unit: '%'}"),
			`t.yaml:7: models[0].registers[1].unit: "%" cannot express pf (a plain ratio, unit left out)`},
		{"register type", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: float16}"),
			`t.yaml:6: models[0].registers[0].type: want one of int16, uint16, int32, uint32, float32, float64, got "float16"`},
		{"register address", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0x10000, type: uint32}"),
			"t.yaml:6: models[0].registers[0].address: want 0..65535, got 65536"},
		{"register past the end", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0xFFFE, type: float64}"),
			"t.yaml:6: models[0].registers[0].address: a float64 at 0xFFFE runs past register 0xFFFF"},
		{"no register address", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, type: uint32}"),
			"t.yaml:6: models[0].registers[0].address: required, not set"},
		{"function code", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: uint32, function: 5}"),
			"t.yaml:6: models[0].registers[0].function: want one of 3, 4, got 5"},
		{"word order", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: uint32, word_order: middle}"),
			`t.yaml:6: models[0].registers[0].word_order: want one of big, little, got "middle"`},
		{"zero scale", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0, type: uint32, scale: 0}"),
			"t.yaml:6: models[0].registers[0].scale: want a non-zero number, got 0"},
		{"zero max read", doc(head, bus, "models:", "  - name: mine", "    max_read: 0",
			"    registers: [{quantity: import_kwh, address: 0, type: uint32}]"),
			"t.yaml:5: models[0].max_read: want 1..125, got 0"},
		{"max read past the Modbus limit", doc(head, bus, "models:", "  - name: mine", "    max_read: 126",
			"    registers: [{quantity: import_kwh, address: 0, type: uint32}]"),
			"t.yaml:5: models[0].max_read: want 1..125, got 126"},
		{"max read shorter than a value", doc(head, bus, "models:", "  - name: mine", "    max_read: 2",
			"    registers: [{quantity: import_kwh, address: 0, type: float64}]"),
			"t.yaml:4: models[0]: model mine: import_kwh: a float64 does not fit in a read of 2 registers"},
		{"zero max gap", doc(head, bus, "models:", "  - name: mine", "    max_gap: 0",
			"    registers: [{quantity: import_kwh, address: 0, type: uint32}]"),
			"t.yaml:5: models[0].max_gap: want 1..125, got 0"},
		{"register in unreadable range", doc(head, bus, "models:", "  - name: mine", "    registers:",
			"      - {quantity: import_kwh, address: 0x10, type: uint32}", "    unreadable: [{from: 0x10, to: 0x1F}]"),
			"t.yaml:6: models[0].registers[0].address: 0x0010 lies in unreadable range 0x0010..0x001F (line 7)"},
		{"unreadable backwards", doc(head, bus, "models:", "  - name: mine",
			"    registers: [{quantity: import_kwh, address: 0, type: uint32}]", "    unreadable:", "      - {from: 0x1F, to: 0x10}"),
			"t.yaml:7: models[0].unreadable[0].to: want to >= from (0x001F), got 0x0010"},
		{"relay without coil", doc(head, bus, "models:", "  - name: mine",
			"    registers: [{quantity: import_kwh, address: 0, type: uint32}]", "    relay:", "      remote_mode: {address: 0x1E, values: [0xDD22]}"),
			"t.yaml:6: models[0].relay.coil: required, not set"},
		{"remote mode value", doc(head, bus, "models:", "  - name: mine",
			"    registers: [{quantity: import_kwh, address: 0, type: uint32}]",
			"    relay: {coil: 1, remote_mode: {address: 0x1E, values: [0x1DD22]}}"),
			"t.yaml:6: models[0].relay.remote_mode.values[0]: want 0..65535, got 122146"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", tc.file, nil)
			if cfg != nil {
				t.Errorf("got a *Config with problems; want nil")
			}
			ps := problems(t, err)
			if len(ps) != 1 || ps[0].Error() != tc.want {
				t.Errorf("got %d problems:\n%v\nwant exactly:\n%s", len(ps), err, tc.want)
			}
		})
	}
}

func TestParse_AllProblemsInOneRun(t *testing.T) {
	file := doc(
		"site:",                    // 1
		"  timezone: Mars/Olympus", // 2: bad zone; name missing (reported at site:, line 1)
		"buses:",                   // 3
		"  - name: b1",             // 4
		"    port: /dev/ttyUSB0",   // 5
		"    parity: X",            // 6: not N/E/O
		"    baud: fast",           // 7: not an integer
		"meters:",                  // 8
		"  - id: M-1",              // 9
		"    bus: b2",              // 10: unknown bus
		"    address: 1",           // 11
		"    model: kpm33b",        // 12
		"    tenant: T-1",          // 13
		"    rated_curent: 60",     // 14: unknown key
		"  - {id: M-1, bus: b1, address: 0, model: x, tenant: T-1}", // 15: duplicate id, address, model
		"tenants: [{id: T-1, name: Shop}]",                          // 16
	)
	want := []string{
		"t.yaml:1: site.name: required, not set",
		`t.yaml:2: site.timezone: unknown time zone "Mars/Olympus"; want an IANA name like Asia/Shanghai`,
		`t.yaml:6: buses[0].parity: want one of N, E, O, got "X"`,
		`t.yaml:7: buses[0].baud: want an integer, got "fast"`,
		`t.yaml:10: meters[0].bus: unknown bus "b2" (buses: b1)`,
		"t.yaml:14: meters[0].rated_curent: unknown key (did you mean rated_current?)",
		`t.yaml:15: meters[1].id: duplicate meter id "M-1" (first at line 9)`,
		"t.yaml:15: meters[1].address: want 1..247, got 0",
		`t.yaml:15: meters[1].model: unknown model "x" (models: ddsu666, dtsu666, kpm33b, sdm120, sdm630)`,
	}
	_, err := Parse("t.yaml", file, nil)
	ps := problems(t, err)
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := 1; i < len(ps); i++ {
		if ps[i-1].Line > ps[i].Line {
			t.Errorf("got problem %d at line %d after line %d; want *Problems sorted by line", i, ps[i].Line, ps[i-1].Line)
		}
	}
}

// minimal returns the smallest file that loads: everything else is a default.
func minimal() []byte {
	return doc(
		"site: {name: Mall}",
		"buses: [{name: b1, port: /dev/ttyUSB0}]",
		"models: [{name: mine, registers: [{quantity: import_kwh, address: 0, type: uint32}]}]",
		"meters: [{id: M-1, bus: b1, address: 1, model: mine, tenant: T-1}]",
		"tenants: [{id: T-1, name: Shop}]",
		"http: {users: [{name: ann, password_hash: $2b$10$GpDviQJehiJPXHenOvSob.HU0H5h.uzdR5LmWPmkAASC7CUzeo19q}]}",
	)
}

func TestParse_Defaults(t *testing.T) {
	cfg, err := Parse("t.yaml", minimal(), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b, m, tn, reg := cfg.Buses[0], cfg.Meters[0], cfg.Tenants[0], cfg.Models[0].Registers[0]
	cases := []struct {
		key       string
		got, want any
	}{
		{"site.timezone", cfg.Site.Timezone, "Asia/Shanghai"},
		{"site.currency", cfg.Site.Currency, "CNY"},
		{"storage.path", cfg.Storage.Path, "/var/lib/mallgrid/mallgrid.db"},
		{"storage.lock_timeout", cfg.Storage.LockTimeout, 5 * time.Second},
		{"storage.samples_keep", cfg.Storage.SamplesRetention(), 90 * 24 * time.Hour},
		{"http.listen", cfg.HTTP.Listen, "127.0.0.1:8080"},
		{"http.users[0].role", cfg.HTTP.Users[0].Role, RoleViewer},
		{"http.session_idle", cfg.HTTP.SessionIdle, 30 * time.Minute},
		{"http.tls", cfg.HTTP.TLS == nil, true},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format", cfg.Log.Format, "json"},
		{"buses[0].type", b.Type, BusRTU},
		{"buses[0].baud", b.Baud, 9600},
		{"buses[0].parity", b.Parity, "E"},
		{"buses[0].stop_bits", b.StopBits, 1},
		{"buses[0].rs485", b.RS485, false},
		{"buses[0].timeout", b.Timeout, 500 * time.Millisecond},
		{"buses[0].pause", b.Pause, time.Duration(0)},
		{"buses[0].interval", b.Interval, 10 * time.Second},
		{"models[0].max_gap", cfg.Models[0].MaxGap, 50},
		{"models[0].max_read", cfg.Models[0].MaxRead, 125},
		{"models[0].registers[0].function", reg.Function, 3},
		{"models[0].registers[0].word_order", reg.WordOrder, "big"},
		{"models[0].registers[0].byte_order", reg.ByteOrder, "big"},
		{"models[0].registers[0].scale", reg.Scale, 1.0},
		{"models[0].registers[0].unit", reg.Unit, "kWh"},
		{"meters[0].role", m.Role, TenantMeter},
		{"meters[0].ct_ratio", m.CTRatio, 1},
		{"meters[0].pt_ratio", m.PTRatio, 1},
		{"meters[0].rated_current", m.RatedCurrent, 60},
		{"meters[0].function", m.Function, 0},
		{"meters[0].timeout", m.Timeout, time.Duration(0)},
		{"tenants[0].category", tn.Category, "retail"},
		{"tenants[0].area_m2", tn.AreaM2, 0.0},
		{"tenants[0].credit_rating", tn.CreditRating, "A"},
		{"tenants[0].tariff", tn.Tariff, "standard"},
		{"Location", cfg.Location.String(), "Asia/Shanghai"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.key, tc.got, tc.want)
		}
	}
	if _, err := cfg.Catalogue.Lookup("mine"); err != nil {
		t.Errorf("Catalogue.Lookup(mine): got %v; want the custom model", err)
	}
	if _, err := cfg.Catalogue.Lookup("kpm33b"); err != nil {
		t.Errorf("Catalogue.Lookup(kpm33b): got %v; want the built-in model", err)
	}
}

func TestParse_NullTakesDefault(t *testing.T) {
	file := doc("site: {name: Mall}", "buses:", "  - name: b1", "    port: /dev/ttyUSB0", "    timeout:", "log:")
	cfg, err := Parse("t.yaml", file, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := cfg.Buses[0].Timeout, 500*time.Millisecond; got != want {
		t.Errorf("timeout with no value: got %v; want the default %v", got, want)
	}
	if got, want := cfg.Log.Level, "info"; got != want {
		t.Errorf("log with no value: got level %q; want the default %q", got, want)
	}
}

func TestParse_Env(t *testing.T) {
	file := doc(
		"site: {name: Mall}",
		"buses: [{name: b1, port: /dev/ttyUSB0}]",
		"http: {listen: '127.0.0.1:8080'}",
		"log: {level: warn}",
	)
	cases := []struct {
		name string
		file []byte
		env  []string
		get  func(*Config) any
		want any
	}{
		{"no environment: the file", file, nil,
			func(c *Config) any { return c.HTTP.Listen }, "127.0.0.1:8080"},
		{"env wins over the file", file, []string{"MALLGRID_HTTP_LISTEN=0.0.0.0:9000"},
			func(c *Config) any { return c.HTTP.Listen }, "0.0.0.0:9000"},
		{"env wins over a default", file, []string{"MALLGRID_STORAGE_PATH=/data/m.db"},
			func(c *Config) any { return c.Storage.Path }, "/data/m.db"},
		{"env duration", file, []string{"MALLGRID_STORAGE_LOCK_TIMEOUT=2s"},
			func(c *Config) any { return c.Storage.LockTimeout }, 2 * time.Second},
		{"env supplies a required key", doc("buses: [{name: b1, port: /dev/ttyUSB0}]"), []string{"MALLGRID_SITE_NAME=Env Mall"},
			func(c *Config) any { return c.Site.Name }, "Env Mall"},
		{"env fixes a bad file value", doc("site: {name: Mall}", "buses: [{name: b1, port: /dev/ttyUSB0}]", "log: {level: loud}"),
			[]string{"MALLGRID_LOG_LEVEL=debug"},
			func(c *Config) any { return c.Log.Level }, "debug"},
		{"later entry wins", file, []string{"MALLGRID_LOG_LEVEL=debug", "MALLGRID_LOG_LEVEL=error"},
			func(c *Config) any { return c.Log.Level }, "error"},
		{"empty variable is unset", file, []string{"MALLGRID_LOG_LEVEL="},
			func(c *Config) any { return c.Log.Level }, "warn"},
		{"other variables ignored", file, []string{"MALLGRID_CONFIG=/etc/x.yaml", "HTTP_LISTEN=x", "PATH=/bin"},
			func(c *Config) any { return c.HTTP.Listen }, "127.0.0.1:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", tc.file, tc.env)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tc.get(cfg); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestParse_EnvProblems(t *testing.T) {
	file := doc("site: {name: Mall}", "buses: [{name: b1, port: /dev/ttyUSB0}]")
	cases := []struct {
		env  string
		want string
	}{
		{"MALLGRID_HTTP_LISTEN=nope", `t.yaml: http.listen: env MALLGRID_HTTP_LISTEN: want host:port, got "nope"`},
		{"MALLGRID_LOG_LEVEL=loud", `t.yaml: log.level: env MALLGRID_LOG_LEVEL: want one of debug, info, warn, error, got "loud"`},
		{"MALLGRID_STORAGE_LOCK_TIMEOUT=soon",
			`t.yaml: storage.lock_timeout: env MALLGRID_STORAGE_LOCK_TIMEOUT: want a duration like 500ms, 5s or 1m, got "soon"`},
		{"MALLGRID_STORAGE_LOCK_TIMEOUT=1h",
			`t.yaml: storage.lock_timeout: env MALLGRID_STORAGE_LOCK_TIMEOUT: want 100ms..10m, got 1h`},
		{"MALLGRID_STORAGE_PATH=mallgrid.db",
			`t.yaml: storage.path: env MALLGRID_STORAGE_PATH: want an absolute path like /var/lib/mallgrid/mallgrid.db, got "mallgrid.db"`},
		{"MALLGRID_SITE_TIMEZONE=Moon/Base",
			`t.yaml: site.timezone: env MALLGRID_SITE_TIMEZONE: unknown time zone "Moon/Base"; want an IANA name like Asia/Shanghai`},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			_, err := Parse("t.yaml", file, []string{tc.env})
			ps := problems(t, err)
			if len(ps) != 1 || ps[0].Error() != tc.want {
				t.Errorf("got %d problems:\n%v\nwant exactly:\n%s", len(ps), err, tc.want)
			}
		})
	}
}

// The environment is a parameter: the process's own must not leak in.
func TestParse_IgnoresProcessEnv(t *testing.T) {
	t.Setenv("MALLGRID_LOG_LEVEL", "debug")
	cfg, err := Parse("t.yaml", minimal(), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := cfg.Log.Level, "info"; got != want {
		t.Errorf("got log.level %q with env nil; want %q", got, want)
	}
}

func TestParse_MergeKeys(t *testing.T) {
	file := doc(
		"site: {name: Mall}",
		"buses:",
		"  - &serial {name: b1, port: /dev/ttyUSB0, baud: 19200, parity: N}",
		"  - <<: *serial",
		"    name: b2",
		"    port: /dev/ttyUSB1",
		"    parity: O",
	)
	cfg, err := Parse("t.yaml", file, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b2, ok := cfg.Bus("b2")
	if !ok {
		t.Fatalf("Bus(b2): not found")
	}
	if b2.Baud != 19200 || b2.Parity != "O" || b2.Port != "/dev/ttyUSB1" {
		t.Errorf("got b2 baud %d parity %s port %s; want 19200 (merged) O /dev/ttyUSB1 (own)", b2.Baud, b2.Parity, b2.Port)
	}
}

// A file that includes itself must end in a problem, not a hang or a crash.
func TestParse_AliasLoop(t *testing.T) {
	file := doc("site: &x", "  name: M", "  <<: *x", "buses: [{name: b1, port: /dev/ttyUSB0}]")
	_, err := Parse("t.yaml", file, nil)
	ps := problems(t, err)
	if got, want := ps[0].Msg, "too deeply nested or too many aliases"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestLoad_Unreadable(t *testing.T) {
	path := t.TempDir() + "/missing.yaml"
	cfg, err := Load(path, nil)
	if cfg != nil {
		t.Errorf("got a *Config; want nil")
	}
	ps := problems(t, err)
	if got, want := ps[0].Error(), path+": cannot read: no such file or directory"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestConfig_Lookups(t *testing.T) {
	file := doc(
		"site: {name: Mall}",
		"buses: [{name: b1, port: /dev/ttyUSB0}, {name: b2, port: /dev/ttyUSB1}, {name: b3, port: /dev/ttyUSB2}]",
		"meters:",
		"  - {id: M-1, bus: b1, address: 1, model: kpm33b, role: main}",
		"  - {id: M-2, bus: b2, address: 1, model: kpm33b, tenant: T-1}",
		"  - {id: M-3, bus: b1, address: 2, model: kpm33b, role: public}",
		"tenants: [{id: T-1, name: Shop}]",
	)
	cfg, err := Parse("t.yaml", file, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if b, ok := cfg.Bus("b2"); !ok || b.Port != "/dev/ttyUSB1" {
		t.Errorf("Bus(b2): got %+v, %v; want port /dev/ttyUSB1, true", b, ok)
	}
	if _, ok := cfg.Bus("b9"); ok {
		t.Errorf("Bus(b9): got true; want false")
	}
	var ids []string
	for _, m := range cfg.MetersOn("b1") {
		ids = append(ids, m.ID)
	}
	if got, want := strings.Join(ids, ","), "M-1,M-3"; got != want {
		t.Errorf("MetersOn(b1): got %s; want %s", got, want)
	}
	if got := cfg.MetersOn("b3"); got != nil {
		t.Errorf("MetersOn(b3): got %v; want nil", got)
	}
	if tn, ok := cfg.Tenant("T-1"); !ok || tn.Name != "Shop" {
		t.Errorf("Tenant(T-1): got %+v, %v; want Shop, true", tn, ok)
	}
	if _, ok := cfg.Tenant("T-9"); ok {
		t.Errorf("Tenant(T-9): got true; want false")
	}
}

// Load keeps no state between calls, so concurrent loads are safe (run
// with -race).
func TestParse_Concurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Parse("t.yaml", minimal(), []string{"MALLGRID_LOG_LEVEL=debug"}); err != nil {
				t.Errorf("Parse: %v", err)
			}
		}()
	}
	wg.Wait()
}

// A trailing --- (an empty second document) holds nothing that would be
// ignored, so it is no problem.
func TestParse_TrailingDocumentMarker(t *testing.T) {
	file := append(minimal(), "---\n# nothing here\n"...)
	if _, err := Parse("t.yaml", file, nil); err != nil {
		t.Errorf("got %v; want no problem", err)
	}
}

func TestConfig_ModelOfAndTimeoutOf(t *testing.T) {
	file := doc(
		"site: {name: Mall}",
		"buses: [{name: b1, port: /dev/ttyUSB0, timeout: 300ms}]",
		"meters:",
		"  - {id: M-1, bus: b1, address: 1, model: ddsu666, role: public}",
		"  - {id: M-2, bus: b1, address: 2, model: ddsu666, role: public, function: 3, timeout: 2s}",
		"  - {id: M-3, bus: b1, address: 3, model: dtsu666, role: public, function: 3}",
		"  - {id: M-4, bus: b1, address: 4, model: mine, role: public, function: 4}",
		"models: [{name: mine, max_read: 40, registers: [{quantity: import_kwh, address: 0, type: uint32}]}]",
	)
	cfg, err := Parse("t.yaml", file, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	cases := []struct {
		meter       int
		wantFC      uint8
		wantTitle   string
		wantTimeout time.Duration
	}{
		{0, meter.ReadInput, "CHINT DDSU666 single-phase", 300 * time.Millisecond},
		{1, meter.ReadHolding, "CHINT DDSU666 single-phase, read with FC03", 2 * time.Second},
		{2, meter.ReadHolding, "CHINT DTSU666 three-phase", 300 * time.Millisecond},
		{3, meter.ReadInput, ", read with FC04", 300 * time.Millisecond},
	}
	for _, tc := range cases {
		m := cfg.Meters[tc.meter]
		model, err := cfg.ModelOf(m)
		if err != nil {
			t.Fatalf("ModelOf(%s): %v", m.ID, err)
		}
		if model.Name != m.Model || model.Title != tc.wantTitle {
			t.Errorf("ModelOf(%s): got %s %q; want %s %q", m.ID, model.Name, model.Title, m.Model, tc.wantTitle)
		}
		for _, r := range model.Registers {
			if r.Function != tc.wantFC {
				t.Errorf("ModelOf(%s): %s read with FC%02d; want FC%02d", m.ID, r.Quantity, r.Function, tc.wantFC)
			}
		}
		if got := cfg.TimeoutOf(m); got != tc.wantTimeout {
			t.Errorf("TimeoutOf(%s): got %v; want %v", m.ID, got, tc.wantTimeout)
		}
	}
	if mine, _ := cfg.ModelOf(cfg.Meters[3]); mine.MaxRead != 40 {
		t.Errorf("custom model max_read: got %d; want 40", mine.MaxRead)
	}
	// The override is a copy: the catalogue's model, shared by every meter
	// without function:, keeps its own codes.
	shared, _ := cfg.Catalogue.Lookup("ddsu666")
	if fc := shared.Registers[0].Function; fc != meter.ReadInput {
		t.Errorf("catalogue ddsu666 reads with FC%02d after ModelOf; want FC04", fc)
	}
	if _, err := cfg.ModelOf(Meter{ID: "M-9", Model: "kpm99"}); !errors.Is(err, meter.ErrUnknownModel) {
		t.Errorf("ModelOf(unknown model): got %v; want ErrUnknownModel", err)
	}
	if _, err := cfg.ModelOf(Meter{ID: "M-9", Model: "ddsu666", Function: 259}); !errors.Is(err, meter.ErrBadFunction) {
		t.Errorf("ModelOf(function 259): got %v; want ErrBadFunction", err)
	}
}

// A model that reports secondary values takes transformer ratios, and the
// catalogue says so to the poller.
func TestParse_RatiosOnASecondaryModel(t *testing.T) {
	src := strings.Join([]string{
		"site: {name: x}",
		"buses: [{name: b1, port: /dev/ttyUSB0}]",
		"models:",
		"  - name: ct-meter",
		"    secondary: true",
		"    registers: [{quantity: import_kwh, address: 0, type: float32}]",
		"meters: [{id: M-1, bus: b1, address: 1, model: ct-meter, role: main, ct_ratio: 200, pt_ratio: 100}]",
	}, "\n")
	cfg, err := Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	m, err := cfg.ModelOf(cfg.Meters[0])
	if err != nil || !m.Secondary || cfg.Meters[0].CTRatio != 200 || cfg.Meters[0].PTRatio != 100 {
		t.Errorf("model %+v, meter %+v, %v; want a secondary model with ratios 200 and 100", m, cfg.Meters[0], err)
	}
}

// A key written with no value takes its default, even over a merged value.
func TestParse_NullOverMergedKey(t *testing.T) {
	file := doc(
		"site: {name: Mall}",
		"buses:",
		"  - &serial {name: b1, port: /dev/ttyUSB0, baud: 19200, parity: N}",
		"  - <<: *serial",
		"    name: b2",
		"    port: /dev/ttyUSB1",
		"    baud: ~",
	)
	cfg, err := Parse("t.yaml", file, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b2, _ := cfg.Bus("b2")
	if b2.Baud != 9600 || b2.Parity != "N" {
		t.Errorf("got b2 baud %d parity %s; want 9600 (the default) N (merged)", b2.Baud, b2.Parity)
	}
}

// A mistake in a mapping merged into several entries is one problem, at
// the line of the mistake.
func TestParse_MergedMistakeReportedOnce(t *testing.T) {
	file := doc(
		"site: {name: Mall}",
		"buses:",
		"  - &serial {name: b1, port: /dev/ttyUSB0, baud: fast, colour: red}",
		"  - {<<: *serial, name: b2, port: /dev/ttyUSB1}",
		"  - {<<: *serial, name: b3, port: /dev/ttyUSB2}",
	)
	_, err := Parse("t.yaml", file, nil)
	want := `t.yaml:3: buses[0].baud: want an integer, got "fast"` + "\n" +
		"t.yaml:3: buses[0].colour: unknown key (allowed: baud, broker, ca_file, client_id, interval, listen, name, parity, password, password_sha256, pause, port, rs485, stop_bits, timeout, tls_cert, tls_key, type, username)"
	if got := problems(t, err).Error(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestParse_Tariffs(t *testing.T) {
	base := []string{
		"site: {name: x, resale_price_cap: '1.50'}",
		"buses: [{name: b1, port: /dev/ttyUSB0}]",
		"tenants: [{id: T-1, name: Shop, tariff: office}]",
		"tariffs:",
		"  - {name: office, kind: flat, price: '1.05'}",
	}
	cfg, err := Parse("t.yaml", []byte(strings.Join(base, "\n")), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tf, ok := cfg.TariffOf("T-1")
	if !ok || tf.Name() != "office" || tf.MaxPrice().String() != "1.05" {
		t.Errorf("TariffOf(T-1) = %v, %v; want office at 1.05", tf, ok)
	}
	for _, tt := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"unknown tariff", []string{"  - {name: shop, kind: flat, price: '1.05'}"},
			`t.yaml:3: tenants[0].tariff: unknown tariff "office" (tariffs: shop)`},
		{"above the cap", []string{"  - {name: office, kind: flat, price: '1.80'}"},
			"t.yaml:5: tariffs[0].price:"},
		{"bad window", []string{"  - name: office", "    kind: tou", "    rates: {flat: '1.00'}",
			"    days: [{days: all, windows: [{from: '00:00', to: '25:00', rate: flat}]}]"},
			"t.yaml:8: tariffs[0].days[0].windows[0].to:"},
		{"duplicate name", []string{"  - {name: office, kind: flat, price: '1.05'}", "  - {name: office, kind: flat, price: '1.00'}"},
			"t.yaml:6: tariffs[1].name:"},
	} {
		src := strings.Join(append(append([]string{}, base[:4]...), tt.lines...), "\n")
		_, err := Parse("t.yaml", []byte(src), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want a problem starting %q", tt.name, err, tt.want)
		}
	}
}
