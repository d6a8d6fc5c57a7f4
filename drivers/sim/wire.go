package sim

import "time"

// WireTiming makes a bus answer with the timing of a real RS-485 line,
// which a pseudo-terminal or a socket does not have: they deliver a frame
// the moment it is written, whatever baud rate the master set.
//
// The model: on a real line the master's request takes its own wire time,
// the meter answers after a turnaround (processing plus the 3.5-character
// silence that ends the request), and the master holds the reply only when
// its last byte has crossed the line. A pty delivers the request instantly
// and the reply in one write, so the bus writes the reply
//
//	(request bytes + reply bytes) × BitsPerChar ÷ Baud + Turnaround
//
// after the request's last byte arrived. The master then sees the total
// transaction time of a real line (a 100-register read at 9600 baud 8E1,
// 8 + 205 bytes, takes 244 ms plus turnaround), though not the reply's
// bytes trickling in. Replies are sent one at a time, as on a half-duplex
// line. Over Modbus TCP the lengths are those of the RTU frames, as behind a
// TCP-to-RTU gateway.
type WireTiming struct {
	Baud        int           // bits per second; 0 or less turns the emulation off
	BitsPerChar int           // 11 for 8E1, 8O1 or 8N2; 10 for 8N1; 0 means 11
	Turnaround  time.Duration // the meter's response time; meters take 5–50 ms
}

// The silence that ends a frame is 3.5 characters, as on a real line
// (Modbus over Serial Line V1.02, 2.5.1.1): a master may send its next
// request that soon after a reply, so a longer gap here would make the
// simulator slower than the line it emulates. Above 19200 baud the
// specification fixes it at 1.75 ms (minFrameGap), which also bounds it
// from below for the fastest lines. Without wire timing the line's speed is
// unknown and the gap is that of the commonest line, 9600 baud 8E1
// (defaultFrameGap, 4.01 ms). A pty delivers a frame written at once in
// one piece, so scheduler jitter does not split a request at this gap.
const (
	minFrameGap     = 1750 * time.Microsecond
	defaultFrameGap = 4010417 * time.Nanosecond // 3.5 × 11 bits at 9600 baud, rounded up
)

// Enabled reports whether w delays replies.
func (w WireTiming) Enabled() bool { return w.Baud > 0 }

// CharTime is the time one character takes on the line, 0 when disabled.
func (w WireTiming) CharTime() time.Duration { return w.charsTime(1) }

// charsTime is the wire time of n characters, computed in one division so
// that rounding does not grow with n.
func (w WireTiming) charsTime(n int) time.Duration {
	if !w.Enabled() || n <= 0 {
		return 0
	}
	bits := w.BitsPerChar
	if bits <= 0 {
		bits = 11
	}
	return time.Duration(int64(n) * int64(bits) * int64(time.Second) / int64(w.Baud))
}

// ReplyDelay is how long after a request's last byte a reply of replyLen
// bytes is written for a request of requestLen bytes (RTU frame lengths,
// address and CRC included); 0 when disabled.
func (w WireTiming) ReplyDelay(requestLen, replyLen int) time.Duration {
	if !w.Enabled() {
		return 0
	}
	return w.charsTime(requestLen+replyLen) + w.Turnaround
}

// frameGap is the silence after which a partial frame is dropped and after
// which a slave that lost sync listens again.
func (w WireTiming) frameGap() time.Duration {
	switch {
	case !w.Enabled():
		return defaultFrameGap
	case w.Baud > 19200:
		return minFrameGap
	}
	bits := w.BitsPerChar
	if bits <= 0 {
		bits = 11
	}
	// 3.5 characters in one division, rounded up.
	num, den := int64(7*bits)*int64(time.Second), int64(2*w.Baud)
	return max(minFrameGap, time.Duration((num+den-1)/den))
}
