package supervise

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// DefaultAllowance is how long a Loop may go without a beat before it is
// taken for hung. A bus loop beats at each Modbus transaction, each commit
// and at least once a second while it waits; its longest honest step is one
// transaction to a meter that does not answer: drivers/modbus sends it twice
// (Transport.do), each try waiting its timeout (the bus's or the meter's,
// at most 25 s by config validation) and then a quiet time, after which
// comes the pause (at most 5 s). With the longest timeouts that is about
// 55 s; in the worst case, a line that starts chattering the moment each
// try has timed out and never falls quiet, each quiet time lasts up to the
// timeout as well: about 105 s. A cycle's commit on a slow SD card takes
// seconds; a port that cannot be opened is retried at most a minute apart,
// with a beat at each try. Two minutes is twice the usual longest step and
// just over the worst case, so a slow line or a slow card is not taken for
// a hang, and a real hang is noticed within minutes rather than never. A
// bus set to 25 s timeouts is close to it: keep timeouts near what the
// meters need (hundreds of milliseconds).
const DefaultAllowance = 2 * time.Minute

// sendTimeout bounds each datagram to the service manager.
const sendTimeout = time.Second

// Options make a Manager without the environment (tests, or a caller that
// reads the settings itself).
type Options struct {
	// Socket is the notify socket: a path, or an abstract name starting
	// with "@". Empty: nothing is sent.
	Socket string
	// Watchdog is WatchdogSec: pings go out every third of it. Zero: no
	// pings.
	Watchdog time.Duration
	// Allowance is how long a Loop may go without a beat; zero means
	// DefaultAllowance.
	Allowance time.Duration
	// Now is the clock beats are measured on; nil means time.Now.
	Now func() time.Time
	// Log gets the stalls and the failed sends.
	Log zerolog.Logger
}

// Manager talks to the service manager. The zero value is not usable; a
// nil *Manager does nothing.
type Manager struct {
	socket    string
	watchdog  time.Duration
	allowance time.Duration
	now       func() time.Time
	log       zerolog.Logger

	mu      sync.Mutex
	loops   []*Loop
	stalled *Loop  // the loop last reported stalled; nil while all beat
	status  string // the last STATUS= text sent, to restore after a stall
	failed  bool   // a send failed: logged once, until one succeeds
}

// Loop is one loop the watchdog watches. A nil *Loop does nothing.
type Loop struct {
	m    *Manager
	name string
	last time.Time // guarded by m.mu
}

// FromEnv returns the Manager for $NOTIFY_SOCKET, with the watchdog of
// $WATCHDOG_USEC when $WATCHDOG_PID is unset or names this process. Where
// NOTIFY_SOCKET is unset it returns a Manager that sends nothing. A
// WATCHDOG_USEC that is not a positive number is logged and ignored.
func FromEnv(log zerolog.Logger) *Manager {
	opts := Options{Socket: os.Getenv("NOTIFY_SOCKET"), Log: log}
	if usec := os.Getenv("WATCHDOG_USEC"); usec != "" && opts.Socket != "" {
		n, err := strconv.ParseInt(usec, 10, 64)
		pid := os.Getenv("WATCHDOG_PID")
		switch {
		case err != nil || n <= 0:
			log.Warn().Str("WATCHDOG_USEC", usec).Msg("watchdog setting not understood: no watchdog pings")
		case pid != "" && pid != strconv.Itoa(os.Getpid()):
			// The watchdog is another process's (a wrapper's): pinging
			// for it would hide that one's hang.
		default:
			opts.Watchdog = time.Duration(n) * time.Microsecond
		}
	}
	return New(opts)
}

// New returns a Manager with the given options.
func New(opts Options) *Manager {
	m := &Manager{socket: opts.Socket, watchdog: opts.Watchdog, allowance: opts.Allowance, now: opts.Now, log: opts.Log}
	if m.allowance <= 0 {
		m.allowance = DefaultAllowance
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Watchdog returns the watchdog period (WatchdogSec); zero when there is
// none, or m is nil.
func (m *Manager) Watchdog() time.Duration {
	if m == nil || m.socket == "" {
		return 0
	}
	return m.watchdog
}

// Ready tells the service manager the gateway serves: "READY=1". Call it
// once the database is open and every bus loop has started, and again
// when a reload has finished.
func (m *Manager) Ready() { m.send("READY=1") }

// Reloading tells the service manager a new configuration is being taken
// up: "RELOADING=1" with the monotonic time, as systemd wants it. Ready
// ends the reload.
func (m *Manager) Reloading() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		m.send("RELOADING=1")
		return
	}
	m.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// Stopping tells the service manager the gateway is shutting down:
// "STOPPING=1".
func (m *Manager) Stopping() { m.send("STOPPING=1") }

// Status sets the one line `systemctl status` shows: "STATUS=text". A
// newline in text is sent as a space: it would end the field. While a loop
// is stalled the stall stays on the line; text is shown once it is over.
func (m *Manager) Status(text string) {
	if m == nil {
		return
	}
	text = strings.ReplaceAll(text, "\n", " ")
	m.mu.Lock()
	m.status = text
	stalled := m.stalled != nil
	m.mu.Unlock()
	if !stalled {
		m.send("STATUS=" + text)
	}
}

// Loop returns a new watched loop named name (e.g. "bus rs485-1"), counted
// as beating now. It is watched until Done.
func (m *Manager) Loop(name string) *Loop {
	if m == nil {
		return nil
	}
	l := &Loop{m: m, name: name}
	m.mu.Lock()
	l.last = m.now()
	m.loops = append(m.loops, l)
	m.mu.Unlock()
	return l
}

// Beat records that the loop made progress.
func (l *Loop) Beat() {
	if l == nil {
		return
	}
	now := l.m.now()
	l.m.mu.Lock()
	l.last = now
	l.m.mu.Unlock()
}

// Done ends the watch of a loop that ended on purpose (its context
// cancelled, its bus stopped). Beats after Done change nothing.
func (l *Loop) Done() {
	if l == nil {
		return
	}
	m := l.m
	m.mu.Lock()
	m.loops = slices.DeleteFunc(m.loops, func(x *Loop) bool { return x == l })
	m.mu.Unlock()
}

// Run sends WATCHDOG=1 every third of the watchdog period while every live
// Loop has beaten within the allowance, until ctx ends. Without a watchdog
// (or a socket) it returns at once.
func (m *Manager) Run(ctx context.Context) {
	period := m.Watchdog() / 3
	if period <= 0 {
		return
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		if stalled := m.check(); stalled == nil {
			m.send("WATCHDOG=1")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// check returns the first live loop that has not beaten within the
// allowance, or nil. A new stall is logged and put on the STATUS= line
// once; its end is logged and the last status put back.
func (m *Manager) check() *Loop {
	now := m.now()
	m.mu.Lock()
	var stalled *Loop
	var since time.Duration
	for _, l := range m.loops {
		if d := now.Sub(l.last); d > m.allowance {
			stalled, since = l, d
			break
		}
	}
	prev, status := m.stalled, m.status
	m.stalled = stalled
	m.mu.Unlock()
	switch {
	case stalled != nil && stalled != prev:
		m.log.Error().Str("loop", stalled.name).Dur("since", since).Dur("allowance", m.allowance).
			Msg("loop " + stalled.name + " made no progress for " + since.Truncate(time.Second).String() + ": watchdog pings stopped, systemd will restart the gateway")
		m.send(fmt.Sprintf("STATUS=stalled: %s made no progress for %s", stalled.name, since.Truncate(time.Second)))
	case stalled == nil && prev != nil:
		m.log.Warn().Str("loop", prev.name).Msg("loop " + prev.name + " is making progress again (or ended): watchdog pings resumed")
		if status != "" {
			m.send("STATUS=" + status)
		}
	}
	return stalled
}

// send writes one datagram to the notify socket. A failure is logged once
// (at warn level) until a send succeeds again: systemd going away must not
// fill the log, nor stop the gateway.
func (m *Manager) send(msg string) {
	if m == nil || m.socket == "" {
		return
	}
	err := m.write(msg)
	m.mu.Lock()
	report := err != nil && !m.failed
	m.failed = err != nil
	m.mu.Unlock()
	if report {
		m.log.Warn().Err(err).Str("socket", m.socket).Msg("cannot notify the service manager")
	}
}

func (m *Manager) write(msg string) error {
	// Go reads a leading "@" as the abstract namespace, as systemd does.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: m.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify %s: %w", m.socket, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("notify %s: %w", m.socket, err)
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify %s: %w", m.socket, err)
	}
	return nil
}
