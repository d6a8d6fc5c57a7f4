package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ServeTCP serves the bus's meters as Modbus TCP on connections accepted
// from ln, several at once: the MBAP unit id is the meter's address and the
// transaction id is echoed. As behind a TCP-to-RTU gateway, a unit id no
// meter has gets no reply and unit 0 is a broadcast. A frame whose protocol
// id is not 0 is ignored; a frame whose length field is impossible ends its
// connection, since a TCP stream cannot be resynchronised.
//
// ServeTCP closes ln and every connection when ctx is cancelled and then
// returns nil, once every goroutine it started has ended. It returns the
// listener's error if Accept fails otherwise. A connection's own error
// (the master hanging up, a reset) ends that connection only and is not
// reported: masters hang up all the time.
func (b *Bus) ServeTCP(ctx context.Context, ln net.Listener) error {
	return b.serveListener(ctx, ln, mbapFramer{})
}

// ServeRTUOverTCP serves the bus's meters as raw RTU frames (CRC and all) on
// each connection accepted from ln, as a serial-to-Ethernet converter in
// transparent mode does; each connection behaves as ServeRTU. Cancel and
// errors behave as for ServeTCP.
func (b *Bus) ServeRTUOverTCP(ctx context.Context, ln net.Listener) error {
	return b.serveListener(ctx, ln, rtuFramer{})
}

// acceptRetry is the pause after a temporary Accept error (too many open
// files), so the loop does not spin.
const acceptRetry = 50 * time.Millisecond

func (b *Bus) serveListener(ctx context.Context, ln net.Listener, f framer) error {
	ctx, cancel := context.WithCancel(ctx)
	var conns sync.WaitGroup
	defer conns.Wait()
	defer cancel() // before Wait: ends the connections when Accept fails
	// Closing the listener is what interrupts Accept; its error can only
	// say that it was closed already, after which Accept fails anyway.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !sleepUntil(ctx, time.Now().Add(acceptRetry)) {
					return nil
				}
				continue
			}
			return fmt.Errorf("sim: accept: %w", err)
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer conn.Close()
			// The error ends this connection only (see ServeTCP).
			b.serveStream(ctx, conn, f)
		}()
	}
}

// mbapFramer frames Modbus TCP: transaction id, protocol id (0), length
// (unit id + PDU), unit id, PDU.
type mbapFramer struct{}

const (
	mbapHeader = 7
	maxPDU     = 253
)

func (mbapFramer) next(buf []byte) (request, int, frameStatus) {
	if len(buf) < mbapHeader {
		return request{}, 0, needMore
	}
	length := int(binary.BigEndian.Uint16(buf[4:]))
	if length < 2 || length > 1+maxPDU {
		return request{}, 0, fatal
	}
	n := 6 + length
	if len(buf) < n {
		return request{}, 0, needMore
	}
	if binary.BigEndian.Uint16(buf[2:]) != 0 {
		return request{}, n, skip // not Modbus
	}
	pdu := buf[mbapHeader:n]
	return request{
		addr:    buf[6],
		pdu:     pdu,
		tid:     binary.BigEndian.Uint16(buf),
		wireLen: len(pdu) + 3,
	}, n, complete
}

func (mbapFramer) encode(req request, r response) []byte {
	adu := make([]byte, mbapHeader, mbapHeader+len(r.pdu))
	binary.BigEndian.PutUint16(adu, req.tid)
	binary.BigEndian.PutUint16(adu[4:], uint16(1+len(r.pdu)))
	adu[6] = req.addr
	adu = append(adu, r.pdu...)
	switch r.fault.kind {
	case BadCRC:
		binary.BigEndian.PutUint16(adu[2:], 0xFFFF) // no CRC in TCP: a bad protocol id instead
	case Garbage:
		adu = r.meter.faults.garbage(len(adu))
	case Truncated:
		adu = adu[:len(adu)/2]
	case WrongSlave:
		adu[6] = otherAddress(req.addr)
	}
	return adu
}

// wireLen: the RTU frame has the PDU plus address and CRC, the MBAP frame
// the PDU plus 7 header bytes.
func (mbapFramer) wireLen(frame []byte) int { return max(0, len(frame)-mbapHeader+3) }

func (mbapFramer) silenceEndsFrame() bool { return false }

// Compile-time checks that both framers fit, and that a net.Conn takes the
// read deadlines that let a connection stop on cancel.
var (
	_ framer        = rtuFramer{}
	_ framer        = mbapFramer{}
	_ readDeadliner = net.Conn(nil)
)
