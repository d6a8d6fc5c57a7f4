package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/rs/zerolog"

	"mallgrid/drivers/meter"
	"mallgrid/drivers/modbus"
	"mallgrid/drivers/sim"
)

// SimMeter is one simulated meter of `mallgrid sim`.
type SimMeter struct {
	Model   *meter.Model
	Address int
	Options []sim.Option
}

// SimOptions say where `mallgrid sim` serves its meters.
type SimOptions struct {
	// Port is a serial device to serve RTU on (the slave end of a line);
	// Line carries its baud, parity and stop bits.
	Port string
	Line modbus.Config
	// Listen is "tcp:HOST:PORT" (Modbus TCP) or "rtu+tcp:HOST:PORT".
	Listen string
	Meters []SimMeter
	// WireBaud, if > 0, delays every reply by its wire time at that baud,
	// so timings on a pseudo-terminal are those of a real line.
	WireBaud int
	Log      zerolog.Logger
	// Ready, if set, is called with where the meters are served once they are.
	Ready func(where string)
}

// Simulate serves simulated meters until ctx is cancelled.
func Simulate(ctx context.Context, o SimOptions) error {
	bus, err := sim.NewBus()
	if err != nil {
		return err
	}
	for _, m := range o.Meters {
		if m.Address < 1 || m.Address > 247 {
			return fmt.Errorf("sim: address %d (want 1..247)", m.Address)
		}
		sm, err := sim.NewMeter(m.Model, uint8(m.Address), m.Options...)
		if err != nil {
			return err
		}
		if err := bus.Add(sm); err != nil {
			return err
		}
	}
	if o.WireBaud > 0 {
		bus.SetWireTiming(sim.WireTiming{Baud: o.WireBaud, Turnaround: simTurnaround})
	}
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
		scheme, addr, ok := strings.Cut(o.Listen, ":")
		if !ok || (scheme != "tcp" && scheme != "rtu+tcp") {
			return fmt.Errorf("sim: --listen %q (want tcp:HOST:PORT or rtu+tcp:HOST:PORT)", o.Listen)
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

func (o SimOptions) ready(where string) {
	o.Log.Info().Str("serving", where).Int("meters", len(o.Meters)).Msg("simulated meters ready")
	if o.Ready != nil {
		o.Ready(where)
	}
}
