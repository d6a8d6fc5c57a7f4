package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goburrow/modbus"
)

// Kind is how a bus reaches its meters.
type Kind string

// Bus kinds, as written in the config's bus type and in --port schemes.
const (
	RTU        Kind = "rtu"     // RTU frames on a serial port
	TCP        Kind = "tcp"     // Modbus TCP (MBAP)
	RTUOverTCP Kind = "rtu+tcp" // RTU frames through a serial-to-Ethernet converter
)

// Defaults for a Config's zero values.
const (
	DefaultTimeout = 500 * time.Millisecond
	DefaultQuiet   = 100 * time.Millisecond
	DefaultBaud    = 9600
)

// Config says where a transport connects and how patient it is.
type Config struct {
	Kind    Kind
	Address string // device path for RTU; host:port otherwise
	// Serial line (RTU only).
	Baud     int  // 0 means DefaultBaud
	Parity   byte // 'N', 'E' or 'O'; 0 means 'E' (the KPM33B's factory setting)
	StopBits int  // 1 or 2; 0 means 1
	RS485    bool // set TIOCSRS485 on a board UART
	// Timeout bounds one whole transaction: flush, send and the complete
	// reply. 0 means DefaultTimeout.
	Timeout time.Duration
	// Quiet is how long the line must stay silent after an error before the
	// next request. 0 means DefaultQuiet.
	Quiet time.Duration
	// LockDir is where an RTU port's UUCP lock file (LCK..<name>) is made
	// while the port is open, so that no second master opens it: "" means
	// DefaultLockDir (/run/lock, else /var/lock, else none), NoLock none.
	// The terminal is put in exclusive mode (TIOCEXCL) either way.
	LockDir string
}

// SilentInterval is the silence that ends an RTU frame on c's line: 3.5
// characters at its baud rate and framing (start bit, 8 data bits, parity
// bit unless parity is N, stop bits), and above 19200 baud the fixed
// 1.75 ms that Modbus over Serial Line V1.02 (2.5.1.1) prescribes. A master
// must leave at least this much between a reply and its next request.
// Modbus TCP needs none (0); RTU over TCP keeps the serial line's rule,
// since the converter behind it passes bytes on as they come.
func (c Config) SilentInterval() time.Duration {
	d := c.withDefaults()
	if d.Kind == TCP {
		return 0
	}
	if d.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	bits := 1 + 8 + d.StopBits
	if d.Parity != 'N' {
		bits++
	}
	// 3.5 characters in one division, rounded up: never shorter than the rule.
	n := int64(7*bits) * int64(time.Second)
	den := int64(2 * d.Baud)
	return time.Duration((n + den - 1) / den)
}

// ParsePort splits a --port value: a device path, tcp://host:port or
// rtu+tcp://host:port.
func ParsePort(s string) (Kind, string, error) {
	switch {
	case strings.HasPrefix(s, "tcp://"):
		return TCP, strings.TrimPrefix(s, "tcp://"), nil
	case strings.HasPrefix(s, "rtu+tcp://"):
		return RTUOverTCP, strings.TrimPrefix(s, "rtu+tcp://"), nil
	case strings.Contains(s, "://"):
		return "", "", fmt.Errorf("port %q: unknown scheme (want a device path, tcp:// or rtu+tcp://)", s)
	case s == "":
		return "", "", errors.New("port is empty")
	}
	return RTU, s, nil
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.Kind == "" {
		d.Kind = RTU
	}
	if d.Baud == 0 {
		d.Baud = DefaultBaud
	}
	if d.Parity == 0 {
		d.Parity = 'E'
	}
	if d.StopBits == 0 {
		d.StopBits = 1
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultTimeout
	}
	if d.Quiet <= 0 {
		d.Quiet = DefaultQuiet
	}
	return d
}

// Transport is one connection to a bus of meters. Its transactions are
// serialised by a lock. The port is opened by Open and reopened on the next
// transaction after an I/O failure (an unplugged adapter, a dropped link).
type Transport struct {
	mu     sync.Mutex
	cfg    Config
	s      stream // nil until (re)opened
	closed bool
	lock   *portLock // the RTU port's lock file, held from Open to Close
	gap    time.Duration
	lastTx time.Time // end of the last transaction on the line
	// retries counts requests sent a second time after a timeout: a meter
	// whose first tries go unanswered must show it, even when the second
	// try succeeds.
	retries atomic.Uint64

	// Exactly one of these pairs is set, by Kind.
	rtu     *rtuTransporter
	rtuPack *modbus.RTUClientHandler // used only as goburrow's RTU packager
	tcp     *tcpTransporter
	tcpPack *modbus.TCPClientHandler // used only as goburrow's TCP packager
	client  modbus.Client
}

// Open returns a transport for c and opens its port. For TCP kinds a failed
// dial is not an error here: the link may come later, and every transaction
// dials again until it does.
//
// An RTU port is held until Close (see Config.LockDir): Open fails with a
// *BusyError (errors.Is ErrPortBusy) naming the holder when another program
// holds it, a running gateway included.
func Open(c Config) (*Transport, error) {
	cfg := c.withDefaults()
	t := &Transport{cfg: cfg, gap: cfg.SilentInterval()}
	switch cfg.Kind {
	case RTU, RTUOverTCP:
		t.rtu = &rtuTransporter{}
		t.rtuPack = modbus.NewRTUClientHandler("")
		t.client = modbus.NewClient2(t.rtuPack, t.rtu)
	case TCP:
		t.tcp = &tcpTransporter{}
		t.tcpPack = modbus.NewTCPClientHandler("")
		t.client = modbus.NewClient2(t.tcpPack, t.tcp)
	default:
		return nil, fmt.Errorf("bus kind %q (want rtu, tcp or rtu+tcp)", cfg.Kind)
	}
	if cfg.Kind == RTU {
		lock, err := cfg.lock()
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", cfg.Address, err)
		}
		if err := t.connect(time.Now().Add(cfg.Timeout)); err != nil {
			return nil, errors.Join(fmt.Errorf("open %s: %w", cfg.Address, err), lock.unlock())
		}
		t.lock = lock
	}
	return t, nil
}

// lock takes the port's lock file as LockDir says; nil when none is taken.
func (c Config) lock() (*portLock, error) {
	dir := c.LockDir
	switch dir {
	case NoLock:
		return nil, nil
	case "":
		if dir = DefaultLockDir(); dir == "" {
			return nil, nil
		}
	}
	return lockPort(dir, c.Address)
}

// LockFile returns the lock file the transport holds, "" if none.
func (t *Transport) LockFile() string {
	if t.lock == nil {
		return ""
	}
	return t.lock.path
}

// Retries returns how many requests were sent a second time after a
// timeout since Open.
func (t *Transport) Retries() uint64 { return t.retries.Load() }

// Config returns the transport's configuration with defaults applied.
func (t *Transport) Config() Config { return t.cfg }

// Close closes the port. Transactions after Close return ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var err error
	if t.s != nil {
		err = t.s.Close()
		t.s = nil
	}
	// After the port: the next holder must find it closed.
	return errors.Join(err, t.lock.unlock())
}

// Client returns a client for the meter at slave address on this transport,
// with the transport's timeout.
func (t *Transport) Client(slave byte) *Client {
	return &Client{t: t, slave: slave, timeout: t.cfg.Timeout}
}

func (t *Transport) connect(deadline time.Time) error {
	var (
		s   stream
		err error
	)
	if t.cfg.Kind == RTU {
		s, err = openSerial(t.cfg)
	} else {
		s, err = dialNet(t.cfg, deadline)
	}
	if err != nil {
		return err
	}
	t.s = s
	return nil
}

// do runs one transaction under the lock within timeout (or ctx's deadline
// if that is sooner).
//
// A request that got no byte back at all (ErrTimeout) is sent once more at
// once, after the quiet time, before the lock is let go. Slaves built on
// libmodbus take the first frame after a request to another address for
// that slave's reply and ignore it: after a request to an absent meter,
// their own next request goes unanswered. The retry belongs here rather
// than in the callers because the cause is the line's, not one caller's:
// every master on the line (polling, scan, the technician's read and
// relay, enforcement's commands) needs it, and only here is it sure that
// nothing else reaches the line between the two tries (a relay command on
// the poller's lane would otherwise slip in and be dropped in turn). The
// retry is of the very same frame, so it is safe for writes too: a coil or
// register write sets a value, it does not add to one. The price is a second
// timeout for an address that is really empty (docs/BENCHMARKS.md). Any
// other failure (CRC, short reply, exception) shows the slave heard the
// request, and is not retried.
func (t *Transport) do(ctx context.Context, slave byte, timeout time.Duration, op func(modbus.Client) ([]byte, error)) ([]byte, error) {
	t.mu.Lock() // held across both tries: nothing reaches the line between them
	defer t.mu.Unlock()
	res, err := t.try(ctx, slave, timeout, op)
	if !errors.Is(err, ErrTimeout) || ctx.Err() != nil {
		return res, err
	}
	t.retries.Add(1)
	res, err2 := t.try(ctx, slave, timeout, op)
	switch {
	case err2 == nil:
		return res, nil
	case ctx.Err() != nil:
		return nil, err // the caller gave up: the first try's answer stands
	case errors.Is(err2, ErrTimeout):
		return nil, fmt.Errorf("%w (no reply to 2 tries)", err2)
	}
	return nil, err2
}

// try runs one transaction; t.mu held.
func (t *Transport) try(ctx context.Context, slave byte, timeout time.Duration, op func(modbus.Client) ([]byte, error)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t.closed {
		return nil, ErrClosed
	}
	defer func() { t.lastTx = time.Now() }()
	// The line's own silent interval since the last transaction, which a
	// caller's pause usually covers already.
	if wait := t.gap - time.Since(t.lastTx); wait > 0 && !t.lastTx.IsZero() {
		if !sleepCtx(ctx, wait) {
			return nil, ctx.Err()
		}
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if t.s == nil {
		if err := t.connect(deadline); err != nil {
			return nil, fmt.Errorf("%w: connect %s: %w", ErrNoLink, t.cfg.Address, err)
		}
	}
	if t.rtu != nil {
		t.rtuPack.SlaveId = slave
		t.rtu.s, t.rtu.deadline = t.s, deadline
	} else {
		t.tcpPack.SlaveId = slave
		t.tcp.s, t.tcp.deadline = t.s, deadline
	}
	res, err := op(t.client)
	if err == nil {
		return res, nil
	}
	var ioe *ioError
	var mbe *modbus.ModbusError
	switch {
	case errors.As(err, &ioe):
		_ = t.s.Close()
		t.s = nil
		return nil, err
	case errors.As(err, &mbe):
		// A well-formed exception: the line is in step, no quiet needed.
		return nil, &ExceptionError{Function: mbe.FunctionCode &^ 0x80, Code: mbe.ExceptionCode}
	}
	if !isOurs(err) {
		err = fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	t.quiet(timeout)
	return nil, err
}

// sleepCtx waits d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func isOurs(err error) bool {
	for _, e := range []error{ErrTimeout, ErrCRC, ErrWrongSlave, ErrShortReply, ErrBadReply} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// quiet drains the line until it has been silent for cfg.Quiet: whatever a
// slow or confused meter still sends is thrown away here rather than read as
// the next reply. A line that never falls silent is left after the longer of
// the transaction's and the transport's timeout, so a short per-meter
// timeout does not shorten the drain.
func (t *Transport) quiet(timeout time.Duration) {
	var buf [256]byte
	limit := max(timeout, t.cfg.Timeout)
	start := time.Now()
	lastByte := start
	for time.Since(lastByte) < t.cfg.Quiet && time.Since(start) < limit {
		n, err := t.s.readSome(buf[:], lastByte.Add(t.cfg.Quiet))
		if err != nil {
			_ = t.s.Close()
			t.s = nil
			return
		}
		if n > 0 {
			lastByte = time.Now()
		}
	}
}

// Client addresses one meter on a Transport. Its methods satisfy
// meter.RegisterReader and meter.CoilSwitcher.
type Client struct {
	t       *Transport
	slave   byte
	timeout time.Duration
}

// WithTimeout returns a copy of c whose transactions have timeout d instead
// of the transport's: a slow meter on a fast bus gets its own patience.
// d <= 0 keeps the transport's.
func (c *Client) WithTimeout(d time.Duration) *Client {
	cp := *c
	if d > 0 {
		cp.timeout = d
	}
	return &cp
}

// Slave returns the client's meter address.
func (c *Client) Slave() byte { return c.slave }

// ReadHoldingRegisters reads quantity registers from address with FC03 and
// returns their bytes, 2 per register.
func (c *Client) ReadHoldingRegisters(ctx context.Context, address, quantity uint16) ([]byte, error) {
	return c.readRegisters(ctx, address, quantity, func(mb modbus.Client) ([]byte, error) {
		return mb.ReadHoldingRegisters(address, quantity)
	})
}

// ReadInputRegisters reads quantity registers from address with FC04.
func (c *Client) ReadInputRegisters(ctx context.Context, address, quantity uint16) ([]byte, error) {
	return c.readRegisters(ctx, address, quantity, func(mb modbus.Client) ([]byte, error) {
		return mb.ReadInputRegisters(address, quantity)
	})
}

func (c *Client) readRegisters(ctx context.Context, address, quantity uint16, op func(modbus.Client) ([]byte, error)) ([]byte, error) {
	if quantity == 0 || quantity > 125 {
		return nil, fmt.Errorf("modbus: read of %d registers (want 1..125)", quantity)
	}
	res, err := c.t.do(ctx, c.slave, c.timeout, op)
	if err != nil {
		return nil, err
	}
	if len(res) != 2*int(quantity) {
		return nil, fmt.Errorf("%w: %d bytes for %d registers", ErrBadReply, len(res), quantity)
	}
	return res, nil
}

// ReadCoils reads quantity coils from address with FC01; bit i of the result
// is coil address+i.
func (c *Client) ReadCoils(ctx context.Context, address, quantity uint16) ([]byte, error) {
	res, err := c.t.do(ctx, c.slave, c.timeout, func(mb modbus.Client) ([]byte, error) {
		return mb.ReadCoils(address, quantity)
	})
	if err != nil {
		return nil, err
	}
	if len(res) != (int(quantity)+7)/8 {
		return nil, fmt.Errorf("%w: %d bytes for %d coils", ErrBadReply, len(res), quantity)
	}
	return res, nil
}

// WriteSingleCoil switches the coil at address with FC05 (on = 0xFF00).
func (c *Client) WriteSingleCoil(ctx context.Context, address uint16, on bool) error {
	value := uint16(0x0000)
	if on {
		value = 0xFF00
	}
	_, err := c.t.do(ctx, c.slave, c.timeout, func(mb modbus.Client) ([]byte, error) {
		return mb.WriteSingleCoil(address, value)
	})
	return err
}

// WriteMultipleRegisters writes values from address with FC16.
func (c *Client) WriteMultipleRegisters(ctx context.Context, address uint16, values []uint16) error {
	if len(values) == 0 || len(values) > 123 {
		return fmt.Errorf("modbus: write of %d registers (want 1..123)", len(values))
	}
	data := make([]byte, 2*len(values))
	for i, v := range values {
		data[2*i], data[2*i+1] = byte(v>>8), byte(v)
	}
	_, err := c.t.do(ctx, c.slave, c.timeout, func(mb modbus.Client) ([]byte, error) {
		return mb.WriteMultipleRegisters(address, uint16(len(values)), data)
	})
	return err
}
