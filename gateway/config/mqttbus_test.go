package config

import (
	"strings"
	"testing"
)

const (
	mqttHead   = "site: {name: Sunny Mall}"
	hashHex    = "1e462d3d198ea095227deb70f70b19e7bf90fd8b4abbf2a0b9612ff1f50dd745"
	embedded   = "buses: [{name: f3, type: compere-mqtt, listen: ':1883', username: kpm, password_sha256: " + hashHex + "}]"
	clientBus  = "buses: [{name: tw, type: compere-mqtt, broker: 'tcp://10.0.0.5:1883', username: gw}]"
	mqttMeter1 = "  - {id: M-1, bus: f3, address: '33B1225950027', model: kpm33b, role: public}"
)

func TestParse_CompereMQTT(t *testing.T) {
	cfg, err := Parse("t.yaml", doc(mqttHead, embedded, "meters:", mqttMeter1,
		"  - {id: M-2, bus: f3, address: 31A0000000001, model: kpm31, role: public}"), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b, _ := cfg.Bus("f3")
	if !b.IsMQTT() || !b.Embedded() || b.Listen != ":1883" || string(b.PasswordDigest()) == "" {
		t.Errorf("bus f3 = %+v; want an embedded compere-mqtt broker on :1883", b)
	}
	// Unquoted, 31A0000000001 is still a string to YAML: an id, not a number.
	if m := cfg.Meters[1]; m.DeviceID != "31A0000000001" || m.Address != 0 {
		t.Errorf("meter M-2: DeviceID %q Address %d; want 31A0000000001 and no Modbus address", m.DeviceID, m.Address)
	}

	cfg, err = Parse("t.yaml", doc(mqttHead, clientBus, "meters:",
		"  - {id: M-1, bus: tw, address: '33B1225950027', model: kpm37, role: public}"),
		[]string{"MALLGRID_BUS_TW_PASSWORD=s3cret"})
	if err != nil {
		t.Fatalf("Parse (client): %v", err)
	}
	b, _ = cfg.Bus("tw")
	if b.Embedded() || b.Password != "s3cret" || b.ClientID != "mallgrid-sunny-mall-tw" {
		t.Errorf("bus tw: embedded %v, password %q, client id %q; want a client, the variable's password, mallgrid-sunny-mall-tw",
			b.Embedded(), b.Password, b.ClientID)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v; want none (the password variable is known)", cfg.Warnings)
	}
}

func TestParse_CompereMQTTProblems(t *testing.T) {
	modbus := "buses: [{name: b1, port: /dev/ttyUSB0}]"
	cases := []struct {
		name string
		file []byte
		want string // the one problem, exactly
	}{
		{"neither listen nor broker", doc(mqttHead, "buses: [{name: f3, type: compere-mqtt, username: kpm}]"),
			"t.yaml:2: buses[0]: a compere-mqtt bus needs listen: (the gateway is the meters' broker) or broker: (a client of the mall's broker)"},
		{"both listen and broker", doc(mqttHead, "buses:", "  - {name: f3, type: compere-mqtt, listen: ':1883', broker: 'tcp://h:1883'}"),
			"t.yaml:3: buses[0].broker: give either listen: (embedded broker) or broker: (client of the mall's broker), not both"},
		{"anonymous embedded", doc(mqttHead, "buses: [{name: f3, type: compere-mqtt, listen: ':1883', password_sha256: "+hashHex+"}]"),
			"t.yaml:2: buses[0].username: required, not set"},
		{"no password hash", doc(mqttHead, "buses: [{name: f3, type: compere-mqtt, listen: ':1883', username: kpm}]"),
			"t.yaml:2: buses[0].password_sha256: required, not set"},
		{"password hash not hex", doc(mqttHead, "buses: [{name: f3, type: compere-mqtt, listen: ':1883', username: kpm, password_sha256: password}]"),
			"t.yaml:2: buses[0].password_sha256: want the hex SHA-256 of the meters' password (64 hex digits, e.g. from sha256sum), got 8 characters"},
		{"serial key on an mqtt bus", doc(mqttHead, "buses:", "  - {name: f3, type: compere-mqtt, listen: ':1883', username: kpm,",
			"     password_sha256: "+hashHex+", baud: 9600}"),
			"t.yaml:4: buses[0].baud: applies to Modbus buses only (this bus is compere-mqtt: its meters publish over MQTT)"},
		{"port on an mqtt bus", doc(mqttHead, "buses:", "  - {name: f3, type: compere-mqtt, broker: 'tcp://h:1883',", "     port: /dev/ttyUSB0}"),
			"t.yaml:4: buses[0].port: applies to Modbus buses only (this bus is compere-mqtt: its meters publish over MQTT)"},
		{"mqtt key on a modbus bus", doc(mqttHead, "buses: [{name: b1, port: /dev/ttyUSB0, listen: ':1883'}]"),
			"t.yaml:2: buses[0].listen: applies to compere-mqtt buses only (this bus is rtu)"},
		{"client key on the embedded broker", doc(mqttHead, "buses:",
			"  - {name: f3, type: compere-mqtt, listen: ':1883', username: kpm, password_sha256: "+hashHex+",", "     client_id: x}"),
			"t.yaml:4: buses[0].client_id: applies to a client of the mall's broker only (this bus listens: the gateway is the broker)"},
		{"embedded key on a client", doc(mqttHead, "buses:", "  - {name: tw, type: compere-mqtt, broker: 'tcp://h:1883',",
			"     password_sha256: "+hashHex+"}"),
			"t.yaml:4: buses[0].password_sha256: applies to the embedded broker only (this bus is a client of tcp://h:1883)"},
		{"broker scheme", doc(mqttHead, "buses: [{name: tw, type: compere-mqtt, broker: 'http://h:1883'}]"),
			`t.yaml:2: buses[0].broker: want tcp://host:port or ssl://host:port, got "http://h:1883"`},
		{"broker without port", doc(mqttHead, "buses: [{name: tw, type: compere-mqtt, broker: 'tcp://h'}]"),
			`t.yaml:2: buses[0].broker: want host:port, got "h"`},
		{"credentials in the broker url", doc(mqttHead, "buses: [{name: tw, type: compere-mqtt, broker: 'tcp://u:p@h:1883'}]"),
			`t.yaml:2: buses[0].broker: want only scheme, host and port, got "tcp://u:p@h:1883" (credentials go in username and password)`},
		{"ca file on tcp", doc(mqttHead, "buses: [{name: tw, type: compere-mqtt, broker: 'tcp://h:1883', ca_file: /etc/ca.pem}]"),
			"t.yaml:2: buses[0].ca_file: applies to ssl:// brokers only"},
		{"password without username", doc(mqttHead, "buses: [{name: tw, type: compere-mqtt, broker: 'tcp://h:1883', password: x}]"),
			"t.yaml:2: buses[0].password: a password needs a username"},
		{"two brokers on one port", doc(mqttHead, "buses:",
			"  - {name: a, type: compere-mqtt, listen: '0.0.0.0:1883', username: kpm, password_sha256: "+hashHex+"}",
			"  - {name: b, type: compere-mqtt, listen: '127.0.0.1:1883', username: kpm, password_sha256: "+hashHex+"}"),
			"t.yaml:4: buses[1].listen: the same address as bus a (line 3): two brokers cannot listen on one port"},
		{"modbus model on an mqtt bus", doc(mqttHead, embedded, "meters:",
			"  - {id: M-1, bus: f3, address: '33B1225950027', model: sdm630, role: public}"),
			`t.yaml:4: meters[0].model: want one of kpm31, kpm33b, kpm37, kpm312 on a compere-mqtt bus, got "sdm630"`},
		{"mqtt model on a modbus bus", doc(mqttHead, modbus, "meters:", "  - {id: M-1, bus: b1, address: 1, model: kpm312, role: public}"),
			"t.yaml:4: meters[0].model: model kpm312 reports over MQTT: its bus must be compere-mqtt (bus b1 is rtu)"},
		{"number for an mqtt meter", doc(mqttHead, embedded, "meters:", "  - {id: M-1, bus: f3, address: 5, model: kpm33b, role: public}"),
			`t.yaml:4: meters[0].address: want the meter's 13-character id like "33B1225950027" on a compere-mqtt bus, got "5"`},
		{"id for a modbus meter", doc(mqttHead, modbus, "meters:", "  - {id: M-1, bus: b1, address: '33B1225950027', model: kpm33b, role: public}"),
			`t.yaml:4: meters[0].address: want an integer, got "33B1225950027" (a Compere meter id: its bus must be compere-mqtt)`},
		{"short id", doc(mqttHead, embedded, "meters:", "  - {id: M-1, bus: f3, address: '33B12259500', model: kpm33b, role: public}"),
			`t.yaml:4: meters[0].address: want the meter's 13-character id like "33B1225950027" on a compere-mqtt bus, got "33B12259500"`},
		{"one device id twice", doc(mqttHead, "buses:",
			"  - {name: f3, type: compere-mqtt, listen: ':1883', username: kpm, password_sha256: "+hashHex+"}",
			"  - {name: tw, type: compere-mqtt, broker: 'tcp://h:1883'}",
			"meters:", mqttMeter1,
			"  - {id: M-2, bus: tw, address: '33B1225950027', model: kpm33b, role: public}"),
			"t.yaml:7: meters[1].address: meter id 33B1225950027 is already meter M-1's (line 6)"},
		{"same command topic", doc(mqttHead, embedded, "meters:", mqttMeter1,
			"  - {id: M-2, bus: f3, address: '31A1225950027', model: kpm31, role: public}"),
			"t.yaml:5: meters[1].address: meter id 31A1225950027 ends like meter M-1's (33B1225950027) on bus f3: " +
				"both would obey the commands to either, whose topics end with the last 8 characters"},
		{"same command topic on one mall broker", doc(mqttHead, "buses:",
			"  - {name: tw, type: compere-mqtt, broker: 'tcp://h:1883'}",
			"  - {name: tx, type: compere-mqtt, broker: 'TCP://H:1883'}", // one broker, spelled otherwise
			"meters:",
			"  - {id: M-1, bus: tw, address: '33B1225950027', model: kpm33b, role: public}",
			"  - {id: M-2, bus: tx, address: '31A1225950027', model: kpm31, role: public}"),
			"t.yaml:7: meters[1].address: meter id 31A1225950027 ends like meter M-1's (33B1225950027) on broker tcp://h:1883: " +
				"both would obey the commands to either, whose topics end with the last 8 characters"},
		{"one session twice on a broker", doc(mqttHead, "buses:",
			"  - {name: tw, type: compere-mqtt, broker: 'tcp://h:1883', client_id: gw}",
			"  - {name: tx, type: compere-mqtt, broker: 'tcp://H:1883', client_id: gw}"),
			"t.yaml:4: buses[1].client_id: bus tw already connects to tcp://h:1883 as gw: the broker would throw one off for the other, again and again"},
		{"do2 on a KPM33B", doc(mqttHead, embedded, "meters:",
			"  - {id: M-1, bus: f3, address: '33B1225950027', model: kpm33b, role: public, relay_output: 2}"),
			"t.yaml:4: meters[0].relay_output: want 1 (do1), or 2 (do2) on a kpm37, the one model with a second output; got 2 on a kpm33b"},
		{"relay output on a Modbus meter", doc(mqttHead, modbus, "meters:",
			"  - {id: M-1, bus: b1, address: 1, model: kpm33b, role: public, relay_output: 1}"),
			"t.yaml:4: meters[0].relay_output: applies to meters on a compere-mqtt bus only"},
		{"modbus key on an mqtt meter", doc(mqttHead, embedded, "meters:",
			"  - {id: M-1, bus: f3, address: '33B1225950027', model: kpm33b, role: public, timeout: 1s}"),
			"t.yaml:4: meters[0].timeout: applies to Modbus meters only (bus f3 is compere-mqtt: the meter publishes its own primary values)"},
		{"modbus address still checked", doc(mqttHead, modbus, "meters:", "  - {id: M-1, bus: b1, address: 0x100, model: kpm33b, role: public}"),
			"t.yaml:4: meters[0].address: want 1..247, got 256"},
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

// The bus password variable is known to the misspelling check, and one
// set for a bus that takes no password is a warning, not silence.
func TestParse_CompereMQTTPasswordVariable(t *testing.T) {
	cases := []struct {
		file []byte
		env  string
		want string
	}{
		{doc(mqttHead, clientBus), "MALLGRID_BUS_TW_PASSWROD=x", "MALLGRID_BUS_TW_PASSWORD"},
		{doc(mqttHead, embedded), "MALLGRID_BUS_F3_PASSWORD=x", "bus f3 is not a client of an MQTT broker and takes no password: ignored"},
	}
	for _, tc := range cases {
		cfg, err := Parse("t.yaml", tc.file, []string{tc.env})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), tc.want) {
			t.Errorf("%s: warnings %v; want one naming %s", tc.env, cfg.Warnings, tc.want)
		}
	}
}
