package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// logTimeLayout is RFC 3339 to the millisecond: a relay command and the
// reading after it are often within the same second.
const logTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// newLogger builds the daemon's logger: JSON lines or human-readable
// console output, at c's level. Under systemd's journal (journal true) every
// line starts with its syslog priority ("<4>" for a warning), which
// journald takes as the entry's priority and strips, so `journalctl -p
// warning` finds the gateway's warnings; the console form then leaves the
// time out, since journald stamps each line itself. The JSON time field is
// to the millisecond, in the site's zone (clock gives it, cfg.SiteTime of
// the wall clock).
func newLogger(c config.Log, w io.Writer, journal bool, clock func() time.Time) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		level = zerolog.InfoLevel
	}
	stamp := zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
		e.Str(zerolog.TimestampFieldName, clock().Format(logTimeLayout))
	})
	var log zerolog.Logger
	if c.Format == "console" {
		cw := &zerolog.ConsoleWriter{Out: w, NoColor: true, TimeFormat: logTimeLayout,
			FormatTimestamp: func(v any) string { return fmt.Sprint(v) }}
		if journal {
			cw.PartsExclude = []string{zerolog.TimestampFieldName}
			log = zerolog.New(&journalWriter{out: w, console: cw})
		} else {
			log = zerolog.New(cw)
		}
	} else if journal {
		log = zerolog.New(&journalWriter{out: w})
	} else {
		log = zerolog.New(w)
	}
	return log.Hook(stamp).Level(level)
}

// underJournal reports whether f is the stream systemd connected to the
// journal: JOURNAL_STREAM names its device and inode (systemd.exec(5)),
// and is inherited by children whose output goes elsewhere, hence the check.
func underJournal(f *os.File, journalStream string) bool {
	if journalStream == "" {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(journalStream, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// journalWriter starts each line with its syslog priority, the sd-daemon(3)
// prefix journald reads; console, if set, formats the line first. One Write
// per line, under a lock: lines from the buses' goroutines never interleave.
type journalWriter struct {
	out     io.Writer
	console *zerolog.ConsoleWriter

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer for lines without a level.
func (j *journalWriter) Write(p []byte) (int, error) { return j.WriteLevel(zerolog.NoLevel, p) }

// WriteLevel implements zerolog.LevelWriter.
func (j *journalWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf.Reset()
	fmt.Fprintf(&j.buf, "<%d>", syslogPriority(l))
	if j.console != nil {
		cw := *j.console
		cw.Out = &j.buf
		if _, err := cw.Write(p); err != nil {
			return 0, err
		}
	} else {
		j.buf.Write(p)
	}
	if _, err := j.out.Write(j.buf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// syslogPriority maps a level to syslog's: 3 err, 4 warning, 6 info, 7 debug.
func syslogPriority(l zerolog.Level) int {
	switch l {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return 7
	case zerolog.WarnLevel:
		return 4
	case zerolog.ErrorLevel:
		return 3
	case zerolog.FatalLevel:
		return 2
	case zerolog.PanicLevel:
		return 0
	}
	return 6
}
