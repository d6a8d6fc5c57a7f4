package sim

import (
	"context"
	"io"
)

// ServeRTU serves the bus's meters over rw, a serial stream carrying Modbus
// RTU frames: a pty's master side (PTY.Master), a serial port or a net.Conn.
// It answers requests for addresses the bus has, stays silent for the
// others (as a line of RS-485 meters does), applies broadcast writes
// (address 0) without a reply, and resynchronises as a real slave does: on
// a CRC error, a function code whose frame length it cannot know, or a
// partial frame followed by silence, it drops the input and listens again
// after the line has been quiet for 3.5 characters (see WireTiming).
//
// It returns nil when ctx is cancelled, and the stream's error (io.EOF, a
// pty's EIO) when reading or writing fails. A stream that takes read
// deadlines (*os.File of a pty opened by NewPTY or os.OpenFile, net.Conn)
// stops within moments of the cancel. A serial port with a read timeout
// (tarm/serial), whose idle reads return 0, io.EOF after waiting, is read
// as a silent line and stops within one timeout. Any other stream (io.Pipe)
// is closed on cancel, since nothing else interrupts its Read.
func (b *Bus) ServeRTU(ctx context.Context, rw io.ReadWriter) error {
	return b.serveStream(ctx, rw, rtuFramer{})
}

// rtuFramer frames Modbus RTU: address, PDU, CRC-16 low byte first.
type rtuFramer struct{}

// RTU frames are at least address + function + CRC.
const rtuMinFrame = 4

func (rtuFramer) next(buf []byte) (request, int, frameStatus) {
	n, known := rtuRequestLen(buf)
	switch {
	case !known:
		return request{}, 0, resync
	case n == 0 || len(buf) < n:
		return request{}, 0, needMore
	case !checkCRC(buf[:n]):
		return request{}, 0, resync
	}
	return request{addr: buf[0], pdu: buf[1 : n-2], wireLen: n}, n, complete
}

// rtuRequestLen returns the length of the request frame at the start of buf
// (0 while buf is too short to tell) and whether its function code has a
// length a slave can know. RTU has no length field, so a slave knows where a
// request ends only from its function code (Modbus over Serial Line V1.02,
// and the Application Protocol's request layouts); codes not listed here
// cannot be framed and make the slave resynchronise.
func rtuRequestLen(buf []byte) (int, bool) {
	if len(buf) < 2 {
		return 0, true
	}
	byteCount := func(at, fixed int) int { // frames with a byte count at buf[at]
		if len(buf) <= at {
			return 0
		}
		return fixed + int(buf[at])
	}
	switch buf[1] {
	case 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08: // address, 2 words
		return 8, true
	case 0x07, 0x0B, 0x0C, 0x11: // no data
		return rtuMinFrame, true
	case 0x0F, 0x10: // address, quantity, byte count, data
		return byteCount(6, 9), true
	case 0x14, 0x15: // file records: byte count, data
		return byteCount(2, 5), true
	case 0x16: // mask write: address, AND mask, OR mask
		return 10, true
	case 0x17: // read/write: 4 words, byte count, data
		return byteCount(10, 13), true
	case 0x18: // FIFO pointer address
		return 6, true
	case 0x2B: // encapsulated interface (read device id): MEI type, code, object
		return 7, true
	}
	return 0, false
}

func (rtuFramer) encode(req request, r response) []byte {
	frame := appendCRC(append([]byte{req.addr}, r.pdu...))
	switch r.fault.kind {
	case BadCRC:
		frame[len(frame)-1] ^= 0xA5 // the high CRC byte no longer matches
	case Garbage:
		g := r.meter.faults.garbage(len(frame))
		if checkCRC(g) { // one chance in 65536: still never a valid frame
			g[len(g)-1] ^= 0xA5
		}
		frame = g
	case Truncated:
		frame = frame[:len(frame)/2]
	case WrongSlave:
		frame = appendCRC(append([]byte{otherAddress(req.addr)}, r.pdu...))
	}
	return frame
}

func (rtuFramer) wireLen(frame []byte) int { return len(frame) }

func (rtuFramer) silenceEndsFrame() bool { return true }

// otherAddress is the slave address a WrongSlave reply claims.
func otherAddress(a uint8) uint8 {
	if a >= 247 {
		return 1
	}
	return a + 1
}
