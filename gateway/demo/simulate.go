package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

// SimMeter is one simulated meter of `mallgrid sim`.
type SimMeter struct {
	Model   *meter.Model
	Address int
	// Options shape the meter as sim.NewMeter takes them: its load
	// (sim.WithProfile, sim.WithBasePower), seed and starting counter.
	Options []sim.Option
	// RelayOpen starts the meter cut off; by default its relay is closed.
	RelayOpen bool
	// Remote starts the meter in remote control mode, so a master can
	// switch its relay without writing the mode first. By default it is in
	// local mode, as a meter leaves the factory.
	Remote bool
	// Faults are the meter's random fault rates by kind, as
	// sim.Meter.SetFaultRates takes them; nil means none.
	Faults map[sim.FaultKind]float64
	// LateDelay is how late a Late reply comes; 0 means sim.DefaultLateDelay.
	LateDelay time.Duration
	// ExceptionCode is what an Exception fault replies with; 0 means
	// sim.ExceptionDeviceFailure.
	ExceptionCode byte
}

// Build returns the simulated meter m describes, opts applied after
// m.Options (a test passes its clock this way). It fails with sim.ErrAddress
// for an address outside 1..247, and as sim.NewMeter and
// sim.Meter.SetFaultRates fail.
func (m SimMeter) Build(opts ...sim.Option) (*sim.Meter, error) {
	if m.Address < 1 || m.Address > 247 {
		return nil, fmt.Errorf("%w: %d", sim.ErrAddress, m.Address)
	}
	sm, err := sim.NewMeter(m.Model, uint8(m.Address), append(slices.Clip(m.Options), opts...)...)
	if err != nil {
		return nil, err
	}
	if err := sm.SetFaultRates(m.Faults); err != nil {
		return nil, fmt.Errorf("meter at address %d: %w", m.Address, err)
	}
	if m.RelayOpen {
		sm.SetRelay(false)
	}
	sm.SetRemote(m.Remote)
	if m.LateDelay > 0 {
		sm.SetLateDelay(m.LateDelay)
	}
	if m.ExceptionCode != 0 {
		sm.SetExceptionCode(m.ExceptionCode)
	}
	return sm, nil
}

// SimOptions say where `mallgrid sim` serves its meters. LoadSimFile
// builds them from a sim file; the command builds them from its flags.
type SimOptions struct {
	// Port is a serial device to serve RTU on (the slave end of a line);
	// Line carries its baud, parity and stop bits.
	Port string
	Line modbus.Config
	// Listen is "tcp:HOST:PORT" (Modbus TCP) or "rtu+tcp:HOST:PORT";
	// "tcp://HOST:PORT", the form --port takes, is accepted too.
	Listen string
	Meters []SimMeter
	// Wire, if enabled, delays every reply by its wire time on a real
	// line, so that timings on a pseudo-terminal or a socket are those of
	// RS-485. A BitsPerChar of 0 is taken from Line when serving a port.
	Wire sim.WireTiming
	// MQTT, if set, serves Compere MQTT meters as clients of its broker
	// instead of a Modbus bus (Port, Listen, Meters and Wire unused).
	MQTT *SimMQTT
	Log  zerolog.Logger
	// Ready, if set, is called with where the meters are served once they are.
	Ready func(where string)
}

// SimWire returns the wire timing of a real line at baud, answered with a
// real meter's turnaround: what `mallgrid sim --wire-baud` emulates.
func SimWire(baud int) sim.WireTiming {
	return sim.WireTiming{Baud: baud, Turnaround: simTurnaround}
}

// bitsPerChar is the length of one character of line on the wire: a start
// bit, 8 data bits, the parity bit unless N, and the stop bits.
func bitsPerChar(line modbus.Config) int {
	bits := 1 + 8 + 1
	if line.Parity != 'N' {
		bits++ // 0 is the default, E
	}
	if line.StopBits == 2 {
		bits++
	}
	return bits
}

// Simulate serves simulated meters until ctx is cancelled, then returns
// nil. It fails before serving anything on a meter that cannot be built,
// two meters at one address, or a place to serve that cannot be opened.
func Simulate(ctx context.Context, o SimOptions) error {
	if o.MQTT != nil {
		return simulateMQTT(ctx, o)
	}
	bus, err := sim.NewBus()
	if err != nil {
		return err
	}
	for _, m := range o.Meters {
		sm, err := m.Build()
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		if err := bus.Add(sm); err != nil {
			return err
		}
		if len(m.Faults) > 0 {
			ev := o.Log.Info().Int("addr", m.Address).Str("model", m.Model.Name)
			for _, k := range sim.FaultKinds() {
				if r := m.Faults[k]; r > 0 {
					ev = ev.Float64(k.String(), r)
				}
			}
			ev.Msg("simulated meter with random faults")
		}
	}
	wire := o.Wire
	if wire.Enabled() && wire.BitsPerChar == 0 && o.Port != "" {
		wire.BitsPerChar = bitsPerChar(o.Line)
	}
	bus.SetWireTiming(wire)
	switch {
	case o.Port != "" && o.Listen != "":
		return errors.New("sim: give --port or --listen, not both")
	case o.Port != "":
		line := o.Line
		line.Kind, line.Address = modbus.RTU, o.Port
		port, err := modbus.OpenLine(line)
		if err != nil {
			return err
		}
		defer port.Close()
		o.ready("rtu " + o.Port)
		return bus.ServeRTU(ctx, port)
	case o.Listen != "":
		scheme, addr, err := splitListen(o.Listen)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		o.ready(scheme + "://" + ln.Addr().String())
		if scheme == "tcp" {
			return bus.ServeTCP(ctx, ln)
		}
		return bus.ServeRTUOverTCP(ctx, ln)
	}
	return errors.New("sim: give --port DEV or --listen tcp:ADDR")
}

// splitListen splits "tcp:HOST:PORT", "rtu+tcp:HOST:PORT" or the same with
// "://" into its scheme and address.
func splitListen(listen string) (scheme, addr string, err error) {
	scheme, addr, ok := strings.Cut(listen, ":")
	addr = strings.TrimPrefix(addr, "//")
	if !ok || (scheme != "tcp" && scheme != "rtu+tcp") || addr == "" {
		return "", "", fmt.Errorf("sim: listen %q (want tcp:HOST:PORT or rtu+tcp:HOST:PORT)", listen)
	}
	return scheme, addr, nil
}

func (o SimOptions) ready(where string) {
	n := len(o.Meters)
	if o.MQTT != nil {
		n = len(o.MQTT.Devices)
	}
	o.Log.Info().Str("serving", where).Int("meters", n).Msg("simulated meters ready")
	if o.Ready != nil {
		o.Ready(where)
	}
}

// Summary describes the meters for a person, by model in the order they
// first appear: "32 kpm33b meter(s) at address 1-32; 4 kpm33b-billing
// meter(s) at address 33-36".
func (o SimOptions) Summary() string {
	if o.MQTT != nil {
		return o.MQTT.summary()
	}
	var (
		models []string
		addrs  = make(map[string][]int)
	)
	for _, m := range o.Meters {
		name := "?"
		if m.Model != nil {
			name = m.Model.Name
		}
		if _, ok := addrs[name]; !ok {
			models = append(models, name)
		}
		addrs[name] = append(addrs[name], m.Address)
	}
	if len(models) == 0 {
		return "no meters"
	}
	parts := make([]string, len(models))
	for i, name := range models {
		parts[i] = fmt.Sprintf("%d %s meter(s) at address %s", len(addrs[name]), name, addressList(addrs[name]))
	}
	return strings.Join(parts, "; ")
}

// addressList writes addresses sorted, runs of three or more as a range:
// "1-32,40,41".
func addressList(addrs []int) string {
	a := slices.Sorted(slices.Values(addrs))
	var b strings.Builder
	for i := 0; i < len(a); {
		j := i
		for j+1 < len(a) && a[j+1] == a[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(a[i]))
		switch {
		case j-i >= 2:
			b.WriteString("-" + strconv.Itoa(a[j]))
		case j > i:
			j = i // a pair is written as two
		}
		i = j + 1
	}
	return b.String()
}
