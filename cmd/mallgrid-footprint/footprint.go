package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
)

// options are the flags.
type options struct {
	bin           string
	buses, perBus int
	warm, window  time.Duration
	steady        bool
	bigDB         int64
	cache         string
}

// row is one line of the table.
type row struct{ name, value, notes string }

// viewerToken reads /api/v1/status; the configuration holds its SHA-256.
const viewerToken = "footprint-viewer"

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture the gateway runs on.
const clockTicks = 100

func measure(ctx context.Context, o options) ([]row, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (make build)", err)
	}
	ports, stopMeters, err := startMeters(ctx, o.buses, o.perBus)
	if err != nil {
		return nil, err
	}
	defer stopMeters()

	var rows []row
	dir, err := os.MkdirTemp("", "mallgrid-footprint-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	if o.steady {
		steady, err := measureSteady(ctx, bin, dir, ports, o)
		rows = append(rows, steady...)
		if err != nil {
			return rows, err
		}
	}
	if o.bigDB <= 0 {
		return rows, nil
	}
	cached, made, err := bigDB(ctx, o)
	if err != nil {
		return rows, err
	}
	if made != "" {
		rows = append(rows, row{"large database made", made, cached})
	}
	big, err := runCopy(ctx, cached, dir)
	if err != nil {
		return rows, err
	}
	st, err := os.Stat(big)
	if err != nil {
		return rows, err
	}
	size := mib(st.Size() / 1024)
	// Cold: the file's pages dropped from the page cache, as after the box
	// boots; warm: as after a restart of the service.
	for _, cold := range []bool{true, false} {
		what := size + " database, warm cache"
		if cold {
			what = size + " database, cold cache"
			if err := evict(big); err != nil {
				return rows, err
			}
		}
		gw, err := startGateway(ctx, bin, dir, big, ports, o)
		if err != nil {
			return rows, err
		}
		defer gw.kill()
		rows = append(rows, gw.startRows(what)...)
		anon, file, err := procRSS(gw.pid())
		if err != nil {
			return rows, err
		}
		rows = append(rows, row{what + ": RSS once healthy", fmt.Sprintf("%s anonymous + %s file", mib(anon), mib(file)),
			"file: the database's pages mapped and read (the page cache's, reclaimable)"})
		if _, err := gw.stop(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// measureSteady runs the gateway on a database that holds only the
// tenants' credit: its start-up, then CPU and memory over the window.
func measureSteady(ctx context.Context, bin, dir string, ports []string, o options) ([]row, error) {
	var rows []row
	// Steady state on a database that holds only the tenants' credit.
	dbPath := filepath.Join(dir, "g.db")
	if err := prepareDB(ctx, dbPath, o.buses, o.perBus, 0); err != nil {
		return rows, err
	}
	gw, err := startGateway(ctx, bin, dir, dbPath, ports, o)
	if err != nil {
		return rows, err
	}
	defer gw.kill()
	rows = append(rows, gw.startRows("fresh database")...)
	if err := sleep(ctx, o.warm); err != nil {
		return rows, err
	}
	cpu0, err := procCPU(gw.pid())
	if err != nil {
		return rows, err
	}
	reads0, err := gw.requests(ctx)
	if err != nil {
		return rows, err
	}
	t0 := time.Now()
	if err := sleep(ctx, o.window); err != nil {
		return rows, err
	}
	cpu1, err := procCPU(gw.pid())
	if err != nil {
		return rows, err
	}
	elapsed := time.Since(t0)
	reads1, err := gw.requests(ctx)
	if err != nil {
		return rows, err
	}
	rss, hwm, err := procMem(gw.pid())
	if err != nil {
		return rows, err
	}
	online, meters, err := gw.online(ctx)
	if err != nil {
		return rows, err
	}
	cpu := float64(cpu1-cpu0) / clockTicks / elapsed.Seconds() * 100
	rows = append(rows,
		row{"steady: gateway CPU", fmt.Sprintf("%.1f %% of one core", cpu),
			fmt.Sprintf("utime+stime over %s after %s of warm-up", o.window, o.warm)},
		row{"steady: Modbus requests", fmt.Sprintf("%.1f /s", float64(reads1-reads0)/elapsed.Seconds()),
			fmt.Sprintf("%d of %d meters online at the end", online, meters)},
		row{"steady: VmRSS / VmHWM", fmt.Sprintf("%s / %s", mib(rss), mib(hwm)), "at the window's end / peak of the run"},
	)
	stopped, err := gw.stop()
	if err != nil {
		return rows, err
	}
	rows = append(rows, row{"stop: SIGTERM → exit", stopped.Round(time.Millisecond).String(), "each bus finishes its transaction"})

	return rows, nil
}

// startMeters serves buses × perBus simulated KPM33Bs, one bus per
// pseudo-terminal, replies delayed by their wire time at 9600 8E1.
func startMeters(ctx context.Context, buses, perBus int) ([]string, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	var ptys []*sim.PTY
	done := make(chan struct{}, buses)
	stop := func() {
		cancel()
		for range ptys {
			<-done
		}
		for _, p := range ptys {
			p.Close()
		}
	}
	var paths []string
	// The counters go on from where an earlier run left them: the cached
	// database remembers them, and a counter that went back is a break.
	since := time.Since(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).Hours()
	for b := 1; b <= buses; b++ {
		bus, err := sim.NewBus()
		if err != nil {
			stop()
			return nil, nil, err
		}
		for a := 1; a <= perBus; a++ {
			m, err := sim.NewMeter(meter.KPM33B(), uint8(a), sim.WithBasePower(5000),
				sim.WithImportWh(int64(b*1000+a)*1_000_000+int64(since*6000)))
			if err != nil {
				stop()
				return nil, nil, err
			}
			if err := bus.Add(m); err != nil {
				stop()
				return nil, nil, err
			}
		}
		bus.SetWireTiming(sim.WireTiming{Baud: 9600, BitsPerChar: 11, Turnaround: 10 * time.Millisecond})
		p, err := sim.NewPTY()
		if err != nil {
			stop()
			return nil, nil, err
		}
		ptys = append(ptys, p)
		paths = append(paths, p.Path)
		go func() {
			_ = bus.ServeRTU(ctx, p.Master)
			done <- struct{}{}
		}()
	}
	return paths, stop, nil
}

// gatewayConfig is the gateway's configuration: one tenant per meter, a flat
// tariff, the buses polled every 30 s (a 125-meter bus needs about 26 s).
func gatewayConfig(dbPath, listen string, ports []string, perBus int) []byte {
	var b strings.Builder
	sum := sha256.Sum256([]byte(viewerToken))
	fmt.Fprintf(&b, "site: {name: Footprint Mall}\nstorage: {path: %s}\nlog: {level: warn}\n", dbPath)
	fmt.Fprintf(&b, "http:\n  listen: '%s'\n  tokens:\n    - {name: screen, role: viewer, sha256: %s}\n", listen, hex.EncodeToString(sum[:]))
	b.WriteString("buses:\n")
	for i, p := range ports {
		fmt.Fprintf(&b, "  - {name: %s, type: rtu, port: %s, baud: 9600, parity: E, stop_bits: 1, timeout: 500ms, interval: 30s}\n", busName(i+1), p)
	}
	b.WriteString("meters:\n")
	for i := range ports {
		for a := 1; a <= perBus; a++ {
			fmt.Fprintf(&b, "  - {id: %s, bus: %s, address: %d, model: kpm33b, tenant: %s}\n", meterID(i+1, a), busName(i+1), a, tenantID(i+1, a))
		}
	}
	b.WriteString("tenants:\n")
	for i := range ports {
		for a := 1; a <= perBus; a++ {
			fmt.Fprintf(&b, "  - {id: %s, name: Shop %d-%d}\n", tenantID(i+1, a), i+1, a)
		}
	}
	b.WriteString("tariffs: [{name: standard, kind: flat, price: '1.00'}]\n" +
		"ratings: [{name: A, warning_1: '5.00', warning_2: '1.00', overdraft: '0', grace: 0s, restore: '1.00'}]\n")
	return []byte(b.String())
}

func busName(b int) string     { return fmt.Sprintf("bus%02d", b) }
func meterID(b, a int) string  { return fmt.Sprintf("M-%02d%03d", b, a) }
func tenantID(b, a int) string { return fmt.Sprintf("T-%02d%03d", b, a) }
func mib(kib int64) string     { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// gateway is a running `mallgrid run`.
type gateway struct {
	cmd      *exec.Cmd
	exited   chan error
	base     string
	started  time.Time
	ready    time.Duration // to the first READY=1; 0: none came
	answered time.Duration // to /healthz answering at all (the listener is up)
	healthy  time.Duration // to /healthz answering 200 (every bus has read its meters)
	notify   *net.UnixConn
	stderr   *strings.Builder
}

// startGateway runs the binary on dbPath and waits until /healthz answers
// and, for a while after, for READY=1 on a $NOTIFY_SOCKET of its own.
func startGateway(ctx context.Context, bin, dir, dbPath string, ports []string, o options) (*gateway, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "mallgrid.yaml")
	if err := os.WriteFile(cfg, gatewayConfig(dbPath, listen, ports, o.perBus), 0o600); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "notify.sock")
	os.Remove(sock)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	readyAt := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				return // closed
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line == "READY=1" {
					select {
					case readyAt <- time.Now():
					default:
					}
				}
			}
		}
	}()
	g := &gateway{base: "http://" + listen, notify: notify, stderr: &strings.Builder{}, exited: make(chan error, 1)}
	g.cmd = exec.Command(bin, "run", "-c", cfg)
	g.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	g.cmd.Stderr = g.stderr
	g.started = time.Now()
	if err := g.cmd.Start(); err != nil {
		notify.Close()
		return nil, err
	}
	go func() { g.exited <- g.cmd.Wait() }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(5 * time.Minute)
	for g.healthy == 0 {
		select {
		case err := <-g.exited:
			g.exited <- err
			return nil, fmt.Errorf("the gateway exited at start-up: %v\n%s", err, g.stderr)
		case <-ctx.Done():
			g.kill()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if resp, err := client.Get(g.base + "/healthz"); err == nil {
			resp.Body.Close()
			if g.answered == 0 {
				g.answered = time.Since(g.started)
			}
			if resp.StatusCode == http.StatusOK {
				g.healthy = time.Since(g.started)
			}
		}
		if time.Now().After(deadline) {
			g.kill()
			return nil, fmt.Errorf("/healthz did not answer 200 within 5 minutes\n%s", g.stderr)
		}
	}
	// READY=1 comes once the first generation's buses have started, which
	// may be before or after the listener answers.
	select {
	case t := <-readyAt:
		g.ready = t.Sub(g.started)
	case <-time.After(10 * time.Second):
	}
	return g, nil
}

func (g *gateway) startRows(what string) []row {
	ready := "none"
	notes := "the binary sends no READY=1 (NOTIFY_SOCKET)"
	if g.ready > 0 {
		ready, notes = g.ready.Round(time.Millisecond).String(), "the first datagram with READY=1"
	}
	return []row{
		{"start-up, " + what + ": exec → READY=1", ready, notes},
		{"start-up, " + what + ": exec → HTTP answers", g.answered.Round(time.Millisecond).String(), "/healthz answers at all, polled every 10 ms"},
		{"start-up, " + what + ": exec → /healthz 200", g.healthy.Round(time.Millisecond).String(), "every bus has read its meters once (~26 s a cycle)"},
	}
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

// stop sends SIGTERM and returns how long the gateway took to exit.
func (g *gateway) stop() (time.Duration, error) {
	defer g.notify.Close()
	t := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case err := <-g.exited:
		g.exited <- err
		if err != nil {
			return 0, fmt.Errorf("the gateway after SIGTERM: %v\n%s", err, g.stderr)
		}
		return time.Since(t), nil
	case <-time.After(30 * time.Second):
		g.kill()
		return 0, errors.New("the gateway did not exit within 30 s of SIGTERM")
	}
}

// kill ends the gateway if it still runs.
func (g *gateway) kill() {
	select {
	case err := <-g.exited:
		g.exited <- err
	default:
		_ = g.cmd.Process.Kill()
		g.exited <- <-g.exited
	}
	g.notify.Close()
}

// status is the part of GET /api/v1/status read here.
type status struct {
	Counts struct {
		Meters int `json:"meters"`
		Online int `json:"online"`
	} `json:"counts"`
	Polling []struct {
		Requests int64 `json:"requests"`
	} `json:"polling"`
}

func (g *gateway) status(ctx context.Context) (status, error) {
	var s status
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", g.base+"/api/v1/status", nil)
	if err != nil {
		return s, err
	}
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /api/v1/status: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func (g *gateway) requests(ctx context.Context) (int64, error) {
	s, err := g.status(ctx)
	var n int64
	for _, p := range s.Polling {
		n += p.Requests
	}
	return n, err
}

func (g *gateway) online(ctx context.Context) (int, int, error) {
	s, err := g.status(ctx)
	return s.Counts.Online, s.Counts.Meters, err
}

// procCPU is the process's user + system time in clock ticks.
func procCPU(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return utime + stime, errors.Join(err1, err2)
}

// procRSS is RssAnon and RssFile in KiB: the heap and stacks, and the
// mapped files' pages in memory (the database, through bbolt's mmap).
func procRSS(pid int) (anon, file int64, err error) {
	v, err := procStatus(pid, "RssAnon", "RssFile")
	return v[0], v[1], err
}

// evict drops the file's pages from the page cache (written back first), so
// that the next start reads it from the disk.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// procMem is VmRSS and VmHWM in KiB.
func procMem(pid int) (rss, hwm int64, err error) {
	v, err := procStatus(pid, "VmRSS", "VmHWM")
	return v[0], v[1], err
}

// procStatus reads the named "… kB" fields of /proc/PID/status, in the
// order asked for (0 for a field not there).
func procStatus(pid int, keys ...string) ([]int64, error) {
	vals := make([]int64, len(keys))
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return vals, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if i := slices.Index(keys, k); ok && i >= 0 {
			vals[i], _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return vals, sc.Err()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
