package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
)

// ChildArg is the first argument that makes a bench binary serve simulated
// meters instead of measuring.
const ChildArg = "serve-sim"

// SimSpec describes the simulated bus of a child process.
type SimSpec struct {
	Model      string        // "sdm630", or "" for the KPM33B
	Meters     int           // meters at addresses 1..Meters
	Absent     int           // the last Absent of them are not there
	Baud       int           // wire-time emulation; 0 = as fast as the terminal
	Turnaround time.Duration // the meters' response time
}

func (s SimSpec) args() []string {
	return []string{ChildArg, "-model", s.Model,
		"-meters", fmt.Sprint(s.Meters), "-absent", fmt.Sprint(s.Absent),
		"-baud", fmt.Sprint(s.Baud), "-turnaround", s.Turnaround.String()}
}

// model is the spec's meter model.
func (s SimSpec) model() *meter.Model {
	if s.Model == "sdm630" {
		return meter.SDM630()
	}
	return meter.KPM33B()
}

// ServeChild is the child process: it serves the bus args describe on a new
// pseudo-terminal, writes "PTY <path>" on stdout, and stops when stdin
// closes (the parent exiting or finishing with it).
func ServeChild(args []string) error {
	fs := flag.NewFlagSet(ChildArg, flag.ContinueOnError)
	var spec SimSpec
	fs.StringVar(&spec.Model, "model", "", "")
	fs.IntVar(&spec.Meters, "meters", 32, "")
	fs.IntVar(&spec.Absent, "absent", 0, "")
	fs.IntVar(&spec.Baud, "baud", 0, "")
	fs.DurationVar(&spec.Turnaround, "turnaround", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bus, err := sim.NewBus()
	if err != nil {
		return err
	}
	for a := 1; a <= spec.Meters-spec.Absent; a++ {
		m, err := sim.NewMeter(spec.model(), uint8(a), sim.WithBasePower(5000), sim.WithImportWh(int64(a)*1_000_000))
		if err != nil {
			return err
		}
		if err := bus.Add(m); err != nil {
			return err
		}
	}
	if spec.Baud > 0 {
		bus.SetWireTiming(sim.WireTiming{Baud: spec.Baud, BitsPerChar: 11, Turnaround: spec.Turnaround})
	}
	pty, err := sim.NewPTY()
	if err != nil {
		return err
	}
	defer pty.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Printf("PTY %s\n", pty.Path)
	return bus.ServeRTU(ctx, pty.Master)
}

// child is a running simulated bus.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	path  string
}

// startChild runs exe (a binary whose main calls ServeChild for ChildArg)
// with spec and waits for its terminal's path.
func startChild(exe string, spec SimSpec) (*child, error) {
	cmd := exec.Command(exe, spec.args()...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		path, ok := strings.CutPrefix(strings.TrimSpace(line), "PTY ")
		if !ok {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("bench: simulator said %q", line)
		}
		return &child{cmd: cmd, stdin: stdin, path: path}, nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bench: simulator did not start")
	}
}

func (c *child) stop() error {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		return <-done
	}
}
