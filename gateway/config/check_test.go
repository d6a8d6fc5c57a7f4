package config

import (
	"bufio"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"mallgrid/gateway/yamlcheck"
)

// printed returns ps as config check prints them, one per element.
func printed(ps Problems) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

// Each case is one finding `config check` used to let through: a file that
// is refused, with every problem (warnings too) exactly as printed.
func TestParse_Findings(t *testing.T) {
	const head = "site: {name: M}"
	dir := t.TempDir()
	// A device and a stable link to it, as udev makes under /dev/serial/by-id.
	dev := filepath.Join(dir, "ttyUSB0")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "usb-FTDI_FT232R-if00-port0")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	realDev, err := filepath.EvalSymlinks(dev)
	if err != nil {
		t.Fatal(err)
	}
	const (
		tokenA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		hashA  = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	)
	collide := ": two buses on one line poll it at once and their requests collide; put the meters of both on one bus"
	cases := []struct {
		name string
		file []byte
		want []string
	}{
		{"two buses on one serial port",
			doc(head, "buses:", "  - {name: b1, port: /dev/ttyUSB0}", "  - {name: b2, port: /dev/ttyUSB0}"),
			[]string{"t.yaml:4: buses[1].port: the same serial port as bus b1 (line 3)" + collide}},
		{"one serial port spelled two ways",
			doc(head, "buses:", "  - {name: b1, port: /dev/ttyUSB0}", "  - {name: b2, port: /dev/./ttyUSB0/}"),
			[]string{"t.yaml:4: buses[1].port: the same serial port as bus b1 (line 3) " +
				"(/dev/ttyUSB0 and /dev/./ttyUSB0/ are both /dev/ttyUSB0)" + collide}},
		{"one serial port through a link",
			doc(head, "buses:", "  - {name: b1, port: "+dev+"}", "  - name: b2", "    port: "+link),
			[]string{"t.yaml:5: buses[1].port: the same serial port as bus b1 (line 3) " +
				"(" + dev + " and " + link + " are both " + realDev + ")" + collide}},
		{"two network buses on one host:port",
			doc(head, "buses:", "  - {name: b1, type: tcp, port: 'Converter.local:502'}", "  - {name: b2, type: rtu+tcp, port: 'converter.local:0502'}"),
			[]string{"t.yaml:4: buses[1].port: the same host:port as bus b1 (line 3)" + collide}},
		{"one token under two names and roles",
			doc(head, "buses: [{name: b1, port: /dev/ttyUSB0}]", "http:", "  tokens:",
				"    - {name: sync, role: viewer, sha256: "+tokenA+"}",
				"    - {name: ops, role: admin, sha256: "+strings.ToUpper(tokenA)+"}"),
			[]string{"t.yaml:6: http.tokens[1].sha256: the same token as http.tokens[0] (sync, role viewer, line 5): " +
				"a token has one name and one role; make a new token for each"}},
		{"one password hash under two users",
			doc(head, "buses: [{name: b1, port: /dev/ttyUSB0}]", "http:", "  users:",
				"    - {name: li, role: admin, password_hash: '"+hashA+"'}",
				"    - name: wang", "      role: viewer", "      password_hash: '"+hashA+"'"),
			[]string{"t.yaml:8: http.users[1].password_hash: the same hash as http.users[0] (li, line 5): " +
				"each user needs a password of their own; hash a new one"}},
		{"storage.path a directory",
			doc(head, "storage:", "  path: "+dir, "buses: [{name: b1, port: /dev/ttyUSB0}]"),
			[]string{"t.yaml:3: storage.path: " + dir + " is a directory; want the database file in it, like " + filepath.Join(dir, "mallgrid.db")}},
		{"a NUL byte",
			doc(head, "buses:", "  - {name: b1, port: /dev/tty\x00USB0}"),
			[]string{"t.yaml:3: not a text file: NUL byte at column 30 (is this the right file?)"}},
		{"not UTF-8 (a file saved as GBK)",
			doc("site:", "  name: \xd6\xd0\xd0\xc4", "buses: [{name: b1, port: /dev/ttyUSB0}]"),
			[]string{"t.yaml:2: not UTF-8 text: byte 0xd6 at column 9; save the file as UTF-8 (not GBK), or check that it is the right file"}},
		{"a control character",
			doc(head, "buses: [{name: b1, port: /dev/ttyUSB0}]", "# \x1b[31mred\x1b[0m"),
			[]string{"t.yaml:3: control character U+001B at column 3; YAML allows only printable characters, tabs and line breaks"}},
		{"an error and a warning: both listed",
			doc(head, "http: {listen: ':8080'}", "buses: [{name: b1, port: /dev/ttyUSB0, parity: X}]"),
			[]string{
				"t.yaml:2: http.listen: warning: listens on every network interface: anyone on any network this box is on " +
					"can reach the status page and API; name the control room's address (like 192.168.10.5:8080), or 127.0.0.1:8080 behind a proxy",
				`t.yaml:3: buses[0].parity: want one of N, E, O, got "X"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", tc.file, nil)
			if cfg != nil {
				t.Fatalf("Parse returned a config; want it refused")
			}
			if got := printed(problems(t, err)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// Random bytes, whatever they hold, are one problem that names a line.
func TestParse_RandomBytes(t *testing.T) {
	rnd := rand.New(rand.NewSource(10))
	for i := range 200 {
		data := make([]byte, 1+rnd.Intn(8192))
		rnd.Read(data)
		_, err := Parse("t.yaml", data, nil)
		ps := problems(t, err)
		if len(ps) != 1 || ps[0].Line == 0 {
			t.Fatalf("random file %d (%d bytes): got %d problems, first %q; want one with a line", i, len(data), len(ps), ps[0].Error())
		}
	}
}

// Warnings are legal but unwise: the file loads, and Config.Warnings says
// what is unwise, with its line.
func TestParse_Warnings(t *testing.T) {
	file := func(listen string) []byte {
		return doc("site: {name: M}", "http:", "  listen: '"+listen+"'", "buses: [{name: b1, port: /dev/ttyUSB0}]")
	}
	cases := []struct {
		listen string
		want   []string
	}{
		{"127.0.0.1:8080", nil},
		{"127.0.0.2:8080", nil},
		{"[::1]:8080", nil},
		{"localhost:8080", nil},
		{":8080", []string{"t.yaml:3: http.listen: warning: listens on every network interface: anyone on any network this box is on " +
			"can reach the status page and API; name the control room's address (like 192.168.10.5:8080), or 127.0.0.1:8080 behind a proxy"}},
		{"0.0.0.0:8080", []string{"t.yaml:3: http.listen: warning: listens on every network interface: anyone on any network this box is on " +
			"can reach the status page and API; name the control room's address (like 192.168.10.5:8080), or 127.0.0.1:8080 behind a proxy"}},
		{"[::]:8080", []string{"t.yaml:3: http.listen: warning: listens on every network interface: anyone on any network this box is on " +
			"can reach the status page and API; name the control room's address (like 192.168.10.5:8080), or 127.0.0.1:8080 behind a proxy"}},
		{"192.168.10.5:8080", []string{"t.yaml:3: http.listen: warning: 192.168.10.5 is not a loopback address: anyone on that network " +
			"can reach the status page and API; if that is meant (a control room on the LAN), keep the network closed and the tokens secret"}},
	}
	for _, tc := range cases {
		cfg, err := Parse("t.yaml", file(tc.listen), nil)
		if err != nil {
			t.Fatalf("listen %s: %v; want the file to load", tc.listen, err)
		}
		if got := printed(cfg.Warnings); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("listen %s: got warnings:\n%s\nwant:\n%s", tc.listen, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

func TestParse_UnknownEnvironmentVariables(t *testing.T) {
	file := doc("site: {name: M}", "buses: [{name: b1, port: /dev/ttyUSB0}]")
	env := []string{
		"MALLGRID_HTTP_LISTN=127.0.0.1:9000", // misspelt: the listen address stays the default
		"MALLGRID_STORAGE_PAHT=/data/m.db",
		"MALLGRID_COLOUR=blue",            // nothing close
		"MALLGRID_EMPTY=",                 // empty counts as unset
		"MALLGRID_LOG_LEVEL=debug",        // known
		"HOME=/root", "XMALLGRID_FOO=bar", // not ours
	}
	cfg, err := Parse("t.yaml", file, env)
	if err != nil {
		t.Fatalf("Parse: %v; want the file to load with warnings", err)
	}
	want := []string{
		"t.yaml: warning: env MALLGRID_COLOUR: unknown variable, ignored (known: MALLGRID_HTTP_LISTEN, MALLGRID_HTTP_SESSION_IDLE, MALLGRID_LOG_FORMAT, " +
			"MALLGRID_LOG_LEVEL, MALLGRID_NOTIFY_KEEP, MALLGRID_NOTIFY_MAX_ATTEMPTS, MALLGRID_NOTIFY_TIMEOUT, MALLGRID_PROTECTED_HOURS_WEEKENDS, MALLGRID_SITE_CURRENCY, MALLGRID_SITE_NAME, MALLGRID_SITE_RESALE_PRICE_CAP, " +
			"MALLGRID_SITE_TIMEZONE, MALLGRID_STORAGE_LOCK_TIMEOUT, MALLGRID_STORAGE_PATH, MALLGRID_STORAGE_SAMPLES_KEEP, " +
			"MALLGRID_UPLINK_BACKLOG_RATE, MALLGRID_UPLINK_BROKER, MALLGRID_UPLINK_CA_FILE, MALLGRID_UPLINK_CLIENT_CERT, MALLGRID_UPLINK_CLIENT_ID, " +
			"MALLGRID_UPLINK_CLIENT_KEY, MALLGRID_UPLINK_INFLIGHT, MALLGRID_UPLINK_PASSWORD, MALLGRID_UPLINK_SITE_ID, MALLGRID_UPLINK_USERNAME)",
		"t.yaml: warning: env MALLGRID_HTTP_LISTN: unknown variable, ignored (did you mean MALLGRID_HTTP_LISTEN?)",
		"t.yaml: warning: env MALLGRID_STORAGE_PAHT: unknown variable, ignored (did you mean MALLGRID_STORAGE_PATH?)",
	}
	if got := printed(cfg.Warnings); !reflect.DeepEqual(got, want) {
		t.Errorf("got warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cfg.HTTP.Listen != "127.0.0.1:8080" || cfg.Log.Level != "debug" {
		t.Errorf("listen %q, log level %q; want the default listen and the known variable's debug", cfg.HTTP.Listen, cfg.Log.Level)
	}
}

// A 50 MB file (here, a real configuration repeated) is refused before it
// is read: it once cost 3.5 GB of memory and 2.8 million false problems.
func TestLoad_HugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("site: {name: M}\nbuses: [{name: b1, port: /dev/ttyUSB0}]\nmeters:\n")
	for range 50 << 20 / 64 {
		w.WriteString("  - {id: M-1, bus: b1, address: 1, model: kpm33b, tenant: T-1}  \n") // 64 bytes
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = Load(path, nil)
	runtime.ReadMemStats(&after)

	want := []string{path + ": file is " + strconv.FormatInt(st.Size(), 10) + " bytes; a configuration file may hold at most 1 MiB (1048576 bytes): is this the right file?"}
	if got := printed(problems(t, err)); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Errorf("Load allocated %d bytes for a %d-byte file; want under 256 KiB: it must not be read", alloc, st.Size())
	}
}

// A file whose size is not known beforehand (a device, a pipe) is read no
// further than the limit.
func TestLoad_EndlessFile(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Load("/dev/zero", nil)
	runtime.ReadMemStats(&after)
	want := []string{"/dev/zero: more than 1 MiB (1048576 bytes) to read; a configuration file may hold at most that: is this the right file?"}
	if got := printed(problems(t, err)); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Load(/dev/zero) allocated %d bytes; want under 8 MiB", alloc)
	}
}

// Bytes already read are held to the same limit: Parse refuses them before
// parsing, and takes a file of exactly the limit.
func TestParse_SizeLimit(t *testing.T) {
	valid := "site: {name: M}\nbuses: [{name: b1, port: /dev/ttyUSB0}]\n"
	pad := func(n int) []byte { // a comment fills the file to n bytes
		return []byte(valid + "#" + strings.Repeat("x", n-len(valid)-2) + "\n")
	}
	if _, err := Parse("t.yaml", pad(yamlcheck.MaxFileSize), nil); err != nil {
		t.Errorf("a file of exactly 1 MiB: %v; want it loaded", err)
	}
	_, err := Parse("t.yaml", pad(yamlcheck.MaxFileSize+1), nil)
	want := []string{"t.yaml: file is 1048577 bytes; a configuration file may hold at most 1 MiB (1048576 bytes): is this the right file?"}
	if got := printed(problems(t, err)); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
