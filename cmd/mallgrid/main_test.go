package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
	"mallgrid/gateway/config"
)

// binary is the mallgrid command built once for the tests that need a real
// process (signals, commands that run until stopped).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mallgrid-cmd-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mallgrid")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build mallgrid: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mallgrid runs a command line in-process and returns its exit status and output.
func mallgrid(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// simPort serves simulated KPM33Bs at addrs on a pseudo-terminal and
// returns its path and the meters.
func simPort(t *testing.T, addrs ...uint8) (string, map[uint8]*sim.Meter) {
	t.Helper()
	bus, err := sim.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	meters := map[uint8]*sim.Meter{}
	for _, a := range addrs {
		m, err := sim.NewMeter(meter.KPM33B(), a, sim.WithProfile(sim.Constant(0)), sim.WithImportWh(int64(a)*1_000_000+123_456))
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Add(m); err != nil {
			t.Fatal(err)
		}
		meters[a] = m
	}
	pty, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
	t.Cleanup(func() { cancel(); <-done; pty.Close() })
	return pty.Path, meters
}

func TestConfigCheck_ReportsEveryProblemWithExit2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "site: {name: x}\nbuses:\n  - {name: b1, port: /dev/ttyUSB0, parity: X}\n" +
		"meters:\n  - {id: M1, bus: b3, address: 1, model: kpm33b, tenant: T1}\n" +
		"  - {id: M2, bus: b1, address: 1, model: kpm33b, tenant: T1, tarif: x}\n" +
		"tenants:\n  - {id: T1, name: A}\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := mallgrid(t, "config", "check", "-c", path)
	if code != 2 {
		t.Errorf("exit status = %d; want 2", code)
	}
	for _, want := range []string{
		path + ":3: buses[0].parity: ",
		path + ":5: meters[0].bus: ",
		path + ":6: meters[1].tarif: unknown key",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestConfigCheck_ShippedFilesAreValid(t *testing.T) {
	// configs/demo.yaml's stickers take their secret from the environment,
	// as `mallgrid demo` gives it one made for the run.
	t.Setenv(config.QRSecretVar, "shipped-files-test-0123456789abcdef-0123")
	for _, f := range []string{"../../configs/mallgrid.example.yaml", "../../configs/demo.yaml"} {
		if code, out, stderr := mallgrid(t, "config", "check", "-c", f); code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("config check %s = %d, %q %q; want 0 ok", f, code, out, stderr)
		}
	}
	if code, _, stderr := mallgrid(t, "config", "check", "-c", "/nonexistent.yaml"); code != 2 || !strings.Contains(stderr, "/nonexistent.yaml") {
		t.Errorf("missing file: exit %d, %q; want 2 naming the file", code, stderr)
	}
}

func TestMeterRead_TableAndJSON(t *testing.T) {
	port, meters := simPort(t, 4)
	meters[4].SetLoad(5000)
	code, out, stderr := mallgrid(t, "meter", "read", "--port", port, "--addr", "4", "--model", "kpm33b")
	if code != 0 {
		t.Fatalf("meter read = %d: %s", code, stderr)
	}
	for _, want := range []string{"import_kwh", "voltage_a", "frequency", "Hz", "relay", "closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("meter read output lacks %q:\n%s", want, out)
		}
	}
	code, out, stderr = mallgrid(t, "meter", "read", "--port", port, "--addr", "4", "--json")
	if code != 0 {
		t.Fatalf("meter read --json = %d: %s", code, stderr)
	}
	var got struct {
		Model  string            `json:"model"`
		Energy map[string]string `json:"energy_kwh"`
		Values map[string]struct {
			Value float64 `json:"value"`
			Unit  string  `json:"unit"`
		} `json:"values"`
		Relay string `json:"relay"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	// Counter 4,123,456 Wh plus whatever the load added since: exact digits
	// up to the last few Wh.
	if e := got.Energy["import_kwh"]; !strings.HasPrefix(e, "4123.4") {
		t.Errorf("import_kwh = %q; want 4123.4xx", e)
	}
	if v := got.Values["power"]; v.Unit != "W" || v.Value < 4000 || v.Value > 6000 {
		t.Errorf("power = %+v; want about 5000 W", v)
	}
	if got.Model != "kpm33b" || got.Relay != "closed" {
		t.Errorf("model %q relay %q", got.Model, got.Relay)
	}
}

func TestMeterRelay_SwitchesAndReadsBack(t *testing.T) {
	port, meters := simPort(t, 2)
	code, out, stderr := mallgrid(t, "meter", "relay", "--port", port, "--addr", "2", "--model", "kpm33b", "off")
	if code != 0 || !strings.Contains(out, "is open (read back)") {
		t.Fatalf("relay off = %d %q %q", code, out, stderr)
	}
	if snap := meters[2].Snapshot(); snap.RelayClosed || !snap.Remote {
		t.Errorf("simulated meter after relay off: closed=%v remote=%v; want open, remote mode", snap.RelayClosed, snap.Remote)
	}
	if code, out, _ = mallgrid(t, "meter", "relay", "--port", port, "--addr", "2", "on"); code != 0 || !strings.Contains(out, "is closed") {
		t.Errorf("relay on = %d %q", code, out)
	}
	if code, _, _ = mallgrid(t, "meter", "relay", "--port", port, "--addr", "2", "sideways"); code == 0 {
		t.Error("relay sideways succeeded")
	}
	if code, _, stderr = mallgrid(t, "meter", "read", "--port", port, "--addr", "9", "--timeout", "200ms"); code != 1 || !strings.Contains(stderr, "timeout") {
		t.Errorf("read of an absent meter = %d %q; want 1 and a timeout", code, stderr)
	}
}

func TestMeterScan_FindsTheMetersThatAnswer(t *testing.T) {
	port, _ := simPort(t, 2, 3)
	code, out, stderr := mallgrid(t, "meter", "scan", "--port", port, "--from", "1", "--to", "4", "--timeout", "100ms")
	if code != 0 {
		t.Fatalf("scan = %d %s", code, stderr)
	}
	for _, want := range []string{"  2  kpm33b   import 2123.456 kWh", "  3  kpm33b   import 3123.456 kWh", "2 of 4 addresses answered"} {
		if !strings.Contains(out, want) {
			t.Errorf("scan output lacks %q:\n%s", want, out)
		}
	}
}

// start runs the real binary and returns it with a reader of its stdout.
func start(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(stdout)
}

// readLineContaining reads stdout lines until one contains want.
func readLineContaining(t *testing.T, r *bufio.Reader, want string) string {
	t.Helper()
	lines := make(chan string)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- line
		}
	}()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line with %q", want)
			}
			if strings.Contains(line, want) {
				go func() { // keep draining so the process never blocks on its pipe
					for range lines {
					}
				}()
				return line
			}
		case <-timeout:
			t.Fatalf("no line with %q within 20s", want)
		}
	}
}

// stopWithin signals the process and requires a clean exit within d.
func stopWithin(t *testing.T, cmd *exec.Cmd, sig syscall.Signal, d time.Duration) {
	t.Helper()
	start := time.Now()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after %v: %v; want status 0", sig, err)
		}
		if took := time.Since(start); took > d {
			t.Errorf("shutdown took %v; want under %v", took, d)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after %v", sig)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDemo_ServesTheSimulatedMallAndStopsOnSIGINT is what `make run` does.
func TestDemo_ServesTheSimulatedMallAndStopsOnSIGINT(t *testing.T) {
	cmd, out := start(t, "demo", "--listen", "127.0.0.1:0", "--fast")
	line := readLineContaining(t, out, "status page on http://")
	url := strings.Fields(line[strings.Index(line, "http://"):])[0]
	const token = "demo" // the built-in demo's, in configs/demo.yaml
	var meters []struct {
		ID     string `json:"id"`
		Online bool   `json:"online"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := getWithToken(url+"api/v1/meters", token)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&meters)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		online := 0
		for _, m := range meters {
			if m.Online {
				online++
			}
		}
		if len(meters) >= 20 && online == len(meters) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d demo meters online after 20s", online, len(meters))
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopWithin(t, cmd, syscall.SIGINT, 2*time.Second)
}

// TestRun_StopsCleanlyOnSIGTERM runs the daemon as systemd would, against
// `mallgrid sim` serving Modbus TCP in another process.
func TestRun_StopsCleanlyOnSIGTERM(t *testing.T) {
	simAddr := freePort(t)
	simCmd, simOut := start(t, "sim", "--listen", "tcp:"+simAddr, "--model", "kpm33b", "--addr", "1,2")
	readLineContaining(t, simOut, "mallgrid sim:")

	httpAddr := freePort(t)
	dir := t.TempDir()
	cfg := "site: {name: SIGTERM test}\nstorage: {path: " + filepath.Join(dir, "g.db") + "}\nhttp: {listen: '" + httpAddr + "', " +
		"tokens: [{name: screen, role: viewer, sha256: 41d9fa3e56cb3daebc6632600c8499398c2816b9234d3e9d93432d55e7c69c27}]}\n" +
		"log: {format: json}\nbuses:\n  - {name: lan, type: tcp, port: '" + simAddr + "', interval: 1s}\n" +
		"meters:\n  - {id: M1, bus: lan, address: 1, model: kpm33b, tenant: T1}\n  - {id: M2, bus: lan, address: 2, model: kpm33b, tenant: T1}\n" +
		"tenants:\n  - {id: T1, name: Shop}\n"
	cfgPath := filepath.Join(dir, "mallgrid.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out := start(t, "run", "-c", cfgPath)
	// A fresh install: the new ledger is worth a warning. (The lines after
	// it are not read here: the HTTP poll below waits for the start.)
	if line := readLineContaining(t, out, "new empty ledger created at "+filepath.Join(dir, "g.db")); !strings.Contains(line, `"level":"warn"`) {
		t.Errorf("new ledger logged as %s; want at warn level", line)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := getWithToken("http://"+httpAddr+"/api/v1/meters/M2", "screen-secret")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"online": true`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("M2 not online over Modbus TCP within 15s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopWithin(t, cmd, syscall.SIGTERM, 2*time.Second)
	stopWithin(t, simCmd, syscall.SIGINT, 2*time.Second)
}

// getWithToken is GET url with a bearer token: every read but /healthz
// needs a login or a token.
func getWithToken(url, token string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultClient.Do(req)
}
