package modbus_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

const (
	testTimeout = 200 * time.Millisecond
	lateBy      = 50 * time.Millisecond // how far past the timeout a Late reply comes
)

// simBus serves meters at addrs on a new pseudo-terminal and returns an RTU
// transport on its other end.
func simBus(t *testing.T, addrs ...uint8) (*modbus.Transport, map[uint8]*sim.Meter) {
	t.Helper()
	meters := make(map[uint8]*sim.Meter)
	var list []*sim.Meter
	for _, a := range addrs {
		m, err := sim.NewMeter(meter.KPM33B(), a, sim.WithProfile(sim.Constant(0)), sim.WithImportWh(int64(a)*1000+7))
		if err != nil {
			t.Fatal(err)
		}
		meters[a] = m
		list = append(list, m)
	}
	return serveBus(t, list...), meters
}

// serveBus serves meters on a new pseudo-terminal and returns an RTU
// transport on its other end.
func serveBus(t *testing.T, meters ...*sim.Meter) *modbus.Transport {
	t.Helper()
	bus, err := sim.NewBus(meters...)
	if err != nil {
		t.Fatal(err)
	}
	pty, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
	tr, err := modbus.Open(modbus.Config{Kind: modbus.RTU, Address: pty.Path, Timeout: testTimeout, Quiet: 50 * time.Millisecond, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = tr.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRTU: %v", err)
		}
		_ = pty.Close()
	})
	return tr
}

// readImport reads the KPM33B billing counter (0x0082, float32 kWh) as Wh.
func readImport(ctx context.Context, c *modbus.Client) (int64, error) {
	data, err := c.ReadHoldingRegisters(ctx, 0x0082, 2)
	if err != nil {
		return 0, err
	}
	var rd meter.Reading
	reg := meter.Register{Quantity: meter.Import, Address: 0x0082, Function: 3, Type: meter.Float32, Unit: "kWh"}
	if err := meter.DecodeBlock(&rd, meter.Block{Function: 3, Address: 0x0082, Count: 2, Registers: []meter.Register{reg}}, data); err != nil {
		return 0, err
	}
	wh, _ := rd.ImportWh()
	return wh, nil
}

func TestRTU_ReadsWholeKPM33BPlan(t *testing.T) {
	tr, meters := simBus(t, 1)
	meters[1].SetLoad(6600)
	rd, err := meter.Read(context.Background(), tr.Client(1), meter.NewPlan(meter.KPM33B()))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	snap := meters[1].Snapshot()
	if wh, _ := rd.ImportWh(); wh != snap.ImportWh {
		t.Errorf("import = %d Wh; want %d", wh, snap.ImportWh)
	}
	if v, _ := rd.Value(meter.VoltageB); v < 200 || v > 260 {
		t.Errorf("voltage B = %v; want about 230", v)
	}
	if p, _ := rd.Value(meter.Power); p < 6000 || p > 7200 {
		t.Errorf("power = %v W; want about 6600", p)
	}
	state, err := meter.ReadRelay(context.Background(), tr.Client(1), meter.KPM33B())
	if err != nil || state != meter.RelayClosed {
		t.Errorf("relay = %v, %v; want closed", state, err)
	}
}

// Every injected fault gives its own typed error, and the transaction after
// it reads the meter's current value, never a leftover of the fault.
func TestRTU_InjectedFaults(t *testing.T) {
	tests := []struct {
		kind sim.FaultKind
		want func(error) bool
		name string
	}{
		{sim.NoReply, is(modbus.ErrTimeout), "ErrTimeout"},
		{sim.BadCRC, is(modbus.ErrCRC), "ErrCRC"},
		{sim.Late, is(modbus.ErrTimeout), "ErrTimeout"},
		{sim.Exception, isException(4), "exception 4"},
		{sim.Garbage, func(err error) bool {
			return errors.Is(err, modbus.ErrWrongSlave) || errors.Is(err, modbus.ErrBadReply) ||
				errors.Is(err, modbus.ErrCRC) || errors.Is(err, modbus.ErrShortReply)
		}, "a framing error"},
		{sim.Truncated, is(modbus.ErrShortReply), "ErrShortReply"},
		{sim.WrongSlave, is(modbus.ErrWrongSlave), "ErrWrongSlave"},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			tr, meters := simBus(t, 5)
			m := meters[5]
			m.SetLateDelay(testTimeout + lateBy)
			ctx := context.Background()
			c := tr.Client(5)
			m.SetImportWh(1_000)
			// A request that times out is sent twice: both tries fail.
			n := 1
			if tt.kind == sim.NoReply || tt.kind == sim.Late {
				n = 2
			}
			if err := m.InjectNext(tt.kind, n); err != nil {
				t.Fatal(err)
			}
			_, err := readImport(ctx, c)
			if err == nil || !tt.want(err) {
				t.Fatalf("read with %s injected: err = %v; want %s", tt.kind, err, tt.name)
			}
			// The meter moves on; a late or garbled reply to the first
			// request must not be read as the answer to the second, even
			// when it has arrived by the time the second is sent.
			time.Sleep(lateBy + 50*time.Millisecond)
			m.SetImportWh(2_000)
			got, err := readImport(ctx, c)
			if err != nil {
				t.Fatalf("read after %s: %v", tt.kind, err)
			}
			if got != 2_000 {
				t.Errorf("read after %s = %d Wh; want 2000 (the current value)", tt.kind, got)
			}
		})
	}
}

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func isException(code byte) func(error) bool {
	return func(err error) bool {
		var e *modbus.ExceptionError
		return errors.As(err, &e) && e.Code == code && errors.Is(err, modbus.ErrException)
	}
}

func TestRTU_AbsentAddressTimesOutWithinDeadline(t *testing.T) {
	tr, _ := simBus(t, 1)
	start := time.Now()
	_, err := readImport(context.Background(), tr.Client(9))
	if !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("read of an absent meter: err = %v; want ErrTimeout", err)
	}
	// Two tries of timeout and quiet time; tarm's 100 ms read granularity
	// on top of each.
	if took := time.Since(start); took > 2*(testTimeout+50*time.Millisecond+150*time.Millisecond) {
		t.Errorf("absent meter took %v; want about twice timeout + quiet", took)
	}
}

// One lost reply costs a second try, not a failed read: the transport
// sends a timed-out request once more before it gives up.
func TestRTU_TimeoutRetriedOnce(t *testing.T) {
	tr, meters := simBus(t, 5)
	m := meters[5]
	if err := m.InjectNext(sim.NoReply, 1); err != nil {
		t.Fatal(err)
	}
	before := m.Stats().Requests
	if wh, err := readImport(context.Background(), tr.Client(5)); err != nil || wh != 5_007 {
		t.Fatalf("read with one lost reply = %d, %v; want 5007 on the second try", wh, err)
	}
	if got := m.Stats().Requests - before; got != 2 {
		t.Errorf("meter heard %d requests; want 2 (one retry)", got)
	}
	// Faults that show the meter heard the request are not retried.
	if err := m.InjectNext(sim.BadCRC, 1); err != nil {
		t.Fatal(err)
	}
	before = m.Stats().Requests
	if _, err := readImport(context.Background(), tr.Client(5)); !errors.Is(err, modbus.ErrCRC) {
		t.Fatalf("read with a bad CRC: %v; want ErrCRC", err)
	}
	if got := m.Stats().Requests - before; got != 1 {
		t.Errorf("meter heard %d requests after a CRC error; want 1 (no retry)", got)
	}
}

// A libmodbus slave ignores the frame after a request to an absent
// address; the retry reaches it at once, with no failed read.
func TestRTU_LibmodbusSlaveAfterAnAbsentAddress(t *testing.T) {
	m, err := sim.NewMeter(meter.KPM33B(), 2, sim.WithProfile(sim.Constant(0)), sim.WithImportWh(2_000), sim.WithLibmodbusSlave())
	if err != nil {
		t.Fatal(err)
	}
	tr := serveBus(t, m)
	ctx := context.Background()
	for i := range 3 {
		if _, err := readImport(ctx, tr.Client(9)); !errors.Is(err, modbus.ErrTimeout) {
			t.Fatalf("absent address: %v; want ErrTimeout", err)
		}
		if wh, err := readImport(ctx, tr.Client(2)); err != nil || wh != 2_000 {
			t.Fatalf("round %d: libmodbus meter after an absent address = %d, %v; want 2000", i, wh, err)
		}
	}
}

// Many goroutines on one transport: the lock keeps every transaction whole,
// so each gets its own meter's value.
func TestRTU_ConcurrentClientsGetTheirOwnMeter(t *testing.T) {
	tr, _ := simBus(t, 1, 2, 3, 4)
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for a := uint8(1); a <= 4; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				wh, err := readImport(context.Background(), tr.Client(a))
				if err != nil {
					errc <- err
					return
				}
				if want := int64(a)*1000 + 7; wh != want {
					errc <- errors.New("meter " + string('0'+a) + " read another meter's value")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestRTU_WritesAndCoils(t *testing.T) {
	tr, meters := simBus(t, 3)
	ctx := context.Background()
	c := tr.Client(3)
	state, err := meter.SwitchRelay(ctx, c, meter.KPM33B(), false)
	if err != nil || state != meter.RelayOpen {
		t.Fatalf("SwitchRelay(open) = %v, %v; want open", state, err)
	}
	if meters[3].Snapshot().RelayClosed {
		t.Error("simulated relay still closed after the open command")
	}
	state, err = meter.SwitchRelay(ctx, c, meter.KPM33B(), true)
	if err != nil || state != meter.RelayClosed {
		t.Fatalf("SwitchRelay(close) = %v, %v; want closed", state, err)
	}
}

func TestTransport_ClosedAndCancelled(t *testing.T) {
	tr, _ := simBus(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := readImport(ctx, tr.Client(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("read with a cancelled context: err = %v; want context.Canceled", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := readImport(context.Background(), tr.Client(1)); !errors.Is(err, modbus.ErrClosed) {
		t.Errorf("read after Close: err = %v; want ErrClosed", err)
	}
}

func tcpSim(t *testing.T, serve func(*sim.Bus, context.Context, net.Listener) error) (string, *sim.Meter) {
	t.Helper()
	m, err := sim.NewMeter(meter.KPM33B(), 7, sim.WithProfile(sim.Constant(0)), sim.WithImportWh(4242))
	if err != nil {
		t.Fatal(err)
	}
	bus, err := sim.NewBus(m)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(bus, ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), m
}

func TestTCP_ReadAndLateReplySkipped(t *testing.T) {
	addr, m := tcpSim(t, (*sim.Bus).ServeTCP)
	tr, err := modbus.Open(modbus.Config{Kind: modbus.TCP, Address: addr, Timeout: testTimeout, Quiet: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	if wh, err := readImport(ctx, tr.Client(7)); err != nil || wh != 4242 {
		t.Fatalf("Modbus TCP read = %d, %v; want 4242", wh, err)
	}
	m.SetLateDelay(testTimeout + 20*time.Millisecond)
	if err := m.InjectNext(sim.Late, 2); err != nil { // both tries
		t.Fatal(err)
	}
	if _, err := readImport(ctx, tr.Client(7)); !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("late reply: err = %v; want ErrTimeout", err)
	}
	m.SetImportWh(5000)
	if wh, err := readImport(ctx, tr.Client(7)); err != nil || wh != 5000 {
		t.Errorf("read after a late reply = %d, %v; want 5000 (the late reply has an old transaction id)", wh, err)
	}
	if err := m.InjectNext(sim.Exception, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := readImport(ctx, tr.Client(7)); !isException(4)(err) {
		t.Errorf("exception over TCP: err = %v; want exception 4", err)
	}
}

func TestRTUOverTCP_Read(t *testing.T) {
	addr, _ := tcpSim(t, (*sim.Bus).ServeRTUOverTCP)
	kind, host, err := modbus.ParsePort("rtu+tcp://" + addr)
	if err != nil || kind != modbus.RTUOverTCP {
		t.Fatalf("ParsePort = %v, %v", kind, err)
	}
	tr, err := modbus.Open(modbus.Config{Kind: kind, Address: host, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if wh, err := readImport(context.Background(), tr.Client(7)); err != nil || wh != 4242 {
		t.Errorf("RTU over TCP read = %d, %v; want 4242", wh, err)
	}
}

func TestTCP_LinkDownIsAnErrorNotAHang(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	tr, err := modbus.Open(modbus.Config{Kind: modbus.TCP, Address: addr, Timeout: testTimeout})
	if err != nil {
		t.Fatalf("Open must not need the link: %v", err)
	}
	defer tr.Close()
	start := time.Now()
	if _, err := readImport(context.Background(), tr.Client(1)); err == nil {
		t.Error("read with nobody listening succeeded")
	}
	if took := time.Since(start); took > 2*testTimeout {
		t.Errorf("failed read took %v; want within the timeout", took)
	}
}

func TestParsePort(t *testing.T) {
	for _, tt := range []struct {
		in   string
		kind modbus.Kind
		addr string
		ok   bool
	}{
		{"/dev/ttyUSB0", modbus.RTU, "/dev/ttyUSB0", true},
		{"tcp://10.0.0.5:502", modbus.TCP, "10.0.0.5:502", true},
		{"rtu+tcp://gw:4001", modbus.RTUOverTCP, "gw:4001", true},
		{"udp://x:1", "", "", false},
		{"", "", "", false},
	} {
		kind, addr, err := modbus.ParsePort(tt.in)
		if (err == nil) != tt.ok || kind != tt.kind || addr != tt.addr {
			t.Errorf("ParsePort(%q) = %q, %q, %v; want %q, %q, ok=%v", tt.in, kind, addr, err, tt.kind, tt.addr, tt.ok)
		}
	}
}

// A client's own timeout replaces the transport's for its transactions,
// quiet time included.
func TestClient_WithTimeout(t *testing.T) {
	addr, _ := tcpSim(t, (*sim.Bus).ServeTCP)
	tr, err := modbus.Open(modbus.Config{Kind: modbus.TCP, Address: addr, Timeout: 2 * time.Second, Quiet: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	start := time.Now()
	_, err = readImport(context.Background(), tr.Client(9).WithTimeout(100*time.Millisecond))
	if !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("absent unit: err = %v; want ErrTimeout", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > time.Second {
		t.Errorf("absent unit with a 100ms client timeout took %v; want about 100ms, not the transport's 2s", took)
	}
	if wh, err := readImport(context.Background(), tr.Client(7).WithTimeout(0)); err != nil || wh != 4242 {
		t.Errorf("WithTimeout(0) read = %d, %v; want the transport's timeout to apply", wh, err)
	}
}

// The quiet time after a timeout drains a reply that comes late, even when
// the next request would be answered after it: without the drain, the late
// reply arrives first and is read as the answer (RTU has no transaction id).
func TestRTU_QuietDrainsALateReply(t *testing.T) {
	bus, m := wiredBus(t, 2400) // a 2-register read takes 78 ms
	addr := serveOn(t, bus, (*sim.Bus).ServeRTUOverTCP)
	tr, err := modbus.Open(modbus.Config{Kind: modbus.RTUOverTCP, Address: addr, Timeout: 100 * time.Millisecond, Quiet: 60 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// The late reply leaves 78 + 40 ms after the request: 18 ms after the
	// timeout, inside the quiet time.
	m.SetLateDelay(40 * time.Millisecond)
	if err := m.InjectNext(sim.Late, 2); err != nil { // both tries
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := readImport(ctx, tr.Client(7)); !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("late reply: err = %v; want ErrTimeout", err)
	}
	m.SetImportWh(2_000)
	// Asked at once, the answer would take 78 ms: the late reply would
	// come first.
	if wh, err := readImport(ctx, tr.Client(7)); err != nil || wh != 2_000 {
		t.Errorf("read after a late reply = %d, %v; want 2000, the current value", wh, err)
	}
}

// Modbus TCP skips a reply whose transaction id is not the request's: here
// the late reply comes after the quiet time, while the next answer is still
// on its (slow) way.
func TestTCP_StaleTransactionIDSkipped(t *testing.T) {
	bus, m := wiredBus(t, 1200) // a 2-register read takes 156 ms
	addr := serveOn(t, bus, (*sim.Bus).ServeTCP)
	tr, err := modbus.Open(modbus.Config{Kind: modbus.TCP, Address: addr, Timeout: 100 * time.Millisecond, Quiet: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	cl := tr.Client(7).WithTimeout(400 * time.Millisecond)
	// The late reply leaves 156 + 50 ms after the request, after the
	// timeout and the quiet time, while the next answer is on its way.
	m.SetLateDelay(50 * time.Millisecond)
	if err := m.InjectNext(sim.Late, 2); err != nil { // both tries
		t.Fatal(err)
	}
	if _, err := readImport(ctx, tr.Client(7)); !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("late reply: err = %v; want ErrTimeout", err)
	}
	m.SetImportWh(2_000)
	if wh, err := readImport(ctx, cl); err != nil || wh != 2_000 {
		t.Errorf("read while a stale reply arrives = %d, %v; want 2000 (the stale one has an old transaction id)", wh, err)
	}
}

// wiredBus is a bus with one KPM33B at address 7 whose replies take their
// wire time at baud.
func wiredBus(t *testing.T, baud int) (*sim.Bus, *sim.Meter) {
	t.Helper()
	m, err := sim.NewMeter(meter.KPM33B(), 7, sim.WithProfile(sim.Constant(0)), sim.WithImportWh(1_000))
	if err != nil {
		t.Fatal(err)
	}
	bus, err := sim.NewBus(m)
	if err != nil {
		t.Fatal(err)
	}
	bus.SetWireTiming(sim.WireTiming{Baud: baud})
	return bus, m
}

// serveOn serves bus on a loopback listener until the test ends.
func serveOn(t *testing.T, bus *sim.Bus, serve func(*sim.Bus, context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(bus, ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}
