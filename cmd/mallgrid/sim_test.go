package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeSimFile writes a sim file into a fresh directory and returns its path.
func writeSimFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSim_File_ServesItsMetersAndStopsOnSIGINT runs `mallgrid sim --file`
// as a technician would, reads two of its meters over Modbus TCP with
// `mallgrid meter read`, and stops it with Ctrl-C.
func TestSim_File_ServesItsMetersAndStopsOnSIGINT(t *testing.T) {
	// A constant load of 0 W keeps the counters where the file starts them,
	// so the reads can be compared to the Wh.
	file := writeSimFile(t, `listen: tcp:127.0.0.1:0
wire: {baud: 115200}
meters:
  - {model: kpm33b, from: 1, to: 4, load_w: 0, import_wh: 1234567}
  - {model: kpm33b, address: 7, load_w: 0, import_wh: 7654321, relay: open, remote: true}
  - {model: kpm33b, address: 9, faults: {no-reply: 0.5, bad-crc: 0.25, garbage: 0.25}}
`)
	cmd, out := start(t, "sim", "--file", file)
	line := readLineContaining(t, out, "mallgrid sim:")
	if want := "mallgrid sim: 6 kpm33b meter(s) at address 1-4,7,9 on tcp://127.0.0.1:"; !strings.HasPrefix(line, want) {
		t.Errorf("ready line %q; want it to start %q", line, want)
	}
	port := strings.TrimSpace(line[strings.LastIndex(line, " on ")+len(" on "):])

	tests := []struct {
		addr      string
		wantKWh   string
		wantRelay string
	}{
		{"3", "1234.567", "closed"},
		{"7", "7654.321", "open"},
	}
	for _, tt := range tests {
		code, stdout, stderr := mallgrid(t, "meter", "read", "--port", port, "--addr", tt.addr, "--model", "kpm33b", "--json")
		if code != 0 {
			t.Fatalf("meter read --addr %s = %d: %s", tt.addr, code, stderr)
		}
		var got struct {
			Energy map[string]string `json:"energy_kwh"`
			Relay  string            `json:"relay"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("meter read --json: %v\n%s", err, stdout)
		}
		if got.Energy["import_kwh"] != tt.wantKWh || got.Relay != tt.wantRelay {
			t.Errorf("meter %s: import_kwh %q relay %q; want %q %q", tt.addr, got.Energy["import_kwh"], got.Relay, tt.wantKWh, tt.wantRelay)
		}
	}
	stopWithin(t, cmd, syscall.SIGINT, 2*time.Second)
}

func TestSim_File_Refusals(t *testing.T) {
	good := writeSimFile(t, "listen: tcp:127.0.0.1:0\nmeters: [{model: kpm33b, address: 1}]\n")
	bad := writeSimFile(t, "listen: tcp:127.0.0.1:0\nmeters:\n  - {model: kpm33b, address: 0}\n  - {model: kpm33b, address: 2, faults: {late: 2}}\n")
	missing := filepath.Join(t.TempDir(), "none.yaml")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // in stderr
	}{
		{"flags with --file", []string{"sim", "--file", good, "--addr", "3", "--listen", "tcp::1"}, 1,
			[]string{"mallgrid: --file describes the bus and its meters; leave out --listen, --addr, or leave out --file"}},
		{"a default-valued flag counts too", []string{"sim", "--file", good, "--model", "kpm33b"}, 1,
			[]string{"leave out --model,"}},
		{"problems exit 2", []string{"sim", "--file", bad}, 2, []string{
			bad + ":3: meters[0].address: want 1..247, got 0\n",
			bad + ":4: meters[1].faults.late: want a rate 0..1, got 2\n"}},
		{"unreadable file", []string{"sim", "--file", missing}, 2, []string{missing + ": cannot read: no such file or directory"}},
		{"bad -c", []string{"sim", "--file", good, "-c", missing}, 2, []string{missing + ": cannot read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := mallgrid(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit status = %d; want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q; want nothing: nothing was served", stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}
