// Command mallgrid-bench measures polling on simulated buses and prints a
// table: cycle time against wire time, absent meters, CPU and allocations
// per reading, relay latency under load; and the meter API at 2,000
// meters (make bench runs it).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/apibench"
	"mallgrid/gateway/bench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == bench.ChildArg {
		if err := bench.ServeChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "simulator:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

func run() int {
	cycles := flag.Int("cycles", 3, "cycles measured in (a) and (b)")
	readings := flag.Int("readings", 3200, "readings measured in (c)")
	commands := flag.Int("commands", 40, "relay commands in (d)")
	polling := flag.Bool("polling", true, "measure polling, (a)–(e); false: the API's (f) alone")
	flag.Parse()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	var results []bench.Result
	if *polling {
		results, err = bench.Run(ctx, bench.Options{
			Exe: exe, Cycles: *cycles, Readings: *readings, Commands: *commands,
			Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mallgrid-bench:", err)
			return 1
		}
	}
	api, err := apibench.Run(ctx, apibench.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mallgrid-bench: (f):", err)
		return 1
	}
	results = append(results, api...)
	host, _ := os.Hostname()
	fmt.Printf("mallgrid-bench on %s: %s/%s, %d CPUs, %s, took %s\n\n", host, runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.Version(), time.Since(start).Round(time.Second))
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tmeasured\ttarget\tok\tnotes")
	failed := 0
	for _, r := range results {
		ok := "yes"
		if !r.OK {
			ok, failed = "NO", failed+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Measured, r.Target, ok, r.Detail)
	}
	tw.Flush()
	if failed > 0 {
		return 1
	}
	return 0
}
