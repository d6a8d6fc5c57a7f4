package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/demo"
	"mallgrid/gateway/tech"
)

// simLineFlags are the flags that describe the bus and its meters on the
// command line; a sim file describes all of it, so --file excludes them.
func simLineFlags() []string {
	return []string{"port", "baud", "parity", "stop-bits", "listen", "model", "addr", "wire-baud"}
}

func newSimCmd() *cobra.Command {
	var (
		pf       portFlags
		file     string
		listen   string
		model    string
		addrs    []int
		wireBaud int
		mq       mqttSimFlags
	)
	cmd := &cobra.Command{
		Use:   "sim --file FILE | --port DEV|--listen tcp:ADDR --model M --addr A[,A...] | --mqtt URL --model M --id ID[,ID...]",
		Short: "Serve simulated meters on a serial port, a TCP address or an MQTT broker",
		Long: "Serve simulated meters on a serial port, a TCP address or an MQTT broker.\n\n" +
			"--file serves the bus a sim file describes: many meters of several models, each with its\n" +
			"own load, counter, relay and fault rates (see configs/sim.example.yaml). Without it the\n" +
			"flags describe one bus of identical meters.\n\n" +
			"--mqtt serves Compere MQTT meters (kpm31, kpm33b, kpm37, kpm312) as clients of the broker at\n" +
			"URL (tcp:// or ssl://): each connects with --username/--password under its own id, publishes\n" +
			"MQTT_RT_DATA and MQTT_ENY_NOW, and answers relay, clock and upload-interval commands. A kpm312\n" +
			"id is its first circuit's; the device is four meters. The --*-rate flags make them behave as\n" +
			"real meters do at times (redeliveries, zero frames, split packets, a 2005 clock, relay 02).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("mqtt") {
				return runMQTTSim(cmd, &mq, model)
			}
			if given := mq.given(cmd); len(given) > 0 {
				return fmt.Errorf("%s: only with --mqtt", strings.Join(given, ", "))
			}
			var (
				o   demo.SimOptions
				err error
			)
			if file != "" {
				o, err = simFromFile(cmd, file, &pf)
			} else {
				o, err = simFromFlags(&pf, listen, model, addrs, wireBaud)
			}
			if err != nil {
				return err
			}
			o.Log = newLogger(config.Log{Format: "console"}, cmd.ErrOrStderr(), false, time.Now)
			o.Ready = func(where string) {
				fmt.Fprintf(cmd.OutOrStdout(), "mallgrid sim: %s on %s\n", o.Summary(), where)
			}
			return demo.Simulate(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "sim file describing the bus and its meters (excludes --"+strings.Join(simLineFlags(), ", --")+")")
	f.StringVar(&pf.Port.Port, "port", "", "serial device to answer on (the slave end of a line)")
	f.IntVar(&pf.Baud, "baud", 9600, "baud rate (serial)")
	f.StringVar(&pf.Parity, "parity", "E", "parity N, E or O (serial)")
	f.IntVar(&pf.StopBits, "stop-bits", 1, "stop bits 1 or 2 (serial)")
	f.StringVarP(&pf.config, "config", "c", "", "configuration whose custom models to use (optional)")
	f.StringVar(&listen, "listen", "", "tcp:HOST:PORT (Modbus TCP) or rtu+tcp:HOST:PORT")
	f.StringVar(&model, "model", "kpm33b", "meter model")
	f.IntSliceVar(&addrs, "addr", []int{1}, "meter address(es), e.g. 1,2,3")
	f.IntVar(&wireBaud, "wire-baud", 0, "delay replies by their wire time at this baud (0: off)")
	mq.register(cmd)
	return cmd
}

// simFromFile loads a sim file; its problems exit 2, as a configuration's do.
func simFromFile(cmd *cobra.Command, file string, pf *portFlags) (demo.SimOptions, error) {
	var given []string
	for _, name := range simLineFlags() {
		if cmd.Flags().Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) > 0 {
		return demo.SimOptions{}, fmt.Errorf("--file describes the bus and its meters; leave out %s, or leave out --file", strings.Join(given, ", "))
	}
	var cat *meter.Catalogue // nil: the built-ins and the file's config key
	if pf.config != "" {
		var err error
		if cat, err = pf.catalogue(); err != nil {
			return demo.SimOptions{}, err
		}
	}
	o, err := demo.LoadSimFile(file, cat)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			return demo.SimOptions{}, &exitError{code: exitConfig, err: err}
		}
		return demo.SimOptions{}, err
	}
	return o, nil
}

// simFromFlags builds a bus of identical meters from the command line.
func simFromFlags(pf *portFlags, listen, model string, addrs []int, wireBaud int) (demo.SimOptions, error) {
	cat, err := pf.catalogue()
	if err != nil {
		return demo.SimOptions{}, err
	}
	m, err := cat.Lookup(model)
	if err != nil {
		return demo.SimOptions{}, err
	}
	o := demo.SimOptions{Port: pf.Port.Port, Listen: listen}
	if wireBaud > 0 {
		o.Wire = demo.SimWire(wireBaud)
	}
	if pf.Port.Port != "" {
		if o.Line, err = tech.Line(pf.Port); err != nil {
			return demo.SimOptions{}, err
		}
	}
	for _, a := range addrs {
		if err := tech.CheckAddress(a); err != nil {
			return demo.SimOptions{}, err
		}
		o.Meters = append(o.Meters, demo.SimMeter{Model: m, Address: a})
	}
	return o, nil
}
