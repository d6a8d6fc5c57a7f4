package sim

import (
	"testing"
	"time"
)

// FuzzFramers feeds arbitrary bytes through both framers and the meters, as
// a line or a socket would: nothing may panic, and a framer must never
// claim more bytes than it was given.
func FuzzFramers(f *testing.F) {
	f.Add(testFrame(1, pdu16(3, 0x0030, 100)...))
	f.Add(testFrame(1, pduWriteRegs(0x001E, 0xDD22)...))
	f.Add(testFrame(0, pdu16(5, 0x0001, 0)...))
	f.Add(testFrame(1, 0x10, 0, 0, 0, 0x7F, 0xFF))
	f.Add([]byte{0, 1, 0, 0, 0, 6, 1, 3, 0, 0x30, 0, 2})
	f.Add([]byte{0, 1, 0, 0, 0, 2, 1, 0x10})
	f.Add([]byte{1, 0x17, 0, 0, 0, 1, 0, 0, 0, 1, 0xFF})
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(f, 1, clk), newTestMeter(f, 2, clk))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		clk.Advance(time.Second)
		for _, fr := range []framer{rtuFramer{}, mbapFramer{}} {
			buf := in
			for len(buf) > 0 {
				req, n, st := fr.next(buf)
				if n > len(buf) || (st == complete || st == skip) && n <= 0 {
					t.Fatalf("%T.next(% X): n = %d, status %d", fr, buf, n, st)
				}
				if st != complete && st != skip {
					break
				}
				if st == complete {
					if r, ok := bus.dispatch(req.addr, req.pdu, true); ok {
						fr.encode(req, r)
					}
				}
				buf = buf[n:]
			}
		}
	})
}
