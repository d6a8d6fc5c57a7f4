package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mallgrid/drivers/modbus"
)

// A port another program holds is refused at once to every meter command,
// with the holder named: two masters on one line collide. (The holder here
// is this test; the words for a holder that is the gateway's `mallgrid run`
// are TestHint's in gateway/tech.)
func TestMeter_HeldPortRefusedAtOnce(t *testing.T) {
	port, _ := simPort(t, 1)
	dir := t.TempDir()
	// The daemon opens its bus as this does (gateway.runBus).
	held, err := modbus.Open(modbus.Config{Kind: modbus.RTU, Address: port, LockDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, args := range [][]string{
		{"meter", "read", "--port", port, "--addr", "1", "--lock-dir", dir},
		{"meter", "relay", "--port", port, "--addr", "1", "--lock-dir", dir, "on"},
		{"meter", "scan", "--port", port, "--to", "3", "--lock-dir", dir},
	} {
		start := time.Now()
		code, _, stderr := mallgrid(t, args...)
		if code != exitFailure {
			t.Errorf("%s on a held port: exit %d; want %d", args[1], code, exitFailure)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s on a held port took %v; want it to fail at once", args[1], took)
		}
		for _, want := range []string{fmt.Sprintf("(PID %d)", os.Getpid()), "LCK..", "holds " + port, "Wait for it to finish"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%s on a held port: stderr %q lacks %q", args[1], stderr, want)
			}
		}
	}
}

// Errors say what to check, not only what went wrong.
func TestMeter_ErrorsSayWhatToCheck(t *testing.T) {
	port, _ := simPort(t, 1)
	code, _, stderr := mallgrid(t, "meter", "read", "--port", port, "--addr", "9", "--timeout", "100ms", "--lock-dir", t.TempDir())
	for _, want := range []string{"modbus: timeout", "No reply from address 9", "baud rate", "parity", "A/B wiring", "termination"} {
		if code != exitFailure || !strings.Contains(stderr, want) {
			t.Errorf("read of an absent address: exit %d, stderr %q lacks %q", code, stderr, want)
		}
	}
	code, _, stderr = mallgrid(t, "meter", "read", "--port", port, "--addr", "1", "--model", "sdm120", "--lock-dir", t.TempDir())
	for _, want := range []string{"exception 2", "not supported by this model", "function: 3"} {
		if code != exitFailure || !strings.Contains(stderr, want) {
			t.Errorf("read with the wrong model: exit %d, stderr %q lacks %q", code, stderr, want)
		}
	}
	code, _, stderr = mallgrid(t, "meter", "read", "--port", "/dev/ttyNOSUCH0", "--lock-dir", t.TempDir())
	for _, want := range []string{"/dev/ttyNOSUCH0", "device path", "dialout"} {
		if code != exitFailure || !strings.Contains(stderr, want) {
			t.Errorf("read on a missing port: exit %d, stderr %q lacks %q", code, stderr, want)
		}
	}
}

// cancelOn is stderr for a command that is interrupted (as by Ctrl-C) once
// it reports a given line.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	when   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.when) {
		c.cancel()
	}
	return len(p), nil
}

// Interrupted, a scan prints what it found up to the last address it
// finished, counts only those, and exits 130.
func TestMeterScan_InterruptedCountsWhatFinished(t *testing.T) {
	port, _ := simPort(t, 2)
	for _, asJSON := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		stderr := &cancelOn{when: "scan: address 4 ", cancel: cancel}
		var stdout bytes.Buffer
		args := []string{"meter", "scan", "--port", port, "--timeout", "100ms", "--lock-dir", t.TempDir()}
		if asJSON {
			args = append(args, "--json")
		}
		code := run(ctx, args, &stdout, stderr)
		cancel()
		if code != exitInterrupted {
			t.Errorf("interrupted scan (json %v): exit %d; want %d\n%s", asJSON, code, exitInterrupted, stderr.buf.String())
		}
		if !strings.Contains(stderr.buf.String(), "scan: address 1 (1 of 247), 0 found so far") {
			t.Errorf("progress on stderr:\n%s\nwant a line per address", stderr.buf.String())
		}
		if !asJSON {
			want := "  2  kpm33b   import 2123.456 kWh\ninterrupted: 1 of 3 addresses answered (1..3 scanned, 4..247 not)\n"
			if stdout.String() != want {
				t.Errorf("interrupted scan printed\n%s\nwant\n%s", stdout.String(), want)
			}
			continue
		}
		var got scanJSON
		if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
			t.Fatalf("--json: %v\n%s", err, stdout.String())
		}
		if !got.Interrupted || got.Scanned != 3 || got.From != 1 || got.To != 247 || len(got.Found) != 1 || got.Found[0].Address != 2 {
			t.Errorf("--json = %+v; want interrupted, 3 scanned, address 2 found", got)
		}
	}
}

// `meter read ID` asks the running gateway, and shows how old its reading is.
func TestMeterRead_ByIDThroughTheGateway(t *testing.T) {
	read := time.Now().Add(-3 * time.Second).UTC().Truncate(time.Second)
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if r.URL.Path != "/api/v1/meters/M-101" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no meter \"M-9\""}`)
			return
		}
		fmt.Fprintf(w, `{"id":"M-101","bus":"A","address":3,"model":"kpm33b","online":true,"reading_time":%q,
			"import_kwh":"1234.567","energy_kwh":{"export_kwh":"0.000"},"values":{"power":{"value":3000,"unit":"W"}},
			"relay":{"desired":"closed","actual":"closed"},"stats":{}}`, read.Format(time.RFC3339))
	}))
	defer srv.Close()
	code, out, stderr := mallgrid(t, "meter", "read", "M-101", "--url", srv.URL, "--token", "s3cret")
	if code != 0 {
		t.Fatalf("meter read M-101 = %d: %s", code, stderr)
	}
	for _, want := range []string{"M-101 (kpm33b), bus A, address 3, through the running gateway", "ago, at " + read.Format(time.RFC3339),
		"1234.567", "power", "3000", "relay", "closed (wanted closed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if gotAuth != "Bearer s3cret" {
		t.Errorf("Authorization = %q; want the token as a bearer token", gotAuth)
	}
	if code, _, stderr = mallgrid(t, "meter", "read", "M-9", "--url", srv.URL); code != exitFailure || !strings.Contains(stderr, `no meter \"M-9\"`) && !strings.Contains(stderr, `no meter "M-9"`) {
		t.Errorf("unknown meter: exit %d, stderr %q; want the gateway's reason", code, stderr)
	}
	if code, _, stderr = mallgrid(t, "meter", "read", "M-101", "--url", srv.URL, "--port", "/dev/ttyUSB0"); code != exitFailure || !strings.Contains(stderr, "--port is for reading on the line") {
		t.Errorf("id and --port: exit %d, stderr %q; want them refused together", code, stderr)
	}
	if code, _, stderr = mallgrid(t, "meter", "read", "M-101"); code != exitFailure || !strings.Contains(stderr, "needs -c FILE") {
		t.Errorf("id without -c or --url: exit %d, stderr %q", code, stderr)
	}
}
