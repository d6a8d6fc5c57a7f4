package modbus

import (
	"errors"
	"fmt"
)

var (
	// ErrTimeout is returned when no byte of the reply arrived before the deadline.
	ErrTimeout = errors.New("modbus: timeout")
	// ErrCRC is returned when a reply's CRC does not match its bytes.
	ErrCRC = errors.New("modbus: bad CRC")
	// ErrWrongSlave is returned when a reply comes from another address than
	// the one asked: a late reply of another meter, or two meters at one address.
	ErrWrongSlave = errors.New("modbus: reply from wrong slave")
	// ErrShortReply is returned when a reply stopped before its length was
	// complete and the deadline passed.
	ErrShortReply = errors.New("modbus: short reply")
	// ErrBadReply is returned for a reply that cannot answer the request:
	// another function code, a wrong byte count, trailing bytes, garbage.
	ErrBadReply = errors.New("modbus: malformed reply")
	// ErrException matches every *ExceptionError with errors.Is.
	ErrException = errors.New("modbus: exception")
	// ErrNoLink is returned when the port cannot be opened or the link
	// fails (an unplugged USB adapter, an unreachable converter): the bus,
	// not a meter, is at fault.
	ErrNoLink = errors.New("modbus: no link")
	// ErrPortBusy is returned by Open when another program holds the serial
	// port (its lock file, or the terminal's exclusive mode); the error is a
	// *BusyError naming the holder.
	ErrPortBusy = errors.New("modbus: port busy")
	// ErrClosed is returned by a Transport after Close.
	ErrClosed = errors.New("modbus: transport closed")
)

// ExceptionError is a Modbus exception reply: the meter understood the
// request and refused it.
type ExceptionError struct {
	Function byte // the request's function code
	Code     byte // 1 illegal function, 2 illegal data address, 3 illegal value, 4 device failure, …
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("modbus: exception %d (%s) to function %d", e.Code, exceptionText(e.Code), e.Function)
}

// Is makes errors.Is(err, ErrException) true for every exception.
func (e *ExceptionError) Is(target error) bool { return target == ErrException }

func exceptionText(code byte) string {
	switch code {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address"
	case 3:
		return "illegal data value"
	case 4:
		return "slave device failure"
	case 5:
		return "acknowledge"
	case 6:
		return "slave device busy"
	case 10:
		return "gateway path unavailable"
	case 11:
		return "gateway target failed to respond"
	}
	return "unknown"
}

// ErrorKind names an error for statistics: "timeout", "crc", "exception", … .
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrCRC):
		return "crc"
	case errors.Is(err, ErrWrongSlave):
		return "wrong_slave"
	case errors.Is(err, ErrShortReply):
		return "short"
	case errors.Is(err, ErrBadReply):
		return "malformed"
	case errors.Is(err, ErrException):
		return "exception"
	case errors.Is(err, ErrNoLink):
		return "no_link"
	case errors.Is(err, ErrPortBusy):
		return "port_busy"
	}
	return "io"
}
