package modbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/tarm/serial"
	"golang.org/x/sys/unix"
)

// stream is a byte pipe to the meters with deadline-bounded reads.
type stream interface {
	// readSome reads what has arrived into p, waiting no later than
	// deadline; it returns 0, nil when nothing came in time.
	readSome(p []byte, deadline time.Time) (int, error)
	write(p []byte, deadline time.Time) error
	// discardInput drops whatever input is buffered but unread, giving up
	// at deadline.
	discardInput(deadline time.Time) error
	Close() error
}

// serialPoll is tarm/serial's read timeout: VTIME has 100 ms granularity,
// so a read returns after at most this long with nothing.
const serialPoll = 100 * time.Millisecond

// serialStream is an RTU line on a tarm/serial port. tarm's Read returns as
// soon as a byte arrives, or after serialPoll with 0, io.EOF.
type serialStream struct {
	port *serial.Port
	excl *os.File // holds the terminal's exclusive mode (TIOCEXCL)
}

func openSerial(c Config) (*serialStream, error) {
	parity := serial.ParityEven
	switch c.Parity {
	case 'N':
		parity = serial.ParityNone
	case 'O':
		parity = serial.ParityOdd
	}
	stop := serial.Stop1
	if c.StopBits == 2 {
		stop = serial.Stop2
	}
	p, err := serial.OpenPort(&serial.Config{
		Name: c.Address, Baud: c.Baud, Size: 8, Parity: parity, StopBits: stop,
		ReadTimeout: serialPoll,
	})
	if errors.Is(err, syscall.EBUSY) {
		// Another program holds the terminal in exclusive mode.
		return nil, &BusyError{Port: c.Address}
	}
	if err != nil {
		return nil, err
	}
	// RS-485 mode first: it opens the device once more, which exclusive
	// mode would refuse to a user other than root.
	if c.RS485 {
		if err := enableRS485(c.Address); err != nil {
			_ = p.Close()
			return nil, err
		}
	}
	excl, err := exclusive(c.Address)
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	return &serialStream{port: p, excl: excl}, nil
}

func (s *serialStream) readSome(p []byte, deadline time.Time) (int, error) {
	for time.Now().Before(deadline) {
		n, err := s.port.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	return 0, nil
}

func (s *serialStream) write(p []byte, _ time.Time) error {
	_, err := s.port.Write(p)
	return err
}

func (s *serialStream) discardInput(time.Time) error { return s.port.Flush() }

// Close closes the port and lets the terminal out of exclusive mode, so
// that the next program may open it once this one is done.
func (s *serialStream) Close() error {
	err := s.port.Close()
	_ = unix.IoctlSetInt(int(s.excl.Fd()), unix.TIOCNXCL, 0) // gone with the last close anyway
	return errors.Join(err, s.excl.Close())
}

// netStream is a TCP connection (Modbus TCP or RTU over TCP).
type netStream struct {
	conn net.Conn
}

func dialNet(c Config, deadline time.Time) (*netStream, error) {
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", c.Address)
	if err != nil {
		return nil, err
	}
	return &netStream{conn: conn}, nil
}

func (s *netStream) readSome(p []byte, deadline time.Time) (int, error) {
	if err := s.conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := s.conn.Read(p)
	if err != nil && n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if n > 0 {
		return n, nil
	}
	return n, err
}

func (s *netStream) write(p []byte, deadline time.Time) error {
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := s.conn.Write(p)
	return err
}

// discardInput reads whatever is already queued, waiting a millisecond at
// most for more (anything later is the quiet time's job). A peer that keeps
// talking past the transaction's deadline is an error: the line is not ours.
func (s *netStream) discardInput(deadline time.Time) error {
	var buf [512]byte
	for time.Now().Before(deadline) {
		n, err := s.readSome(buf[:], minTime(deadline, time.Now().Add(time.Millisecond)))
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: the peer keeps sending", ErrBadReply)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *netStream) Close() error { return s.conn.Close() }

// OpenLine opens the serial device of an RTU Config as a raw byte stream,
// for the slave side of a line: a simulator serving meters on a real port.
// The port is held as Open holds it (lock file in c.LockDir, exclusive
// mode) until the stream is closed. Reads return within 100 ms with
// 0, io.EOF when nothing arrives.
func OpenLine(c Config) (io.ReadWriteCloser, error) {
	d := c.withDefaults()
	if d.Kind != RTU {
		return nil, fmt.Errorf("open line: %q is not a serial port", d.Address)
	}
	lock, err := d.lock()
	if err != nil {
		return nil, fmt.Errorf("open line %s: %w", d.Address, err)
	}
	s, err := openSerial(d)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open line %s: %w", d.Address, err), lock.unlock())
	}
	return &line{s: s, lock: lock}, nil
}

// line is a serial stream opened by OpenLine.
type line struct {
	s    *serialStream
	lock *portLock
}

func (l *line) Read(p []byte) (int, error)  { return l.s.port.Read(p) }
func (l *line) Write(p []byte) (int, error) { return l.s.port.Write(p) }
func (l *line) Close() error                { return errors.Join(l.s.Close(), l.lock.unlock()) }
