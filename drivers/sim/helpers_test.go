package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"mallgrid/drivers/meter"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// t0 is a Wednesday at 12:00 UTC, inside the flat rate.
var t0 = time.Date(2025, 3, 12, 12, 0, 0, 0, time.UTC)

func newTestMeter(t testing.TB, addr uint8, clk *fakeClock, opts ...Option) *Meter {
	t.Helper()
	opts = append([]Option{WithClock(clk.Now)}, opts...)
	m, err := NewMeter(meter.KPM33B(), addr, opts...)
	if err != nil {
		t.Fatalf("NewMeter: %v", err)
	}
	return m
}

// testCRC is CRC-16/Modbus from a table, a second implementation so the
// test master does not trust the one under test.
func testCRC(data []byte) uint16 {
	var table [256]uint16
	for i := range table {
		c := uint16(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		table[i] = c
	}
	crc := uint16(0xFFFF)
	for _, b := range data {
		crc = crc>>8 ^ table[byte(crc)^b]
	}
	return crc
}

func testFrame(addr byte, pdu ...byte) []byte {
	f := append([]byte{addr}, pdu...)
	c := testCRC(f)
	return append(f, byte(c), byte(c>>8))
}

func testFrameOK(f []byte) bool {
	if len(f) < 4 {
		return false
	}
	c := testCRC(f[:len(f)-2])
	return f[len(f)-2] == byte(c) && f[len(f)-1] == byte(c>>8)
}

func pdu16(fc byte, a, b uint16) []byte {
	return []byte{fc, byte(a >> 8), byte(a), byte(b >> 8), byte(b)}
}

func pduWriteRegs(start uint16, values ...uint16) []byte {
	p := []byte{0x10, byte(start >> 8), byte(start), 0, byte(len(values)), byte(2 * len(values))}
	for _, v := range values {
		p = append(p, byte(v>>8), byte(v))
	}
	return p
}

// conn is what the test masters talk over: a pty opened by path, or TCP.
type conn interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

var (
	errTimeout = errors.New("timeout")
	errCRC     = errors.New("bad crc")
	errSlave   = errors.New("wrong slave")
)

type exceptionError byte

func (e exceptionError) Error() string { return fmt.Sprintf("exception %02X", byte(e)) }

// readUntil reads from c until n bytes came or the deadline passed, and
// returns what came; err is errTimeout when fewer than n came.
func readUntil(c conn, n int, deadline time.Time) ([]byte, error) {
	buf := make([]byte, 0, n)
	tmp := make([]byte, 512)
	for len(buf) < n {
		if err := c.SetReadDeadline(deadline); err != nil {
			return buf, err
		}
		k, err := c.Read(tmp[:n-len(buf)])
		buf = append(buf, tmp[:k]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return buf, errTimeout
			}
			return buf, err
		}
	}
	return buf, nil
}

// readQuiet reads whatever comes until the line has been quiet for quiet.
func readQuiet(c conn, quiet time.Duration) []byte {
	var buf []byte
	tmp := make([]byte, 512)
	for {
		if err := c.SetReadDeadline(time.Now().Add(quiet)); err != nil {
			return buf
		}
		k, err := c.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if err != nil {
			return buf
		}
	}
}

// rtuMaster is a minimal Modbus RTU master: one transaction at a time,
// input flushed before each send, reply read by its expected length.
type rtuMaster struct {
	c       conn
	timeout time.Duration
}

// raw sends frame and returns the bytes that come back before the line is
// quiet for quiet.
func (m *rtuMaster) raw(frame []byte, quiet time.Duration) ([]byte, error) {
	readQuiet(m.c, time.Millisecond)
	if _, err := m.c.Write(frame); err != nil {
		return nil, err
	}
	return readQuiet(m.c, quiet), nil
}

// do runs one transaction and returns the reply PDU.
func (m *rtuMaster) do(addr byte, pdu []byte) ([]byte, error) {
	readQuiet(m.c, time.Millisecond) // stale bytes of an earlier fault
	if _, err := m.c.Write(testFrame(addr, pdu...)); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(m.timeout)
	head, err := readUntil(m.c, 5, deadline)
	if err != nil {
		return nil, err
	}
	if head[0] != addr {
		return nil, fmt.Errorf("%w: %d", errSlave, head[0])
	}
	if head[1] == pdu[0]|0x80 {
		if !testFrameOK(head) {
			return nil, errCRC
		}
		return nil, exceptionError(head[2])
	}
	n := 8 // echo of FC05, FC06, FC16
	switch pdu[0] {
	case 0x01, 0x03, 0x04:
		n = 5 + int(head[2])
	}
	rest, err := readUntil(m.c, n-5, deadline)
	if err != nil {
		return nil, err
	}
	frame := append(head, rest...)
	if !testFrameOK(frame) {
		return nil, errCRC
	}
	return frame[1 : len(frame)-2], nil
}

// client adapts an rtuMaster at one address to the meter package's reader
// and switcher, so the gateway's own decoding checks the simulator.
type client struct {
	m    *rtuMaster
	addr byte
}

func (c client) read(fc byte, address, quantity uint16) ([]byte, error) {
	p, err := c.m.do(c.addr, pdu16(fc, address, quantity))
	if err != nil {
		return nil, err
	}
	return p[2:], nil
}

func (c client) ReadHoldingRegisters(_ context.Context, address, quantity uint16) ([]byte, error) {
	return c.read(0x03, address, quantity)
}

func (c client) ReadInputRegisters(_ context.Context, address, quantity uint16) ([]byte, error) {
	return c.read(0x04, address, quantity)
}

func (c client) ReadCoils(_ context.Context, address, quantity uint16) ([]byte, error) {
	return c.read(0x01, address, quantity)
}

func (c client) WriteSingleCoil(_ context.Context, address uint16, on bool) error {
	v := uint16(0)
	if on {
		v = 0xFF00
	}
	_, err := c.m.do(c.addr, pdu16(0x05, address, v))
	return err
}

func (c client) WriteMultipleRegisters(_ context.Context, address uint16, values []uint16) error {
	_, err := c.m.do(c.addr, pduWriteRegs(address, values...))
	return err
}

// serve runs fn (a Serve method) until the test ends and checks that it
// returns nil within a second of the cancel.
func serve(t *testing.T, fn func(ctx context.Context) error) (cancel func()) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancelCtx()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve returned %v; want nil after cancel", err)
				}
			case <-time.After(time.Second):
				t.Errorf("serve still running 1 s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startPTY serves bus on a new pty and returns a master on its path.
func startPTY(t *testing.T, bus *Bus) *rtuMaster {
	t.Helper()
	p, err := NewPTY()
	if err != nil {
		t.Fatalf("NewPTY: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("PTY.Close: %v", err)
		}
	})
	f := openPath(t, p.Path)
	serve(t, func(ctx context.Context) error { return bus.ServeRTU(ctx, p.Master) })
	return &rtuMaster{c: f, timeout: 500 * time.Millisecond}
}

func openPath(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// startTCP serves bus with fn (ServeTCP or ServeRTUOverTCP) on a loopback
// port and returns its address.
func startTCP(t *testing.T, fn func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	serve(t, func(ctx context.Context) error { return fn(ctx, ln) })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mbapDo sends one Modbus TCP request and returns the reply ADU.
func mbapDo(c conn, tid uint16, unit byte, pdu []byte, timeout time.Duration) ([]byte, error) {
	adu := make([]byte, 7, 7+len(pdu))
	binary.BigEndian.PutUint16(adu, tid)
	binary.BigEndian.PutUint16(adu[4:], uint16(1+len(pdu)))
	adu[6] = unit
	adu = append(adu, pdu...)
	if _, err := c.Write(adu); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	head, err := readUntil(c, 7, deadline)
	if err != nil {
		return head, err
	}
	n := int(binary.BigEndian.Uint16(head[4:]))
	rest, err := readUntil(c, n-1, deadline)
	return append(head, rest...), err
}
