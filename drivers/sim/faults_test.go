package sim

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestServeRTU_Faults(t *testing.T) {
	clk := newFakeClock(t0) // frozen: every clean reply is the same bytes
	m := newTestMeter(t, 1, clk)
	m.SetLateDelay(300 * time.Millisecond)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	master := startPTY(t, bus)
	req := testFrame(1, pdu16(3, 0x0080, 20)...) // billing block
	const quiet = 120 * time.Millisecond
	good, err := master.raw(req, quiet)
	if err != nil || len(good) != 45 || !testFrameOK(good) {
		t.Fatalf("clean reply: got % X, %v; want a valid 45-byte frame", good, err)
	}
	tests := []struct {
		kind  FaultKind
		check func(t *testing.T, got []byte)
	}{
		{NoReply, func(t *testing.T, got []byte) {
			if len(got) != 0 {
				t.Errorf("got % X; want nothing", got)
			}
		}},
		{BadCRC, func(t *testing.T, got []byte) {
			if len(got) != len(good) || !bytes.Equal(got[:len(got)-2], good[:len(good)-2]) || testFrameOK(got) {
				t.Errorf("got % X; want the clean frame with a wrong CRC", got)
			}
		}},
		{Late, func(t *testing.T, got []byte) {
			if len(got) != 0 {
				t.Fatalf("got % X within %v; want nothing yet", got, quiet)
			}
			late := readQuiet(master.c, 400*time.Millisecond)
			if !bytes.Equal(late, good) {
				t.Errorf("late reply: got % X; want the clean frame", late)
			}
		}},
		{Exception, func(t *testing.T, got []byte) {
			if want := testFrame(1, 0x83, 0x04); !bytes.Equal(got, want) {
				t.Errorf("got % X; want % X", got, want)
			}
		}},
		{Garbage, func(t *testing.T, got []byte) {
			if len(got) != len(good) || bytes.Equal(got, good) || testFrameOK(got) {
				t.Errorf("got % X; want %d bytes that are no frame", got, len(good))
			}
		}},
		{Truncated, func(t *testing.T, got []byte) {
			if !bytes.Equal(got, good[:len(good)/2]) {
				t.Errorf("got % X; want the first half of the clean frame", got)
			}
		}},
		{WrongSlave, func(t *testing.T, got []byte) {
			if want := testFrame(2, good[1:len(good)-2]...); !bytes.Equal(got, want) {
				t.Errorf("got % X; want % X", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			if err := m.InjectNext(tt.kind, 1); err != nil {
				t.Fatalf("InjectNext: %v", err)
			}
			start := time.Now()
			got, err := master.raw(req, quiet)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			tt.check(t, got)
			if tt.kind == Late {
				if el := time.Since(start); el < 300*time.Millisecond {
					t.Errorf("late reply after %v; want at least 300ms", el)
				}
			}
			// The fault was for one request only.
			if again, err := master.raw(req, quiet); err != nil || !bytes.Equal(again, good) {
				t.Errorf("next request: got % X, %v; want the clean frame", again, err)
			}
		})
	}
	st := m.Stats()
	if want := uint64(1 + 2*len(tests)); st.Requests != want {
		t.Errorf("requests: got %d; want %d", st.Requests, want)
	}
	for _, k := range FaultKinds() {
		if st.Faults[k] != 1 {
			t.Errorf("faults %v: got %d; want 1", k, st.Faults[k])
		}
	}
}

func TestMeter_ExceptionCode(t *testing.T) {
	m := newTestMeter(t, 1, newFakeClock(t0))
	m.SetExceptionCode(0x06) // slave device busy
	if err := m.InjectNext(Exception, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := m.respond(pdu16(5, 0x0001, 0x0000))
		want := []byte{0x85, 0x06}
		if i == 2 {
			want = pdu16(5, 0x0001, 0x0000)
		}
		if !bytes.Equal(r.pdu, want) {
			t.Errorf("request %d: got % X; want % X", i, r.pdu, want)
		}
	}
}

func TestMeter_FaultRatesReproducible(t *testing.T) {
	rates := map[FaultKind]float64{NoReply: 0.1, BadCRC: 0.05, Garbage: 0.05, WrongSlave: 0.02}
	run := func(seed int64) ([]FaultKind, Stats) {
		m := newTestMeter(t, 1, newFakeClock(t0), WithSeed(seed))
		if err := m.SetFaultRates(rates); err != nil {
			t.Fatalf("SetFaultRates: %v", err)
		}
		var kinds []FaultKind
		for range 2000 {
			kinds = append(kinds, m.respond(pdu16(3, 0x0001, 1)).fault.kind)
		}
		return kinds, m.Stats()
	}
	a, sa := run(7)
	b, _ := run(7)
	c, _ := run(8)
	if !slices.Equal(a, b) {
		t.Errorf("same seed: fault sequences differ; want equal")
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8: same fault sequence; want different")
	}
	if sa.Requests != 2000 {
		t.Errorf("requests: got %d; want 2000", sa.Requests)
	}
	for k, r := range rates {
		got, want := float64(sa.Faults[k]), r*2000
		if got < want*0.6 || got > want*1.4 {
			t.Errorf("%v: got %v faults in 2000; want about %v", k, got, want)
		}
	}
	if sa.Faults[Late] != 0 || sa.Faults[Exception] != 0 {
		t.Errorf("kinds without a rate: got %v; want none", sa.Faults)
	}
}

func TestMeter_FaultSettingErrors(t *testing.T) {
	m := newTestMeter(t, 1, newFakeClock(t0))
	tests := []struct {
		name string
		err  error
	}{
		{"inject unknown kind", m.InjectNext(FaultKind(0), 1)},
		{"inject zero times", m.InjectNext(NoReply, 0)},
		{"negative rate", m.SetFaultRates(map[FaultKind]float64{NoReply: -0.1})},
		{"rates above 1", m.SetFaultRates(map[FaultKind]float64{NoReply: 0.6, Late: 0.6})},
		{"unknown kind rate", m.SetFaultRates(map[FaultKind]float64{FaultKind(99): 0.1})},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, ErrFault) {
			t.Errorf("%s: got %v; want ErrFault", tt.name, tt.err)
		}
	}
	if err := m.SetFaultRates(map[FaultKind]float64{NoReply: 1}); err != nil {
		t.Fatalf("SetFaultRates: %v", err)
	}
	m.ClearFaults()
	if k := m.respond(pdu16(3, 1, 1)).fault.kind; k != 0 {
		t.Errorf("after ClearFaults: got fault %v; want none", k)
	}
}
