package sim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"mallgrid/drivers/meter"
)

func TestServeRTU_ReadKPM33B(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk, WithImportWh(98765))
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	cl := client{m: startPTY(t, bus), addr: 1}
	rd, err := meter.Read(context.Background(), cl, meter.NewPlan(m.Model()))
	if err != nil {
		t.Fatalf("meter.Read: %v", err)
	}
	snap := m.Snapshot()
	for _, q := range rd.Quantities() {
		got, _ := rd.Value(q)
		want, _ := snap.Value(q)
		if !closeTo(got, want, 1e-6) {
			t.Errorf("%s: got %v; want %v", q, got, want)
		}
	}
	if got, _ := rd.ImportWh(); got != 98765 {
		t.Errorf("import: got %d Wh; want 98765", got)
	}
	if n := len(rd.Quantities()); n != len(m.Model().Registers) {
		t.Errorf("quantities read: got %d; want %d", n, len(m.Model().Registers))
	}
}

func TestServeRTU_EnergyFollowsLoadAndRelay(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk)
	m.SetLoad(2000)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	cl := client{m: startPTY(t, bus), addr: 1}
	plan := meter.NewPlan(m.Model())
	importWh := func() int64 {
		t.Helper()
		rd, err := meter.Read(context.Background(), cl, plan)
		if err != nil {
			t.Fatalf("meter.Read: %v", err)
		}
		wh, _ := rd.ImportWh()
		return wh
	}
	steps := []struct {
		name    string
		do      func()
		advance time.Duration
		want    int64
	}{
		{"start", func() {}, 0, 0},
		{"2 kW for 30 min", func() {}, 30 * time.Minute, 1000},
		{"another 15 min", func() {}, 15 * time.Minute, 1500},
		{"relay opened for an hour", func() { m.SetRelay(false) }, time.Hour, 1500},
		{"closed again, 2 kW for 3 min", func() { m.SetRelay(true) }, 3 * time.Minute, 1600},
	}
	for _, s := range steps {
		s.do()
		clk.Advance(s.advance)
		if got := importWh(); got != s.want {
			t.Errorf("%s: import got %d Wh; want %d", s.name, got, s.want)
		}
	}
}

func TestServeRTU_RelayControlMode(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := startPTY(t, bus)
	cl := client{m: master, addr: 1}
	ctx := context.Background()
	model := m.Model()

	// Local mode: the write is acknowledged, the relay stays closed.
	if err := cl.WriteSingleCoil(ctx, model.Relay.Coil, false); err != nil {
		t.Fatalf("open in local mode: got %v; want an acknowledgement", err)
	}
	if got, err := meter.ReadRelay(ctx, cl, model); err != nil || got != meter.RelayClosed {
		t.Errorf("relay after open in local mode: got %v, %v; want closed", got, err)
	}
	if !m.Snapshot().RelayClosed {
		t.Errorf("snapshot: relay open; want closed in local mode")
	}
	// The gateway's own sequence sets remote mode, switches, reads back.
	if got, err := meter.SwitchRelay(ctx, cl, model, false); err != nil || got != meter.RelayOpen {
		t.Fatalf("SwitchRelay open: got %v, %v; want open", got, err)
	}
	s := m.Snapshot()
	if s.RelayClosed || !s.Remote {
		t.Errorf("snapshot: closed %v, remote %v; want open, remote", s.RelayClosed, s.Remote)
	}
	coils, err := cl.ReadCoils(ctx, model.Relay.Coil, 1)
	if err != nil || !bytes.Equal(coils, []byte{0x00}) {
		t.Errorf("FC01 after open: got % X, %v; want 00", coils, err)
	}
	// FC06 back to local mode: a close is again ignored.
	if _, err := master.do(1, pdu16(6, meter.KPM33BControlMode, meter.KPM33BLocal)); err != nil {
		t.Fatalf("FC06 local mode: %v", err)
	}
	if _, err := meter.SwitchRelay(ctx, noRemote{cl}, model, true); !errors.Is(err, meter.ErrRelayDidNotFollow) {
		t.Errorf("close in local mode: got %v; want ErrRelayDidNotFollow", err)
	}
}

// noRemote drops the remote-mode write, as a gateway that forgot it would.
type noRemote struct{ client }

func (noRemote) WriteMultipleRegisters(context.Context, uint16, []uint16) error { return nil }

func TestServeRTU_AbsentAddressIsSilent(t *testing.T) {
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(t, 1, clk))
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := startPTY(t, bus)
	for _, addr := range []byte{2, 247, 248, 255} {
		got, err := master.raw(testFrame(addr, pdu16(3, 0x0030, 2)...), 150*time.Millisecond)
		if err != nil || len(got) != 0 {
			t.Errorf("request to absent %d: got % X, %v; want silence", addr, got, err)
		}
	}
	if _, err := master.do(1, pdu16(3, 0x0030, 2)); err != nil {
		t.Errorf("meter 1 after the silences: %v", err)
	}
}

func TestServeRTU_TwoMetersOneBus(t *testing.T) {
	clk := newFakeClock(t0)
	a := newTestMeter(t, 1, clk, WithImportWh(1000))
	b := newTestMeter(t, 2, clk, WithImportWh(2000))
	bus, err := NewBus(a, b)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	if _, err := NewBus(a, newTestMeter(t, 1, clk)); !errors.Is(err, ErrAddressTaken) {
		t.Errorf("two meters at 1: got %v; want ErrAddressTaken", err)
	}
	master := startPTY(t, bus)
	for _, tt := range []struct {
		addr byte
		want int64
	}{{1, 1000}, {2, 2000}, {1, 1000}} {
		rd, err := meter.Read(context.Background(), client{master, tt.addr}, meter.NewPlan(a.Model()))
		if err != nil {
			t.Fatalf("read meter %d: %v", tt.addr, err)
		}
		if got, _ := rd.ImportWh(); got != tt.want {
			t.Errorf("meter %d import: got %d Wh; want %d", tt.addr, got, tt.want)
		}
	}
	// Two reads of a two-transaction plan.
	if got := a.Stats().Requests; got != 4 {
		t.Errorf("meter 1 requests: got %d; want 4", got)
	}
}

func TestServeRTU_Resynchronises(t *testing.T) {
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(t, 1, clk))
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := startPTY(t, bus)
	good := testFrame(1, pdu16(3, 0x0001, 1)...)
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xFF
	tests := []struct {
		name string
		sent []byte
	}{
		{"bad CRC", badCRC},
		{"unknown function", testFrame(1, 0x41, 0, 0, 0, 1)},
		{"partial frame", good[:5]},
		{"noise", []byte{0xFF, 0x00, 0x13, 0x37, 0x99, 0x01, 0x03}},
		{"bad CRC then good frame in one burst", append(badCRC, good...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := master.raw(tt.sent, 120*time.Millisecond)
			if err != nil || len(got) != 0 {
				t.Errorf("sent % X: got % X, %v; want silence", tt.sent, got, err)
			}
			reply, err := master.do(1, pdu16(3, 0x0001, 1))
			if err != nil || !bytes.Equal(reply, []byte{3, 2, 0, 1}) {
				t.Errorf("next request: got % X, %v; want 03 02 00 01", reply, err)
			}
		})
	}
}

func TestServeRTU_Broadcast(t *testing.T) {
	clk := newFakeClock(t0)
	a, b := newTestMeter(t, 1, clk), newTestMeter(t, 2, clk)
	bus, err := NewBus(a, b)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := startPTY(t, bus)
	for _, p := range [][]byte{pduWriteRegs(0x001E, 0xDD22), pdu16(5, 0x0001, 0x0000), pdu16(3, 0x0001, 1)} {
		got, err := master.raw(testFrame(0, p...), 100*time.Millisecond)
		if err != nil || len(got) != 0 {
			t.Errorf("broadcast % X: got % X, %v; want no reply", p, got, err)
		}
	}
	for _, m := range []*Meter{a, b} {
		if s := m.Snapshot(); s.RelayClosed || !s.Remote {
			t.Errorf("meter %d after broadcasts: closed %v, remote %v; want open, remote", s.Address, s.RelayClosed, s.Remote)
		}
	}
}

// pipeRW is a stream without read deadlines.
type pipeRW struct {
	*io.PipeReader
	*io.PipeWriter
}

func (p pipeRW) Close() error { return errors.Join(p.PipeReader.Close(), p.PipeWriter.Close()) }

func TestServeRTU_StopsOnCancel(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk)
	m.SetLateDelay(time.Hour)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	t.Run("pty with a late reply pending", func(t *testing.T) {
		p, err := NewPTY()
		if err != nil {
			t.Fatalf("NewPTY: %v", err)
		}
		defer p.Close()
		f := openPath(t, p.Path)
		stop := serve(t, func(ctx context.Context) error { return bus.ServeRTU(ctx, p.Master) })
		if err := m.InjectNext(Late, 1); err != nil {
			t.Fatal(err)
		}
		master := &rtuMaster{c: f, timeout: 100 * time.Millisecond}
		if _, err := master.do(1, pdu16(3, 1, 1)); !errors.Is(err, errTimeout) {
			t.Errorf("late reply: got %v; want timeout", err)
		}
		stop() // fails the test unless ServeRTU returns nil within 1 s
	})
	t.Run("stream without deadlines", func(t *testing.T) {
		r, w := io.Pipe()
		stop := serve(t, func(ctx context.Context) error { return bus.ServeRTU(ctx, pipeRW{r, w}) })
		time.Sleep(20 * time.Millisecond)
		stop()
	})
}

func TestServeRTU_StreamEnds(t *testing.T) {
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(t, 1, clk))
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- bus.ServeRTU(context.Background(), pipeRW{r, w}) }()
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("ServeRTU on a closed stream: got %v; want io.EOF", err)
		}
	case <-time.After(time.Second):
		t.Fatal("ServeRTU still running after its stream closed")
	}
}

// timeoutPort behaves as tarm/serial with a read timeout: an idle Read
// waits, then returns 0, io.EOF. It has no deadlines and no Close.
type timeoutPort struct {
	in      chan []byte
	out     chan []byte
	pending []byte
}

func (p *timeoutPort) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
		select {
		case p.pending = <-p.in:
		case <-time.After(100 * time.Millisecond):
			return 0, io.EOF
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *timeoutPort) Write(b []byte) (int, error) {
	p.out <- append([]byte(nil), b...)
	return len(b), nil
}

func TestServeRTU_SerialReadTimeout(t *testing.T) {
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(t, 1, clk))
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	port := &timeoutPort{in: make(chan []byte, 1), out: make(chan []byte, 1)}
	stop := serve(t, func(ctx context.Context) error { return bus.ServeRTU(ctx, port) })
	time.Sleep(350 * time.Millisecond) // several idle timeouts
	port.in <- testFrame(1, pdu16(3, 0x0001, 1)...)
	select {
	case got := <-port.out:
		if want := testFrame(1, 3, 2, 0, 1); !bytes.Equal(got, want) {
			t.Errorf("reply: got % X; want % X", got, want)
		}
	case <-time.After(time.Second):
		t.Fatal("no reply after idle read timeouts; want the port still served")
	}
	stop() // returns by itself within a read timeout: the port cannot be closed
}
