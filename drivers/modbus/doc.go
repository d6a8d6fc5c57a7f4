// Package modbus carries Modbus requests to meters: RTU over a serial port
// (github.com/tarm/serial), RTU frames over a TCP connection, and Modbus TCP.
//
// Framing and PDU encoding come from github.com/goburrow/modbus; the
// transports are ours, because goburrow's RTU transport takes no lock, never
// discards stale input and misreads split exception replies (see
// shared/NOTES.md). Every transaction here:
//
//   - holds the transport's lock from encoding to the last byte of the reply,
//     so one Transport may be shared, though the gateway gives each bus to one
//     goroutine anyway;
//   - discards stale input before it sends;
//   - reads the reply by its length (function code, byte count), never by a
//     fixed sleep;
//   - finishes within one overall deadline (Config.Timeout);
//   - after any error keeps the line quiet until it has been silent for
//     Config.Quiet, so a late reply is drained and never taken for the answer
//     to the next request;
//   - sends a request that got no reply at all once more at once (see
//     Transport.do for why: libmodbus-based slaves);
//   - leaves the line silent for 3.5 characters (Config.SilentInterval)
//     between the end of one transaction and the next request;
//   - returns a typed error: ErrTimeout, ErrCRC, ErrWrongSlave, ErrShortReply,
//     ErrBadReply, or an *ExceptionError (errors.Is(err, ErrException)).
//
// A serial port is held from Open to Close: a UUCP lock file in
// Config.LockDir (LCK..ttyUSB0 holding the PID) and the terminal's
// exclusive mode (TIOCEXCL). Open on a port another program holds fails at
// once with a *BusyError naming that program.
//
// RTU has no transaction id: the only guard against a late reply being taken
// for the next answer is a timeout longer than the meter's worst response,
// plus the flush and the quiet time. Modbus TCP has one, and replies whose id
// does not match are discarded.
package modbus
