//go:build e2e

package sim

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2E_MbpollReadsRTUAndTCP reads the simulator with mbpoll, a Modbus
// master that shares no code with this package or the gateway (Debian
// package mbpoll, built on libmodbus). make test-e2e runs it; .ci/run
// installs mbpoll first.
func TestE2E_MbpollReadsRTUAndTCP(t *testing.T) {
	bin, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatal("mbpoll not installed (apt-get install mbpoll): ", err)
	}
	clk := newFakeClock(t0)
	m := newTestMeter(t, 3, clk, WithImportWh(98765))
	m.SetLoad(4600)
	bus, err := NewBus(m)
	if err != nil {
		t.Fatalf("NewBus: %v", err)
	}
	p, err := NewPTY()
	if err != nil {
		t.Fatalf("NewPTY: %v", err)
	}
	t.Cleanup(func() { p.Close() }) // registered before serve: runs after it stops
	serve(t, func(ctx context.Context) error { return bus.ServeRTU(ctx, p.Master) })
	tcpAddr := startTCP(t, bus.ServeTCP)
	host, port, _ := strings.Cut(tcpAddr, ":")

	rtu := []string{"-m", "rtu", "-a", "3", "-b", "9600", "-P", "even", "-0", "-1", "-o", "1"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"import kWh over RTU", append(rtu, "-t", "4:float", "-B", "-r", "130", "-c", "1", p.Path), "[130]: \t98.765"},
		{"total power over RTU", append(rtu, "-t", "4:float", "-B", "-r", "72", "-c", "1", p.Path), "[72]: \t4600"},
		{"address register over RTU", append(rtu, "-t", "4", "-r", "1", "-c", "2", p.Path), "[1]: \t3"},
		{"relay coil over RTU", append(rtu, "-t", "0", "-r", "1", "-c", "1", p.Path), "[1]: \t1"},
		{"import kWh over TCP", []string{"-m", "tcp", "-p", port, "-a", "3", "-0", "-1", "-o", "1",
			"-t", "4:float", "-B", "-r", "130", "-c", "1", host}, "[130]: \t98.765"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, tt.args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("mbpoll %s: %v\n%s\nwant a line with %q", strings.Join(tt.args, " "), err, out, tt.want)
			}
		})
	}
}
