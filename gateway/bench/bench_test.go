package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
)

// The test binary doubles as the simulator child, as mallgrid-bench does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ChildArg {
		if err := ServeChild(os.Args[2:]); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestWireTime_KPM33B(t *testing.T) {
	// Per meter: 8+109 + 8+41 + 8+6 = 180 characters of 11 bits at 9600 baud.
	if got, want := WireTime(meter.KPM33B(), 9600, 11), 206250*time.Microsecond; got != want {
		t.Errorf("WireTime = %v; want %v", got, want)
	}
	if got, want := longestTransaction(meter.KPM33B(), 9600, 11), time.Duration(117*11)*time.Second/9600; got != want {
		t.Errorf("longest transaction = %v; want %v", got, want)
	}
}

// TestCPUPerReading_Smoke runs (c) briefly against a child simulator: the
// whole child protocol, scheduler and measurement, end to end.
func TestCPUPerReading_Smoke(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := cpuPerReading(ctx, Options{Exe: exe, Readings: 64, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !strings.HasSuffix(rows[0].Measured, "µs") || !strings.Contains(rows[1].Measured, "allocs") {
		t.Errorf("rows = %+v", rows)
	}
}
