//go:build e2e

package sim_test

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
)

// mbpoll is an independent Modbus master (libmodbus underneath): if it reads
// the simulator right, the simulator speaks Modbus, not just our dialect.
func mbpoll(t *testing.T, path string, args ...string) string {
	t.Helper()
	return mbpollWrite(t, path, args)
}

// mbpollWrite runs mbpoll with args and, after the device (as mbpoll wants
// it), the values to write.
func mbpollWrite(t *testing.T, path string, args []string, writes ...string) string {
	t.Helper()
	bin, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatal("mbpoll not installed (apt-get install mbpoll): ", err)
	}
	full := append([]string{"-m", "rtu", "-b", "9600", "-P", "even", "-0", "-1", "-o", "1"}, args...)
	full = append(full, path)
	full = append(full, writes...)
	out, err := exec.Command(bin, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return string(out)
}

// values parses mbpoll's "[ref]: value" lines.
func values(t *testing.T, out string) map[int]float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(-?[0-9.]+)`)
	got := map[int]float64{}
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		ref, _ := strconv.Atoi(m[1])
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("mbpoll value %q: %v", m[2], err)
		}
		got[ref] = v
	}
	if len(got) == 0 {
		t.Fatalf("no values in mbpoll output:\n%s", out)
	}
	return got
}

func TestE2E_MbpollReadsAndSwitchesTheSimulator(t *testing.T) {
	m, err := sim.NewMeter(meter.KPM33B(), 1, sim.WithProfile(sim.Constant(0)), sim.WithImportWh(31_057))
	if err != nil {
		t.Fatal(err)
	}
	bus, err := sim.NewBus(m)
	if err != nil {
		t.Fatal(err)
	}
	pty, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRTU: %v", err)
		}
	}()

	// Import energy, float32 high word first at 0x0082 (130).
	got := values(t, mbpoll(t, pty.Path, "-a", "1", "-t", "4:float", "-B", "-r", "130", "-c", "1"))
	if got[130] != 31.057 {
		t.Errorf("mbpoll import energy = %v kWh; want 31.057", got[130])
	}
	// Three phase voltages at 0x0030 (48), 0x0032, 0x0034.
	got = values(t, mbpoll(t, pty.Path, "-a", "1", "-t", "4:float", "-B", "-r", "48", "-c", "3"))
	snap := m.Snapshot()
	for i, ref := range []int{48, 50, 52} {
		if v := got[ref]; v < 220 || v > 240 || v-snap.Voltage[i] > 0.01 || snap.Voltage[i]-v > 0.01 {
			t.Errorf("mbpoll voltage [%d] = %v; simulator holds %v", ref, v, snap.Voltage[i])
		}
	}
	// The relay coil reads closed.
	if got = values(t, mbpoll(t, pty.Path, "-a", "1", "-t", "0", "-r", "1", "-c", "1")); got[1] != 1 {
		t.Errorf("mbpoll relay coil = %v; want 1 (closed)", got[1])
	}
	// Remote-control mode (0xDD22 at 0x001E), then open the relay.
	mbpollWrite(t, pty.Path, []string{"-a", "1", "-t", "4:hex", "-r", "30"}, "0xDD22")
	mbpollWrite(t, pty.Path, []string{"-a", "1", "-t", "0", "-r", "1"}, "0")
	if snap := m.Snapshot(); snap.RelayClosed || !snap.Remote {
		t.Errorf("after mbpoll's writes: relay closed %v, remote %v; want open, remote", snap.RelayClosed, snap.Remote)
	}
	if got = values(t, mbpoll(t, pty.Path, "-a", "1", "-t", "0", "-r", "1", "-c", "1")); got[1] != 0 {
		t.Errorf("mbpoll relay coil after opening = %v; want 0", got[1])
	}
	// An absent address times out in mbpoll too.
	if out, err := exec.Command("mbpoll", "-m", "rtu", "-b", "9600", "-P", "even", "-0", "-1", "-o", "0.3",
		"-a", "9", "-r", "130", "-c", "1", pty.Path).CombinedOutput(); err == nil && !strings.Contains(string(out), "timed out") {
		t.Errorf("mbpoll of an absent address succeeded:\n%s", out)
	}
}

// mbpoll reads an SDM630's input registers 0x0000..0x017F in chunks, as a
// third-party master reads a real meter's whole map.
func TestE2E_MbpollReadsTheSDM630Map(t *testing.T) {
	m, err := sim.NewMeter(meter.SDM630(), 1, sim.WithProfile(sim.Constant(6000)), sim.WithImportWh(54_321))
	if err != nil {
		t.Fatal(err)
	}
	bus, err := sim.NewBus(m)
	if err != nil {
		t.Fatal(err)
	}
	pty, err := sim.NewPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeRTU(ctx, pty.Master) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRTU: %v", err)
		}
	}()
	all := map[int]float64{}
	const chunk = 40 // floats: 80 registers a read
	for ref := 0; ref < 0x180; ref += 2 * chunk {
		n := min(chunk, (0x180-ref)/2)
		for k, v := range values(t, mbpoll(t, pty.Path, "-a", "1", "-t", "3:float", "-B",
			"-r", strconv.Itoa(ref), "-c", strconv.Itoa(n))) {
			all[k] = v
		}
	}
	if len(all) != 0x180/2 {
		t.Errorf("mbpoll read %d floats of the map; want %d", len(all), 0x180/2)
	}
	if all[0x48] != 54.321 || all[0x156] != 54.321 {
		t.Errorf("import kWh = %v, total kWh = %v; want 54.321 both", all[0x48], all[0x156])
	}
	if v := all[0xC8]; v < 380 || v > 420 {
		t.Errorf("line voltage L1-L2 = %v; want about 400 V", v)
	}
}
