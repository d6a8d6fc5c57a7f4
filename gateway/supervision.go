package gateway

import (
	"context"
	"fmt"
	"time"

	"mallgrid/gateway/live"
	"mallgrid/gateway/poll"
	"mallgrid/gateway/supervise"
	"mallgrid/gateway/web"
)

// busWatch is how a bus loop shows the service manager it is not hung.
type busWatch struct {
	// loop beats at each transaction, commit, wait and retry of the bus;
	// nil without a supervisor.
	loop *supervise.Loop
	// hold, if set, is called before each of the bus's cycles is
	// committed (Options.holdCycle): the tests' way to make a commit that
	// does not return.
	hold func(poll.Cycle)
}

// statusEvery is how often the status line `systemctl status` shows is
// renewed.
const statusEvery = 30 * time.Second

// runStatus puts a summary of lv on the service manager's status line
// every statusEvery until ctx ends.
func runStatus(ctx context.Context, sup *supervise.Manager, lv *live.Picture) {
	if sup == nil {
		return
	}
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sup.Status(statusLine(lv.Status()))
		}
	}
}

// statusLine is the one line of the gateway's state for `systemctl
// status`: "polling 3 buses, 29 meters: 27 online, 2 offline; last cycle
// 14:03:05" (site time).
func statusLine(v web.StatusView) string {
	s := fmt.Sprintf("polling %s, %s", plural(len(v.Buses), "bus", "buses"), plural(v.Counts.Meters, "meter", "meters"))
	var last time.Time
	for _, b := range v.Buses {
		if b.LastCycle.After(last) {
			last = b.LastCycle
		}
	}
	if last.IsZero() {
		return s + ": no cycle yet"
	}
	return fmt.Sprintf("%s: %d online, %d offline; last cycle %s", s, v.Counts.Online, v.Counts.Offline, last.Format("15:04:05"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
