package modbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/tarm/serial"
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
	if err != nil {
		return nil, err
	}
	if c.RS485 {
		if err := enableRS485(c.Address); err != nil {
			_ = p.Close()
			return nil, err
		}
	}
	return &serialStream{port: p}, nil
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

func (s *serialStream) Close() error { return s.port.Close() }

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
// Reads return within 100 ms with 0, io.EOF when nothing arrives.
func OpenLine(c Config) (io.ReadWriteCloser, error) {
	d := c.withDefaults()
	if d.Kind != RTU {
		return nil, fmt.Errorf("open line: %q is not a serial port", d.Address)
	}
	s, err := openSerial(d)
	if err != nil {
		return nil, fmt.Errorf("open line %s: %w", d.Address, err)
	}
	return s.port, nil
}
