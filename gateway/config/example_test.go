package config_test

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"mallgrid/gateway/config"
)

const exampleFile = "../../configs/mallgrid.example.yaml"

func TestLoad_Example(t *testing.T) {
	cfg, err := config.Load(exampleFile, nil)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", exampleFile, err)
	}
	bus2, _ := cfg.Bus("bus2")
	basement, _ := cfg.Bus("basement")
	floor3, _ := cfg.Bus("floor3")
	tower, _ := cfg.Bus("tower")
	noodle, _ := cfg.Tenant("T-101")
	custom, err := cfg.Catalogue.Lookup("kpm33b-billing")
	if err != nil {
		t.Fatalf("Catalogue.Lookup(kpm33b-billing): %v", err)
	}
	light := cfg.Meters[len(cfg.Meters)-1]
	lightModel, err := cfg.ModelOf(light)
	if err != nil {
		t.Fatalf("ModelOf(%s): %v", light.ID, err)
	}
	var onBus1 []string
	for _, m := range cfg.MetersOn("bus1") {
		onBus1 = append(onBus1, m.ID)
	}
	cases := []struct {
		what      string
		got, want any
	}{
		{"site.name", cfg.Site.Name, "Demo Plaza"},
		{"Location", cfg.Location.String(), "Asia/Shanghai"},
		{"storage.lock_timeout", cfg.Storage.LockTimeout, 5 * time.Second},
		{"http.users[0].role", cfg.HTTP.Users[0].Role, config.RoleAdmin},
		{"http.tokens[0].name", cfg.HTTP.Tokens[0].Name, "billing-sync"},
		{"buses", len(cfg.Buses), 5},
		{"floor3 embedded", floor3.Embedded(), true},
		{"tower embedded", tower.Embedded(), false},
		{"tower client id", tower.ClientID, "mallgrid-demo-plaza-tower"},
		{"M-301 device id", cfg.Meters[6].DeviceID, "33B1225950027"},
		{"M-301 address (none: not Modbus)", cfg.Meters[6].Address, 0},
		{"M-PARK address", cfg.Meters[5].Address, 1},
		{"bus2 baud", bus2.Baud, 19200},
		{"bus2 rs485", bus2.RS485, true},
		{"basement type", basement.Type, config.BusTCP},
		{"basement port", basement.Port, "192.168.10.20:502"},
		{"basement pause", basement.Pause, time.Duration(0)},
		{"basement interval", basement.Interval, 30 * time.Second},
		{"meters on bus1", strings.Join(onBus1, ","), "M-MAIN,M-101,M-102"},
		{"M-MAIN role", cfg.Meters[0].Role, config.MainMeter},
		{"M-MAIN ct_ratio", cfg.Meters[0].CTRatio, 1},
		{"M-102 role (default)", cfg.Meters[2].Role, config.TenantMeter},
		{"T-101 area", noodle.AreaM2, 85.5},
		{"T-101 contact", noodle.Contacts[0].Name, "Li Wei"},
		{"custom import address", custom.Registers[0].Address, uint16(0x0082)},
		{"custom pf unit (default)", custom.Registers[6].Unit, ""},
		{"custom max gap", custom.MaxGap, uint16(10)},
		{"custom unreadable", fmt.Sprint(custom.Unreadable), "[{100 103}]"},
		{"custom relay coil", custom.Relay.Coil, uint16(1)},
		{"custom remote mode", fmt.Sprint(custom.Relay.RemoteMode.Values), fmt.Sprint([]uint16{0xDD22})},
		{"custom max read", custom.MaxRead, uint16(125)},
		{"M-LIGHT-2F id", light.ID, "M-LIGHT-2F"},
		{"M-LIGHT-2F function", lightModel.Registers[0].Function, uint8(3)},
		{"M-LIGHT-2F timeout", cfg.TimeoutOf(light), time.Second},
		{"M-101 timeout (the bus's)", cfg.TimeoutOf(cfg.Meters[1]), 500 * time.Millisecond},
		{"M-101 interval", cfg.IntervalOf(cfg.Meters[1]), 2 * time.Second},
		{"M-102 interval (the bus's)", cfg.IntervalOf(cfg.Meters[2]), 10 * time.Second},
		{"uplink client id (default)", cfg.Uplink.ClientID, "mallgrid-demo-plaza"},
		{"uplink keys (shown commented out)", len(cfg.Uplink.Keys), 0},
		{"uplink backlog rate", cfg.Uplink.BacklogRate, 50},
		{"uplink inflight", cfg.Uplink.Inflight, 20},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.what, tc.got, tc.want)
		}
	}
}

// The example must show every key the schema has, so that a key added to
// Config without documentation fails here.
func TestLoad_Example_EveryKey(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	present := make(map[string]bool)
	collectKeys(root.Content[0], "", present)
	for _, key := range schemaKeys(reflect.TypeOf(config.Config{}), "") {
		if commentedOut(key) {
			// Its files must exist wherever the example is loaded: shown
			// in comments, checked by TestLoad_Example_DefaultsDocumented.
			continue
		}
		if !present[key] {
			t.Errorf("%s: missing from %s; want every key shown with its default", key, exampleFile)
		}
	}
}

// commentedOut reports whether key is shown in the example only as a
// comment: an optional section naming files that must exist to load, or
// uplink.qr and notify's channels (with the routes that name them), whose
// secrets must be the site's own (the example's are refused).
func commentedOut(key string) bool {
	switch key {
	case "buses[].tls_cert", "buses[].tls_key", "buses[].ca_file", "uplink.ca_file", "uplink.client_cert", "uplink.client_key",
		// The site's own secret and the platform's own keys: the
		// example's would be refused.
		"uplink.password", "uplink.keys", "uplink.keys[].id", "uplink.keys[].ed25519_public":
		return true
	}
	for _, section := range []string{"http.tls", "uplink.qr", "notify.channels", "notify.routes"} {
		if key == section || strings.HasPrefix(key, section+".") || strings.HasPrefix(key, section+"[]") {
			return true
		}
	}
	return false
}

func collectKeys(n *yaml.Node, path string, present map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if path != "" {
				key = path + "." + key
			}
			present[key] = true
			collectKeys(n.Content[i+1], key, present)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			collectKeys(item, path+"[]", present)
		}
	}
}

func schemaKeys(t reflect.Type, path string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && opts == "inline" {
			keys = append(keys, schemaKeys(f.Type, path)...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		key := name
		if path != "" {
			key = path + "." + name
		}
		keys = append(keys, key)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)):
			keys = append(keys, schemaKeys(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(ft.Elem(), key+"[]")...)
		}
	}
	return keys
}

// Every key of the example is documented: the comment on its first use,
// or the comment lines just above or below it, say its default or that it
// is required.
func TestLoad_Example_DefaultsDocumented(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	comment := regexp.MustCompile(`^\s*#`)
	seen := make(map[string]bool)
	for _, key := range schemaKeys(reflect.TypeOf(config.Config{}), "") {
		name := key[strings.LastIndexAny(key, ".]")+1:]
		if !strings.Contains(key, ".") || seen[name] {
			continue // top-level sections are headings
		}
		seen[name] = true
		use := regexp.MustCompile(`^[^#]*(^|[\s{,-])` + regexp.QuoteMeta(name) + `:`)
		if commentedOut(key) {
			use = regexp.MustCompile(`^\s*#\s*` + regexp.QuoteMeta(name) + `:`)
		}
		i := slices.IndexFunc(lines, use.MatchString)
		if i < 0 {
			t.Errorf("%s: not in %s", key, exampleFile)
			continue
		}
		block := lines[i]
		for j := i - 1; j >= 0 && comment.MatchString(lines[j]); j-- {
			block += lines[j]
		}
		for j := i + 1; j < len(lines) && comment.MatchString(lines[j]); j++ {
			block += lines[j]
		}
		if block = strings.ToLower(block); !strings.Contains(block, "default") && !strings.Contains(block, "required") {
			t.Errorf("%s: line %d of %s says neither its default nor that it is required", key, i+1, exampleFile)
		}
	}
}

func ExampleParse() {
	file := `site: {name: Demo Plaza}
buses:
  - name: bus1
    port: /dev/ttyUSB0
    parity: X
meters:
  - id: M-1
    bus: bus9
    address: 1
    model: kpm33b
    role: public
`
	_, err := config.Parse("mall.yaml", []byte(file), []string{"MALLGRID_HTTP_LISTEN=nowhere"})
	fmt.Println(err)
	// Output:
	// mall.yaml: http.listen: env MALLGRID_HTTP_LISTEN: want host:port, got "nowhere"
	// mall.yaml:5: buses[0].parity: want one of N, E, O, got "X"
	// mall.yaml:8: meters[0].bus: unknown bus "bus9" (buses: bus1)
}
