package gateway

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// allowed says which of our packages a package may import (packages under
// gateway/ go by gatewayOrder instead) (DESIGN.md:
// cmd → gateway/... → {store, billing, drivers/...}; store → billing;
// billing and drivers import nothing of ours, but drivers/sim and
// drivers/compere may import drivers/meter, drivers/sim/compere those three). Keys and values are paths below the module; a key ending
// in "/" covers every package under it.
var allowed = []struct {
	from string
	may  func(to string) bool
}{
	{"cmd/", func(to string) bool { return !strings.HasPrefix(to, "cmd/") }},
	{"gateway", func(to string) bool { return lowerLayer(to) || below("gateway", to) }},
	{"store", func(to string) bool { return to == "billing" || strings.HasPrefix(to, "billing/") }},
	{"store/", func(to string) bool { return to == "billing" || strings.HasPrefix(to, "billing/") }},
	{"billing", func(to string) bool { return strings.HasPrefix(to, "billing/") }},
	{"billing/", func(to string) bool { return to == "billing" || strings.HasPrefix(to, "billing/") }},
	{"drivers/sim", func(to string) bool { return to == "drivers/meter" }},
	// The simulated Compere MQTT meters keep their load in drivers/sim and
	// speak drivers/compere's messages.
	{"drivers/sim/compere", func(to string) bool {
		return to == "drivers/meter" || to == "drivers/sim" || to == "drivers/compere"
	}},
	{"drivers/compere", func(to string) bool { return to == "drivers/meter" }},
	{"drivers/", func(to string) bool { return false }},
	{"configs", func(to string) bool { return false }},
}

// gatewayOrder lists the packages of gateway/ from the bottom up, the
// composition root among them: each may import the lower layers and the
// packages before it, never one after it — so no two import each other and
// no cycle can form. A new package under gateway/ must be placed here.
var gatewayOrder = []string{
	"gateway/i18n",       // the pages' words in en and zh-CN; money, energy, times
	"gateway/supervise",  // the service manager: READY, STATUS, the watchdog pings while loops progress
	"gateway/alarm",      // alarm rules over a meter's values: raised and cleared, no I/O
	"gateway/yamlcheck",  // strict YAML with FILE:LINE problems
	"gateway/notify",     // notification channels: webhook, WeChat, SMS, e-mail
	"gateway/config",     // the technician's configuration
	"gateway/metrics",    // the Prometheus registry; reads its sources through its own types
	"gateway/mqttlink",   // compere-mqtt buses: the embedded broker or a client of the mall's
	"gateway/outbox",     // the notification outbox: routes, delivery, retries, status
	"gateway/poll",       // a goroutine per bus
	"gateway/mqttmeters", // a compere-mqtt bus: its meters' messages into readings, their relays
	"gateway/health",     // meters and buses answering: events and /healthz
	"gateway/tech",       // meter read/scan/relay
	"gateway/replay",     // captured logs, offline
	"gateway/bench",      // the polling benchmarks
	"gateway/web",        // HTTP: pages, API, health; defines what it consumes
	"gateway/history",    // the charts' data: power samples, interval energy, daily charges; samples pruned
	"gateway/audit",      // the audit log over the store's hash chain: what web records and the admin reads
	"gateway/backup",     // copies of the running database: the control socket, daily snapshots
	"gateway/live",       // the in-memory picture and the event hub
	"gateway/apibench",   // the meter API and its stream at 2,000 meters
	"gateway/pipeline",   // a bus cycle (or an operator's action) into one store transaction
	"gateway/enforce",    // account states and the relay reconciler
	"gateway/verify",     // the ledger's rules, checked offline
	"gateway/accounts",   // what the API calls: top-ups, ledger pages, operator actions
	"gateway/report",     // allocation postings, statements, finance reports
	"gateway/paycode",    // tenants' signed payment links as QR stickers (PNG, SVG, PDF)
	"gateway/upfeed",     // what goes up: the database's news as uplink outbox messages, their formats
	"gateway/uplink",     // the group broker link: the outbox published, signed commands down
	"gateway",            // the composition root
	"gateway/demo",       // runs the root on simulated buses
}

// below reports whether package from may import gateway package to: to
// comes before from in gatewayOrder. Packages not in the order may not be
// imported by, or import, any gateway package.
func below(from, to string) bool {
	fi, ti := slices.Index(gatewayOrder, from), slices.Index(gatewayOrder, to)
	return fi >= 0 && ti >= 0 && ti < fi
}

func lowerLayer(to string) bool {
	for _, p := range []string{"store", "billing", "drivers", "configs"} {
		if to == p || strings.HasPrefix(to, p+"/") {
			return true
		}
	}
	return false
}

func rule(pkg string) func(string) bool {
	if strings.HasPrefix(pkg, "gateway/") {
		if !slices.Contains(gatewayOrder, pkg) {
			return nil // not placed in gatewayOrder: an error of its own
		}
		return func(to string) bool { return lowerLayer(to) || below(pkg, to) }
	}
	for _, r := range allowed {
		if pkg == r.from || (strings.HasSuffix(r.from, "/") && strings.HasPrefix(pkg, r.from)) {
			return r.may
		}
	}
	return nil
}

// TestImportDirection parses every non-test Go file of the module and fails
// on an import that goes up or sideways against DESIGN.md.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	const module = "mallgrid/"
	checked := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		may := rule(pkg)
		for _, imp := range f.Imports {
			to, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(to, module) {
				continue
			}
			to = strings.TrimPrefix(to, module)
			checked++
			if may == nil {
				t.Errorf("%s: package %s has no import rule; add it to allowed, or a package under gateway/ to gatewayOrder", path, pkg)
				continue
			}
			if !may(to) {
				t.Errorf("%s: %s imports %s against the layering of DESIGN.md", path, pkg, to)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no imports of our own packages found; the walk is broken")
	}
}

func TestImportRule_RejectsUpwardImports(t *testing.T) {
	t.Parallel()
	bad := []struct{ from, to string }{
		{"billing", "store"}, {"store", "gateway"}, {"drivers/modbus", "drivers/meter"},
		{"drivers/meter", "gateway/config"}, {"gateway/web", "cmd/mallgrid"}, {"store", "drivers/meter"},
		{"billing/tariff", "store"}, {"billing/counter", "drivers/meter"},
		// Back-edges among gateway packages.
		{"gateway/web", "gateway"}, {"gateway", "gateway/demo"}, {"gateway/config", "gateway/poll"},
		{"gateway/yamlcheck", "gateway/config"}, {"gateway/unplaced", "store"}, {"gateway/poll", "gateway/unplaced"},
		{"gateway/pipeline", "gateway/enforce"}, {"gateway/live", "gateway/pipeline"}, {"gateway/enforce", "gateway/accounts"},
		{"gateway/web", "gateway/live"}, {"gateway/replay", "gateway/pipeline"}, {"gateway/verify", "gateway/accounts"},
	}
	for _, b := range bad {
		if may := rule(b.from); may != nil && may(b.to) {
			t.Errorf("rule allows %s → %s; want it refused", b.from, b.to)
		}
	}
	good := []struct{ from, to string }{
		{"cmd/mallgrid", "gateway"}, {"gateway", "store"}, {"gateway/poll", "drivers/modbus"},
		{"store", "billing"}, {"drivers/sim", "drivers/meter"}, {"gateway", "configs"},
		{"billing/tariff", "billing"}, {"store", "billing/counter"},
		{"gateway/demo", "gateway"}, {"gateway", "gateway/web"}, {"gateway/config", "gateway/yamlcheck"},
	}
	for _, g := range good {
		if may := rule(g.from); may == nil || !may(g.to) {
			t.Errorf("rule refuses %s → %s; want it allowed", g.from, g.to)
		}
	}
}
