package supervise

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// listen opens a unixgram socket as systemd's notify socket and returns its
// address and the datagrams it receives.
func listen(t *testing.T, name string) (string, <-chan string) {
	t.Helper()
	if name == "" {
		name = filepath.Join(t.TempDir(), "notify")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return name, got
}

func next(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case msg := <-got:
		return msg
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram within 5 s")
		return ""
	}
}

// within collects the datagrams that arrive during d.
func within(got <-chan string, d time.Duration) []string {
	var msgs []string
	end := time.After(d)
	for {
		select {
		case msg := <-got:
			msgs = append(msgs, msg)
		case <-end:
			return msgs
		}
	}
}

func count(msgs []string, want string) int {
	n := 0
	for _, m := range msgs {
		if m == want {
			n++
		}
	}
	return n
}

func TestManager_Notify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run("abstract="+strconv.FormatBool(abstract), func(t *testing.T) {
			name := ""
			if abstract {
				name = "@mallgrid-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			sock, got := listen(t, name)
			m := New(Options{Socket: sock})
			m.Ready()
			m.Status("polling 2 buses,\n8 meters")
			m.Reloading()
			m.Stopping()
			for _, want := range []string{"READY=1", "STATUS=polling 2 buses, 8 meters"} {
				if msg := next(t, got); msg != want {
					t.Errorf("got %q; want %q", msg, want)
				}
			}
			if msg := next(t, got); !strings.HasPrefix(msg, "RELOADING=1\nMONOTONIC_USEC=") {
				t.Errorf("got %q; want RELOADING=1 with MONOTONIC_USEC", msg)
			} else if usec, err := strconv.ParseInt(strings.TrimPrefix(msg, "RELOADING=1\nMONOTONIC_USEC="), 10, 64); err != nil || usec <= 0 {
				t.Errorf("MONOTONIC_USEC in %q: %d, %v; want a positive number", msg, usec, err)
			}
			if msg := next(t, got); msg != "STOPPING=1" {
				t.Errorf("got %q; want STOPPING=1", msg)
			}
		})
	}
}

// Without a socket, and on nil receivers, every method is a no-op: the
// gateway runs outside systemd and in tests without asking.
func TestManager_NilAndUnset(t *testing.T) {
	var nilM *Manager
	for _, m := range []*Manager{nilM, New(Options{Watchdog: time.Second})} {
		m.Ready()
		m.Reloading()
		m.Status("x")
		m.Stopping()
		l := m.Loop("bus a")
		l.Beat()
		l.Done()
		if d := m.Watchdog(); d != 0 {
			t.Errorf("Watchdog() = %s without a socket; want 0", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m.Run(ctx) // returns at once: nothing to ping
		if ctx.Err() != nil {
			t.Error("Run waited without a watchdog; want it to return at once")
		}
		cancel()
	}
}

func TestFromEnv(t *testing.T) {
	sock, _ := listen(t, "")
	self := strconv.Itoa(os.Getpid())
	cases := []struct {
		socket, usec, pid string
		want              time.Duration
	}{
		{sock, "30000000", "", 30 * time.Second},
		{sock, "30000000", self, 30 * time.Second},
		{sock, "30000000", "1", 0}, // another process's watchdog
		{sock, "thirty", "", 0},
		{sock, "-5", "", 0},
		{sock, "", "", 0},
		{"", "30000000", "", 0}, // nowhere to ping
	}
	for _, c := range cases {
		t.Setenv("NOTIFY_SOCKET", c.socket)
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		if got := FromEnv(zerolog.Nop()).Watchdog(); got != c.want {
			t.Errorf("NOTIFY_SOCKET=%q WATCHDOG_USEC=%q WATCHDOG_PID=%q: watchdog %s; want %s", c.socket, c.usec, c.pid, got, c.want)
		}
	}
}

// fakeClock is the clock beats are measured on.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log destination read while Run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The pings go out while every loop beats, stop while one has not beaten
// within the allowance (named once in the log and on the status line), and
// come back when it beats again or ends with Done.
func TestRun_PingsOnlyWhileLoopsBeat(t *testing.T) {
	sock, got := listen(t, "")
	clock := &fakeClock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	var logBuf syncBuffer
	const watchdog = 30 * time.Millisecond // a ping every 10 ms
	m := New(Options{Socket: sock, Watchdog: watchdog, Allowance: time.Minute, Now: clock.Now, Log: zerolog.New(&logBuf)})
	bus := m.Loop("bus rs485-1")
	enforce := m.Loop("enforcement")
	m.Status("polling 1 bus, 4 meters")
	if msg := next(t, got); msg != "STATUS=polling 1 bus, 4 meters" {
		t.Fatalf("got %q; want the status", msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-runDone
	})

	// Healthy: a ping about every 10 ms.
	if n := count(within(got, 200*time.Millisecond), "WATCHDOG=1"); n < 5 {
		t.Fatalf("%d pings in 200 ms while healthy; want ≥ 5 (one each 10 ms)", n)
	}

	// Both loops beat within the minute; then the bus stops beating.
	clock.Add(50 * time.Second)
	bus.Beat()
	enforce.Beat()
	clock.Add(40 * time.Second) // 40 s since the beats: still within the allowance
	if n := count(within(got, 100*time.Millisecond), "WATCHDOG=1"); n < 2 {
		t.Fatalf("%d pings 40 s after the last beats; want them to go on", n)
	}
	clock.Add(30 * time.Second) // 70 s: both stalled; the first named
	msgs := within(got, 50*time.Millisecond)
	// A ping already on its way when the clock moved may still arrive.
	msgs = append(msgs, within(got, 200*time.Millisecond)...)
	var stallStatus int
	for i, msg := range msgs {
		if strings.HasPrefix(msg, "STATUS=stalled: bus rs485-1 made no progress for 1m10s") {
			stallStatus++
			if n := count(msgs[i:], "WATCHDOG=1"); n > 0 {
				t.Errorf("%d pings after the stall was reported; want none", n)
			}
		}
	}
	if stallStatus != 1 {
		t.Errorf("stall status sent %d times in %q; want once", stallStatus, msgs)
	}
	m.Status("polling 1 bus, 3 meters online") // kept until the stall is over
	if msgs := within(got, 100*time.Millisecond); len(msgs) != 0 {
		t.Errorf("sent %q while stalled; want nothing (no pings, the stall's status kept)", msgs)
	}
	if n := strings.Count(logBuf.String(), `"level":"error"`); n != 1 {
		t.Errorf("%d error lines for the stall; want 1:\n%s", n, logBuf.String())
	}
	if !strings.Contains(logBuf.String(), `"loop":"bus rs485-1"`) {
		t.Errorf("the log does not name the stalled loop:\n%s", logBuf.String())
	}

	// The bus beats again: enforcement is still stalled, named now.
	bus.Beat()
	msgs = within(got, 100*time.Millisecond)
	if count(msgs, "WATCHDOG=1") != 0 || len(msgs) == 0 || !strings.HasPrefix(msgs[0], "STATUS=stalled: enforcement") {
		t.Errorf("after the bus beat with enforcement stalled: %q; want enforcement named, no pings", msgs)
	}

	// Enforcement ends on purpose: no longer watched, the pings resume and
	// the last status comes back.
	enforce.Done()
	msgs = within(got, 200*time.Millisecond)
	if len(msgs) == 0 || msgs[0] != "STATUS=polling 1 bus, 3 meters online" {
		t.Errorf("after Done: %q; want the last status first", msgs)
	}
	if n := count(msgs, "WATCHDOG=1"); n < 5 {
		t.Errorf("%d pings in 200 ms after the stalled loop ended; want ≥ 5", n)
	}
	enforce.Beat() // after Done: changes nothing
	clock.Add(10 * time.Minute)
	// As above: a ping already on its way when the clock moved may still
	// arrive, before the stall is named; none may come after it.
	msgs = within(got, 300*time.Millisecond)
	stalled := -1
	for i, msg := range msgs {
		if strings.HasPrefix(msg, "STATUS=stalled: bus rs485-1") {
			stalled = i
			break
		}
	}
	if stalled < 0 {
		t.Fatalf("the bus 10 min without a beat was not named: %q", msgs)
	}
	if n := count(msgs[stalled:], "WATCHDOG=1"); n != 0 {
		t.Errorf("%d pings after the bus 10 min without a beat was named; want none (%q)", n, msgs)
	}
}

// A notify socket that is gone costs a warning, once, and never blocks.
func TestManager_SocketGone(t *testing.T) {
	var logBuf syncBuffer
	m := New(Options{Socket: filepath.Join(t.TempDir(), "gone"), Log: zerolog.New(&logBuf)})
	m.Ready()
	m.Status("x")
	if n := strings.Count(logBuf.String(), "cannot notify"); n != 1 {
		t.Errorf("%d warnings for two failed sends; want 1:\n%s", n, logBuf.String())
	}
}
