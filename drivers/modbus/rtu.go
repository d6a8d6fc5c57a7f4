package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// rtuTransporter is goburrow's Transporter for RTU frames over a stream. Its
// fields are set by Transport under the transaction lock.
type rtuTransporter struct {
	s        stream
	deadline time.Time
	buf      [rtuMaxADU + 16]byte
}

const (
	rtuMaxADU   = 256
	rtuMinReply = 5 // address, function, exception code or byte count, CRC
)

// Send writes the request and reads one reply frame by its length.
func (t *rtuTransporter) Send(req []byte) ([]byte, error) {
	if len(req) < 4 {
		return nil, fmt.Errorf("%w: request of %d bytes", ErrBadReply, len(req))
	}
	if err := t.s.discardInput(t.deadline); err != nil {
		if errors.Is(err, ErrBadReply) {
			return nil, err
		}
		return nil, &ioError{err}
	}
	if err := t.s.write(req, t.deadline); err != nil {
		return nil, &ioError{err}
	}
	want := expectedRTUReplyLen(req)
	n := 0
	for {
		k, err := t.s.readSome(t.buf[n:], t.deadline)
		if err != nil {
			return nil, &ioError{err}
		}
		n += k
		if n >= 2 && t.buf[1] == req[1]|0x80 {
			want = rtuMinReply
		}
		if n >= want {
			break
		}
		if k == 0 { // deadline passed
			if n == 0 {
				return nil, ErrTimeout
			}
			return nil, fmt.Errorf("%w: %d of %d bytes", ErrShortReply, n, want)
		}
	}
	return checkRTUReply(req, t.buf[:n], want)
}

// checkRTUReply validates a complete reply frame against its request.
func checkRTUReply(req, reply []byte, want int) ([]byte, error) {
	if reply[0] != req[0] {
		return nil, fmt.Errorf("%w: asked %d, reply from %d", ErrWrongSlave, req[0], reply[0])
	}
	if len(reply) > want {
		return nil, fmt.Errorf("%w: %d bytes after the frame", ErrBadReply, len(reply)-want)
	}
	if crc16(reply[:want-2]) != binary.LittleEndian.Uint16(reply[want-2:want]) {
		return nil, ErrCRC
	}
	fc := reply[1]
	if fc != req[1] && fc != req[1]|0x80 {
		return nil, fmt.Errorf("%w: function %d in reply to %d", ErrBadReply, fc, req[1])
	}
	if fc == req[1] {
		switch req[1] {
		case 1, 2, 3, 4:
			if int(reply[2]) != want-5 {
				return nil, fmt.Errorf("%w: byte count %d, want %d", ErrBadReply, reply[2], want-5)
			}
		}
	}
	out := make([]byte, want)
	copy(out, reply)
	return out, nil
}

// expectedRTUReplyLen is the length of a normal reply to req.
func expectedRTUReplyLen(req []byte) int {
	quantity := 0
	if len(req) >= 6 {
		quantity = int(binary.BigEndian.Uint16(req[4:6]))
	}
	switch req[1] {
	case 1, 2:
		return 5 + (quantity+7)/8
	case 3, 4:
		return 5 + 2*quantity
	case 5, 6, 15, 16:
		return 8
	}
	// Unknown to us: any reply is at least an exception.
	return rtuMinReply
}

// crc16 is the Modbus CRC (poly 0xA001, init 0xFFFF), sent low byte first.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// ioError marks a failure of the port itself (unplugged adapter, closed
// connection): the Transport reopens the port before the next transaction.
type ioError struct{ err error }

func (e *ioError) Error() string { return "modbus: port: " + e.err.Error() }

// Unwrap gives both the cause and ErrNoLink, so callers can tell a failed
// link from a meter's fault with errors.Is.
func (e *ioError) Unwrap() []error { return []error{ErrNoLink, e.err} }
