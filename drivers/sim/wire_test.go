package sim

import (
	"testing"
	"time"
)

func TestWireTiming_ReplyDelay(t *testing.T) {
	tests := []struct {
		name     string
		w        WireTiming
		req, rep int
		want     time.Duration
	}{
		{"off", WireTiming{}, 8, 205, 0},
		{"9600 8E1, 100 registers", WireTiming{Baud: 9600, BitsPerChar: 11}, 8, 205, 244062500 * time.Nanosecond},
		{"default 11 bits", WireTiming{Baud: 9600}, 8, 205, 244062500 * time.Nanosecond},
		{"9600 8N1 with turnaround", WireTiming{Baud: 9600, BitsPerChar: 10, Turnaround: 20 * time.Millisecond}, 8, 8, 20*time.Millisecond + 16666666},
		{"19200 8E1", WireTiming{Baud: 19200}, 8, 9, 9739583},
	}
	for _, tt := range tests {
		if got := tt.w.ReplyDelay(tt.req, tt.rep); got != tt.want {
			t.Errorf("%s: got %v; want %v", tt.name, got, tt.want)
		}
	}
	if got := (WireTiming{Baud: 1200}).frameGap(); got != 32083334 {
		t.Errorf("frame gap at 1200 baud: got %v; want 3.5 characters (32.08ms)", got)
	}
	// 3.5 characters: the gap a real line has, so a master pausing no
	// longer than that between frames is served at the line's speed.
	for _, tt := range []struct {
		w    WireTiming
		want time.Duration
	}{
		{WireTiming{Baud: 9600}, 4010417},                  // 3.5 × 11 bits, rounded up
		{WireTiming{Baud: 9600, BitsPerChar: 10}, 3645834}, // 8N1
		{WireTiming{Baud: 19200}, 2005209},
		{WireTiming{Baud: 38400}, minFrameGap}, // fixed above 19200 baud
		{WireTiming{}, defaultFrameGap},        // unknown speed: 9600 8E1
	} {
		if got := tt.w.frameGap(); got != tt.want {
			t.Errorf("frame gap of %+v: got %v; want %v", tt.w, got, tt.want)
		}
	}
}

// TestServeRTU_WireTiming checks that a pty at "9600 baud" takes as long
// as the line would: a 52-register read, 8 + 109 bytes of 11 bits.
func TestServeRTU_WireTiming(t *testing.T) {
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(t, 1, clk))
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := startPTY(t, bus)
	read := func() time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := master.do(1, pdu16(3, 0x0030, 52)); err != nil {
			t.Fatalf("read: %v", err)
		}
		return time.Since(start)
	}
	if el := read(); el > 100*time.Millisecond {
		t.Errorf("without wire timing: read took %v; want well under the 134ms of a 9600-baud line", el)
	}
	w := WireTiming{Baud: 9600, BitsPerChar: 11, Turnaround: 10 * time.Millisecond}
	bus.SetWireTiming(w)
	want := w.ReplyDelay(8, 109)
	for range 2 {
		if el := read(); el < want || el > want+250*time.Millisecond {
			t.Errorf("with 9600 8E1: read took %v; want %v (at most 250ms more)", el, want)
		}
	}
}
