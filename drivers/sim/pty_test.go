package sim

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

func TestPTY_RawAndDeadlines(t *testing.T) {
	p, err := NewPTY()
	if err != nil {
		t.Fatalf("NewPTY: %v", err)
	}
	defer p.Close()
	f := openPath(t, p.Path)
	// Every byte value crosses both ways unchanged: no echo, no CR/LF
	// translation, no ^C or ^S handling.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, dir := range []struct {
		name     string
		from, to conn
	}{{"master to path", p.Master, f}, {"path to master", f, p.Master}} {
		if _, err := dir.from.Write(all); err != nil {
			t.Fatalf("%s: write: %v", dir.name, err)
		}
		got, err := readUntil(dir.to, len(all), time.Now().Add(time.Second))
		if err != nil || !bytes.Equal(got, all) {
			t.Errorf("%s: got %d bytes % X…, %v; want the 256 byte values in order", dir.name, len(got), got[:min(len(got), 16)], err)
		}
		if echo := readQuiet(dir.from, 20*time.Millisecond); len(echo) != 0 {
			t.Errorf("%s: echoed % X; want no echo", dir.name, echo)
		}
	}
	// The master takes read deadlines (so ServeRTU can stop).
	if err := p.Master.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline on Master: %v", err)
	}
	if _, err := p.Master.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle read on Master: got %v; want os.ErrDeadlineExceeded", err)
	}
}

// TestPTY_ReopenPath checks that a master closing and reopening the port
// (as the gateway does after an error) does not end the simulator.
func TestPTY_ReopenPath(t *testing.T) {
	clk := newFakeClock(t0)
	bus, err := NewBus(newTestMeter(t, 1, clk))
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := startPTY(t, bus)
	path := master.c.(*os.File).Name()
	for i := range 3 {
		if err := master.c.(*os.File).Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		master.c = openPath(t, path)
		if _, err := master.do(1, pdu16(3, 0x0001, 1)); err != nil {
			t.Errorf("after reopening %d times: %v", i+1, err)
		}
	}
}
