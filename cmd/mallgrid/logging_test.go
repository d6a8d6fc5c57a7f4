package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// Under the journal each JSON line starts with its syslog priority; the
// time is to the millisecond in the site's zone.
func TestLogger_JournalPriorities(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 4, 5, 123_000_000, time.UTC)
	clock := func() time.Time { return at.In(shanghai) }
	var out bytes.Buffer
	log := newLogger(config.Log{Level: "debug"}, &out, true, clock)
	log.Debug().Msg("d")
	log.Info().Msg("i")
	log.Warn().Str("meter", "M-1").Msg("w")
	log.Error().Msg("e")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"<7>", "<6>", "<4>", "<3>"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines; want %d: %q", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		prefix, rest, ok := strings.Cut(line, "{")
		if !ok || prefix != want[i] {
			t.Errorf("line %d = %q; want it to start with %s{", i, line, want[i])
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte("{"+rest), &v); err != nil {
			t.Errorf("line %d: %v", i, err)
		}
		if v["time"] != "2026-11-30T18:04:05.123+08:00" {
			t.Errorf("line %d time = %v; want 2026-11-30T18:04:05.123+08:00", i, v["time"])
		}
	}

	// Outside the journal: plain JSON lines, no prefix.
	out.Reset()
	logTo(&out, config.Log{}, false, clock).Warn().Msg("w")
	if !strings.HasPrefix(out.String(), "{") {
		t.Errorf("outside the journal: %q; want a bare JSON line", out.String())
	}
	// Debug is below the default level.
	out.Reset()
	logTo(&out, config.Log{}, false, clock).Debug().Msg("d")
	if out.Len() != 0 {
		t.Errorf("debug at the default level: %q; want nothing", out.String())
	}
}

// The console form under the journal: priority, no time (journald stamps
// lines); outside it, the time to the millisecond.
func TestLogger_Console(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 4, 5, 123_000_000, time.UTC)
	clock := func() time.Time { return at.In(shanghai) }
	var out bytes.Buffer
	logTo(&out, config.Log{Format: "console"}, true, clock).Warn().Str("meter", "M-1").Msg("meter offline")
	if got := out.String(); !strings.HasPrefix(got, "<4>") || strings.Contains(got, "18:04") || !strings.Contains(got, "meter offline") {
		t.Errorf("console under the journal = %q; want <4>, the message, no time", got)
	}
	out.Reset()
	logTo(&out, config.Log{Format: "console"}, false, clock).Info().Msg("hello")
	if got := out.String(); !strings.HasPrefix(got, "2026-11-30T18:04:05.123+08:00") || strings.HasPrefix(got, "<") {
		t.Errorf("console outside the journal = %q; want the millisecond time first", got)
	}
}

// underJournal believes JOURNAL_STREAM only for the stream it names.
func TestUnderJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	same := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	other := fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)
	for _, c := range []struct {
		env  string
		want bool
	}{{same, true}, {other, false}, {"", false}, {"garbage", false}} {
		if got := underJournal(f, c.env); got != c.want {
			t.Errorf("underJournal(JOURNAL_STREAM=%q) = %v; want %v", c.env, got, c.want)
		}
	}
}

func logTo(out *bytes.Buffer, c config.Log, journal bool, clock func() time.Time) *zerolog.Logger {
	l := newLogger(c, out, journal, clock)
	return &l
}
