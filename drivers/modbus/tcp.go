package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// tcpTransporter is goburrow's Transporter for Modbus TCP. Replies carry the
// request's transaction id; a reply with another id is a late answer to an
// earlier request and is skipped rather than taken.
type tcpTransporter struct {
	s        stream
	deadline time.Time
	buf      [260 + 7]byte
}

const mbapHeader = 7

func (t *tcpTransporter) Send(req []byte) ([]byte, error) {
	if len(req) < mbapHeader+1 {
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
	for {
		frame, err := t.readFrame()
		if err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint16(frame) != binary.BigEndian.Uint16(req) {
			continue // stale reply to an earlier, timed-out request
		}
		if frame[6] != req[6] {
			return nil, fmt.Errorf("%w: asked unit %d, reply from %d", ErrWrongSlave, req[6], frame[6])
		}
		if fc := frame[7]; fc != req[7] && fc != req[7]|0x80 {
			return nil, fmt.Errorf("%w: function %d in reply to %d", ErrBadReply, fc, req[7])
		}
		out := make([]byte, len(frame))
		copy(out, frame)
		return out, nil
	}
}

func (t *tcpTransporter) readFrame() ([]byte, error) {
	if err := t.readFull(t.buf[:mbapHeader]); err != nil {
		return nil, err
	}
	length := int(binary.BigEndian.Uint16(t.buf[4:6]))
	if binary.BigEndian.Uint16(t.buf[2:4]) != 0 || length < 2 || length > len(t.buf)-mbapHeader+1 {
		return nil, fmt.Errorf("%w: MBAP header % x", ErrBadReply, t.buf[:mbapHeader])
	}
	end := mbapHeader + length - 1
	if err := t.readFull(t.buf[mbapHeader:end]); err != nil {
		return nil, err
	}
	return t.buf[:end], nil
}

func (t *tcpTransporter) readFull(p []byte) error {
	n := 0
	for n < len(p) {
		k, err := t.s.readSome(p[n:], t.deadline)
		if err != nil {
			return &ioError{err}
		}
		if k == 0 {
			if n == 0 {
				return ErrTimeout
			}
			return fmt.Errorf("%w: %d of %d bytes", ErrShortReply, n, len(p))
		}
		n += k
	}
	return nil
}
