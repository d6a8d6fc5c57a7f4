package sim

import (
	"errors"
	"testing"
	"time"
)

// A libmodbus slave takes the frame after a request to another address for
// that slave's reply. Behind a present slave that frame is the reply and
// nothing is lost; behind an absent one it is the master's next request.
func TestMeter_WithLibmodbusSlave(t *testing.T) {
	clk := newFakeClock(t0)
	lib := newTestMeter(t, 2, clk, WithLibmodbusSlave())
	plain := newTestMeter(t, 1, clk)
	bus, err := NewBus(plain, lib)
	if err != nil {
		t.Fatal(err)
	}
	master := startPTY(t, bus)
	master.timeout = 150 * time.Millisecond
	read := func(addr byte) error {
		t.Helper()
		_, err := master.do(addr, pdu16(3, 0x0001, 1))
		return err
	}
	steps := []struct {
		addr   byte
		answer bool
		why    string
	}{
		{2, true, "first request: nothing to ignore"},
		{2, true, "its own requests never make it wait"},
		{1, true, "another slave that answers"},
		{2, true, "the frame it ignored was slave 1's reply"},
		{9, false, "an absent address"},
		{2, false, "taken for address 9's reply"},
		{2, true, "the next one is answered"},
		{9, false, "absent again"},
		{9, false, "asked again: this frame is the one it ignores"},
		{2, true, "so a master that asks twice reaches it at once"},
		{0x00, false, "a broadcast read gets no reply from anyone"},
		{2, true, "a broadcast is not another slave's request"},
	}
	for i, s := range steps {
		err := read(s.addr)
		if s.answer && err != nil {
			t.Fatalf("step %d, request to %d (%s): %v; want an answer", i, s.addr, s.why, err)
		}
		if !s.answer && !errors.Is(err, errTimeout) {
			t.Fatalf("step %d, request to %d (%s): err = %v; want silence", i, s.addr, s.why, err)
		}
	}
	// A meter without the option answers right after an absent address.
	if err := read(9); !errors.Is(err, errTimeout) {
		t.Fatalf("absent address: %v", err)
	}
	if err := read(1); err != nil {
		t.Errorf("plain meter after an absent address: %v; want an answer", err)
	}
}
