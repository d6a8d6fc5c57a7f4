// Command mallgrid-footprint measures what the real binary costs a gateway
// box at 2,000 meters and prints a table (make bench runs it; figures in
// docs/BENCHMARKS.md):
//
//   - steady state: `mallgrid run` polling 16 RS-485 buses of 125 KPM33B
//     tenant meters at 9600 baud — CPU (% of one core) and resident memory
//     over a window after a warm-up;
//   - start-up: the time from exec to the first READY=1 on $NOTIFY_SOCKET
//     (and to /healthz answering 200) with a fresh database and with a
//     1 GB one of a week's history, made once for each store schema and
//     cached; each run starts the gateway on a copy of it, so that the
//     cache stays as it was made.
//
// The simulated meters answer from this process on pseudo-terminals, with
// each reply delayed by its wire time, so the gateway's figures, read from
// /proc/<pid>, are its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/mallgrid", "the mallgrid binary to measure")
	flag.IntVar(&o.buses, "buses", 16, "RS-485 buses")
	flag.IntVar(&o.perBus, "per-bus", 125, "meters on each bus")
	flag.DurationVar(&o.warm, "warm", 60*time.Second, "warm-up before the steady window")
	flag.DurationVar(&o.window, "window", 120*time.Second, "steady window over which CPU is measured")
	flag.BoolVar(&o.steady, "steady", true, "measure the steady state (false: start-up alone)")
	flag.Int64Var(&o.bigDB, "db-bytes", 1<<30, "size of the start-up database (0: skip that row)")
	flag.StringVar(&o.cache, "cache", filepath.Join(os.TempDir(), "mallgrid-footprint"), "where the large database is made once and kept")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	rows, err := measure(ctx, o)
	host, _ := os.Hostname()
	fmt.Printf("mallgrid-footprint on %s: %s/%s, %d CPUs, %s, %d buses × %d meters, took %s\n\n", host,
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), o.buses, o.perBus, time.Since(start).Round(time.Second))
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue\tnotes")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.value, r.notes)
	}
	tw.Flush()
	if err != nil {
		// The rows measured before the failure are printed above.
		fmt.Fprintln(os.Stderr, "mallgrid-footprint:", err)
		return 1
	}
	return 0
}
