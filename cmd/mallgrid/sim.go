package main

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"mallgrid/gateway"
	"mallgrid/gateway/tech"
)

func newSimCmd() *cobra.Command {
	var (
		pf       portFlags
		listen   string
		model    string
		addrs    []int
		wireBaud int
	)
	cmd := &cobra.Command{
		Use:   "sim --port DEV|--listen tcp:ADDR --model M --addr A[,A...]",
		Short: "Serve simulated meters on a serial port or a TCP address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := pf.catalogue()
			if err != nil {
				return err
			}
			m, err := cat.Lookup(model)
			if err != nil {
				return err
			}
			o := gateway.SimOptions{
				Port:     pf.Port.Port,
				Listen:   listen,
				WireBaud: wireBaud,
				Log:      zerolog.New(zerolog.ConsoleWriter{Out: cmd.ErrOrStderr(), NoColor: true, TimeFormat: "15:04:05"}).With().Timestamp().Logger(),
				Ready: func(where string) {
					fmt.Fprintf(cmd.OutOrStdout(), "mallgrid sim: %d %s meter(s) at address %s on %s\n", len(addrs), model, joinInts(addrs), where)
				},
			}
			if pf.Port.Port != "" {
				line, err := tech.Line(pf.Port)
				if err != nil {
					return err
				}
				o.Line = line
			}
			for _, a := range addrs {
				if err := tech.CheckAddress(a); err != nil {
					return err
				}
				o.Meters = append(o.Meters, gateway.SimMeter{Model: m, Address: a})
			}
			return gateway.Simulate(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pf.Port.Port, "port", "", "serial device to answer on (the slave end of a line)")
	f.IntVar(&pf.Baud, "baud", 9600, "baud rate (serial)")
	f.StringVar(&pf.Parity, "parity", "E", "parity N, E or O (serial)")
	f.IntVar(&pf.StopBits, "stop-bits", 1, "stop bits 1 or 2 (serial)")
	f.StringVarP(&pf.config, "config", "c", "", "configuration whose custom models to use (optional)")
	f.StringVar(&listen, "listen", "", "tcp:HOST:PORT (Modbus TCP) or rtu+tcp:HOST:PORT")
	f.StringVar(&model, "model", "kpm33b", "meter model")
	f.IntSliceVar(&addrs, "addr", []int{1}, "meter address(es), e.g. 1,2,3")
	f.IntVar(&wireBaud, "wire-baud", 0, "delay replies by their wire time at this baud (0: off)")
	return cmd
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
