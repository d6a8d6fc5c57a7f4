package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"mallgrid/drivers/meter"
)

func TestServeTCP_Read(t *testing.T) {
	clk := newFakeClock(t0)
	a := newTestMeter(t, 1, clk, WithImportWh(1111))
	b := newTestMeter(t, 2, clk, WithImportWh(2222))
	bus, err := NewBus(a, b)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	addr := startTCP(t, bus.ServeTCP)
	var imp meter.Register
	for _, r := range a.Model().Registers {
		if r.Quantity == meter.Import {
			imp = r
		}
	}
	// Several masters at once, each on its own connection.
	var wg sync.WaitGroup
	for i := range 4 {
		c := dial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				unit := byte(1 + (i+j)%2)
				tid := uint16(i*100 + j)
				adu, err := mbapDo(c, tid, unit, pdu16(3, imp.Address, 2), time.Second)
				if err != nil {
					t.Errorf("conn %d: %v", i, err)
					return
				}
				if got := binary.BigEndian.Uint16(adu); got != tid || adu[6] != unit || binary.BigEndian.Uint16(adu[2:]) != 0 {
					t.Errorf("conn %d: header % X; want tid %d, protocol 0, unit %d", i, adu[:7], tid, unit)
				}
				v, err := meter.Decode(imp, adu[9:])
				if want := float64(unit) * 1.111; err != nil || !closeTo(v, want, 1e-6) {
					t.Errorf("conn %d unit %d: import %v kWh, %v; want %v", i, unit, v, err, want)
				}
			}
		}()
	}
	wg.Wait()

	c := dial(t, addr)
	if got, err := mbapDo(c, 9, 3, pdu16(3, 0x0001, 1), 150*time.Millisecond); !errors.Is(err, errTimeout) {
		t.Errorf("absent unit 3: got % X, %v; want silence", got, err)
	}
	if adu, err := mbapDo(c, 10, 1, pdu16(3, 0x0001, 1), time.Second); err != nil || !bytes.Equal(adu[7:], []byte{3, 2, 0, 1}) {
		t.Errorf("unit 1 after the silence: got % X, %v", adu, err)
	}
}

func TestServeTCP_Faults(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	c := dial(t, startTCP(t, bus.ServeTCP))
	req := pdu16(3, 0x0001, 1)
	good, err := mbapDo(c, 1, 1, req, time.Second)
	if err != nil {
		t.Fatalf("clean: %v", err)
	}
	tests := []struct {
		kind FaultKind
		want []byte // nil: only a timeout
	}{
		{NoReply, nil},
		{BadCRC, []byte{0, 1, 0xFF, 0xFF, 0, 5, 1, 3, 2, 0, 1}},
		{Exception, []byte{0, 1, 0, 0, 0, 3, 1, 0x83, 0x04}},
		{WrongSlave, []byte{0, 1, 0, 0, 0, 5, 2, 3, 2, 0, 1}},
		{Truncated, nil},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			if err := m.InjectNext(tt.kind, 1); err != nil {
				t.Fatal(err)
			}
			got, err := mbapDo(c, 1, 1, req, 150*time.Millisecond)
			if tt.want == nil {
				if !errors.Is(err, errTimeout) {
					t.Errorf("got % X, %v; want a timeout", got, err)
				}
				readQuiet(c, 20*time.Millisecond) // a truncated frame's half
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("got % X, %v; want % X", got, err, tt.want)
			}
		})
	}
	if again, err := mbapDo(c, 1, 1, req, time.Second); err != nil || !bytes.Equal(again, good) {
		t.Errorf("after the faults: got % X, %v; want % X", again, err, good)
	}
}

func TestServeRTUOverTCP_Read(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 5, clk, WithImportWh(4242))
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := &rtuMaster{c: dial(t, startTCP(t, bus.ServeRTUOverTCP)), timeout: time.Second}
	rd, err := meter.Read(context.Background(), client{master, 5}, meter.NewPlan(m.Model()))
	if err != nil {
		t.Fatalf("meter.Read: %v", err)
	}
	if got, _ := rd.ImportWh(); got != 4242 {
		t.Errorf("import: got %d Wh; want 4242", got)
	}
	if got, _ := master.raw(testFrame(6, pdu16(3, 1, 1)...), 100*time.Millisecond); len(got) != 0 {
		t.Errorf("absent address 6: got % X; want silence", got)
	}
}

func TestServeTCP_StopsOnCancel(t *testing.T) {
	clk := newFakeClock(t0)
	m := newTestMeter(t, 1, clk)
	m.SetLateDelay(time.Hour)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	for name, fn := range map[string]func(context.Context, net.Listener) error{
		"ServeTCP": bus.ServeTCP, "ServeRTUOverTCP": bus.ServeRTUOverTCP,
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			stop := serve(t, func(ctx context.Context) error { return fn(ctx, ln) })
			idle := dial(t, ln.Addr().String())
			busy := dial(t, ln.Addr().String())
			if err := m.InjectNext(Late, 1); err != nil {
				t.Fatal(err)
			}
			// A request whose reply is due in an hour, in either framing.
			if name == "ServeTCP" {
				_, err = mbapDo(busy, 1, 1, pdu16(3, 1, 1), 50*time.Millisecond)
			} else {
				_, err = (&rtuMaster{c: busy, timeout: 50 * time.Millisecond}).do(1, pdu16(3, 1, 1))
			}
			if !errors.Is(err, errTimeout) {
				t.Errorf("late request: got %v; want timeout", err)
			}
			stop()
			// The connections were closed by the server.
			for _, c := range []net.Conn{idle, busy} {
				if _, err := readUntil(c, 1, time.Now().Add(time.Second)); err == nil || errors.Is(err, errTimeout) {
					t.Errorf("connection after cancel: read %v; want closed", err)
				}
			}
		})
	}
}

func TestServeTCP_BadFrames(t *testing.T) {
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(t, 1, clk))
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	addr := startTCP(t, bus.ServeTCP)
	c := dial(t, addr)
	// Protocol id 1 is not Modbus: ignored, the connection lives on.
	if _, err := c.Write([]byte{0, 7, 0, 1, 0, 6, 1, 3, 0, 1, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if got := readQuiet(c, 100*time.Millisecond); len(got) != 0 {
		t.Errorf("protocol id 1: got % X; want nothing", got)
	}
	if _, err := mbapDo(c, 8, 1, pdu16(3, 1, 1), time.Second); err != nil {
		t.Errorf("after protocol id 1: %v", err)
	}
	// An impossible length cannot be skipped: the connection ends.
	if _, err := c.Write([]byte{0, 9, 0, 0, 0xFF, 0xFF, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := readUntil(c, 1, time.Now().Add(time.Second)); err == nil || errors.Is(err, errTimeout) {
		t.Errorf("after length 0xFFFF: read %v; want the connection closed", err)
	}
	// Other connections are not affected.
	if _, err := mbapDo(dial(t, addr), 1, 1, pdu16(3, 1, 1), time.Second); err != nil {
		t.Errorf("new connection: %v", err)
	}
}
