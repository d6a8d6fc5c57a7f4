package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// framer cuts requests out of a byte stream and frames replies: RTU or
// Modbus TCP (MBAP).
type framer interface {
	// next looks for a request at the start of buf.
	next(buf []byte) (req request, n int, st frameStatus)
	// encode frames r, the answer to req, damaged as r.fault says.
	encode(req request, r response) []byte
	// wireLen is the length a framed reply has as an RTU frame.
	wireLen(frame []byte) int
	// silenceEndsFrame reports whether a gap in the stream ends a frame,
	// as it does on a serial line (RTU) and does not in TCP.
	silenceEndsFrame() bool
}

// frameStatus is what next found.
type frameStatus uint8

const (
	needMore frameStatus = iota // the request is not complete yet
	complete                    // req is a whole, intact request of n bytes
	skip                        // n bytes hold a frame to ignore
	resync                      // the input makes no sense: drop it and wait for silence
	fatal                       // the stream cannot be followed any more
)

// request is one request cut from a stream. pdu points into the read
// buffer and is valid only until the next read.
type request struct {
	addr    uint8
	pdu     []byte
	tid     uint16 // MBAP transaction id, echoed
	wireLen int    // the request's length as an RTU frame
}

const (
	// idlePoll bounds every read, so a stream whose deadline could not be
	// moved on cancel is still noticed within this time.
	idlePoll = 250 * time.Millisecond
	// timeoutEOF is how long a Read must have waited before its 0, io.EOF
	// is taken for a serial driver's read timeout rather than the end of
	// the stream; tarm/serial's shortest timeout is 100 ms.
	timeoutEOF = 10 * time.Millisecond
	// writeTimeout bounds a reply's write: a master that stops reading
	// must not hold the simulator. A reply that times out is lost, as one
	// nobody listens to on a line.
	writeTimeout = time.Second
	readChunk    = 512
)

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// server serves one stream: a pty, a serial port or a TCP connection.
type server struct {
	bus *Bus
	rw  io.ReadWriter
	f   framer
	rd  readDeadliner  // nil: the stream takes no read deadlines
	wd  writeDeadliner // nil: the stream takes no write deadlines

	wmu sync.Mutex // one reply on the line at a time (Late replies write from their own goroutine)

	errMu sync.Mutex
	err   error // the first write error

	// selfWaking is set once a stream without read deadlines has shown
	// that its Read returns on its own (a serial port's read timeout):
	// then cancelling need not close it.
	selfWaking atomic.Bool
}

// serveStream reads requests from rw and answers them until ctx is
// cancelled (nil) or the stream fails (the error). Pending Late replies are
// abandoned and their goroutines have ended when it returns.
func (b *Bus) serveStream(ctx context.Context, rw io.ReadWriter, f framer) error {
	s := &server{bus: b, rw: rw, f: f}
	if d, ok := rw.(readDeadliner); ok && d.SetReadDeadline(time.Time{}) == nil {
		s.rd = d
	}
	if d, ok := rw.(writeDeadliner); ok && d.SetWriteDeadline(time.Time{}) == nil {
		s.wd = d
	}
	ctx, cancel := context.WithCancel(ctx)
	var late sync.WaitGroup
	defer late.Wait()
	defer cancel() // before Wait: stops the Late replies' timers
	stop := context.AfterFunc(ctx, s.wake)
	defer stop()

	var (
		buf     = make([]byte, 0, 2*readChunk)
		chunk   = make([]byte, readChunk)
		last    time.Time // when the last bytes arrived
		discard bool      // lost sync: drop input until the line is silent
	)
	for {
		if ctx.Err() != nil {
			return nil
		}
		if err := s.failed(); err != nil {
			return err
		}
		gap := b.wireTiming().frameGap()
		if s.rd != nil {
			wait := idlePoll
			if f.silenceEndsFrame() && (len(buf) > 0 || discard) {
				wait = gap
			}
			if err := s.rd.SetReadDeadline(time.Now().Add(wait)); err != nil {
				return fmt.Errorf("sim: set read deadline: %w", err)
			}
			if ctx.Err() != nil { // cancelled before the new deadline was set
				return nil
			}
		}
		began := time.Now()
		n, err := rw.Read(chunk)
		now := time.Now()
		if s.rd == nil && n == 0 && errors.Is(err, io.EOF) && now.Sub(began) >= timeoutEOF {
			// A serial port with a read timeout (tarm/serial: VTIME)
			// reports an idle line as 0, io.EOF after waiting; a stream
			// that really ended says so at once.
			s.selfWaking.Store(true)
			err = os.ErrDeadlineExceeded
		}
		if n > 0 {
			last = now
			if !discard {
				buf = append(buf, chunk[:n]...)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if f.silenceEndsFrame() && now.Sub(last) >= gap {
					// The line fell silent: whatever was partial is
					// not a frame, and a lost slave listens again.
					buf, discard = buf[:0], false
				}
				continue
			}
			if ferr := s.failed(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("sim: read: %w", err)
		}
		if discard {
			continue
		}
	frames:
		for len(buf) > 0 && ctx.Err() == nil {
			req, used, st := f.next(buf)
			switch st {
			case needMore:
				break frames
			case resync:
				// As a real slave does after a CRC error or a function
				// it cannot frame: forget the input and wait for the
				// 3.5-character silence. Without read deadlines the
				// silence cannot be seen; dropping the buffer must do.
				buf, discard = buf[:0], s.rd != nil || s.selfWaking.Load()
				break frames
			case fatal:
				return fmt.Errorf("sim: unframeable input % X", buf[:min(len(buf), 16)])
			case complete:
				s.answer(ctx, &late, req, last)
			}
			buf = append(buf[:0], buf[used:]...)
		}
	}
}

// answer dispatches req and writes the reply at the time the wire timing
// and the fault say; a Late reply is written by its own goroutine so the
// line keeps serving meanwhile, and may land amid later transactions as it
// would on a real line.
func (s *server) answer(ctx context.Context, late *sync.WaitGroup, req request, arrived time.Time) {
	r, ok := s.bus.dispatch(req.addr, req.pdu, s.f.silenceEndsFrame())
	if !ok {
		return
	}
	out := s.f.encode(req, r)
	at := arrived.Add(s.bus.wireTiming().ReplyDelay(req.wireLen, s.f.wireLen(out)))
	if r.fault.kind == Late {
		at = at.Add(r.fault.late)
		late.Add(1)
		go func() {
			defer late.Done()
			if sleepUntil(ctx, at) {
				s.write(out)
			}
		}()
		return
	}
	if sleepUntil(ctx, at) {
		s.write(out)
	}
}

// write sends one reply whole. A write that times out is a reply nobody
// took; any other failure ends the stream.
func (s *server) write(b []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wd != nil {
		if err := s.wd.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
			s.fail(fmt.Errorf("sim: set write deadline: %w", err))
			return
		}
	}
	if _, err := s.rw.Write(b); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		s.fail(fmt.Errorf("sim: write: %w", err))
	}
}

// fail records the stream's first write error and wakes the reader to
// return it.
func (s *server) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
	s.wake()
}

func (s *server) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// wake interrupts a Read in progress. With read deadlines a deadline in the
// past does it. A serial port whose reads time out returns by itself soon
// enough. Any other stream (an io.Pipe) can only be closed, which is
// therefore what cancelling does to it.
func (s *server) wake() {
	if s.rd != nil {
		// Should the stream refuse, the loop's bounded deadline
		// (idlePoll) still brings the reader back.
		s.rd.SetReadDeadline(time.Unix(1, 0))
		return
	}
	if s.selfWaking.Load() {
		return
	}
	if c, ok := s.rw.(io.Closer); ok {
		if err := c.Close(); err != nil {
			s.errMu.Lock()
			if s.err == nil {
				s.err = fmt.Errorf("sim: close on cancel: %w", err)
			}
			s.errMu.Unlock()
		}
	}
}

// sleepUntil waits until t or ctx's end and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
