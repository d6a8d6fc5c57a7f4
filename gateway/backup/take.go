package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"mallgrid/store"
)

// Header is what the daemon says of the copy it sends.
type Header struct {
	Size   int64
	ID     string
	Schema int
}

// Fetch asks the daemon on the control socket at socket for a copy of its
// database and writes it to w. Every read has a deadline of timeout (0:
// DefaultTimeout), and ctx ends the transfer. It returns ErrNoDaemon when
// nothing answers on the socket, ErrShort for a copy that ended before its
// announced size, and the daemon's own error text for a copy it refused.
func Fetch(ctx context.Context, socket string, w io.Writer, timeout time.Duration) (Header, error) {
	var h Header
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return h, fmt.Errorf("%w (%s)", ErrNoDaemon, socket)
		}
		if errors.Is(err, fs.ErrPermission) {
			return h, fmt.Errorf("control socket %s: %w; it is the gateway's user's alone (mode 0600): run the backup as that user or root", socket, err)
		}
		return h, fmt.Errorf("control socket %s: %w", socket, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "backup\n"); err != nil {
		return h, fmt.Errorf("control socket %s: %w", socket, err)
	}
	r := bufio.NewReader(&deadlineReader{c: c, t: timeout})
	line, err := r.ReadString('\n')
	if err != nil {
		return h, fmt.Errorf("control socket %s: no answer: %w", socket, err)
	}
	line = strings.TrimSuffix(line, "\n")
	if text, ok := strings.CutPrefix(line, "error "); ok {
		return h, fmt.Errorf("the gateway refused the backup: %s", text)
	}
	if _, err := fmt.Sscanf(line, "ok %d %s %d", &h.Size, &h.ID, &h.Schema); err != nil || h.Size <= 0 {
		return h, fmt.Errorf("control socket %s: unreadable answer %q", socket, line)
	}
	n, err := io.CopyN(w, r, h.Size)
	if err != nil {
		if ctx.Err() != nil {
			return h, ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return h, fmt.Errorf("%w: %d of %d bytes", ErrShort, n, h.Size)
		}
		return h, fmt.Errorf("control socket %s: after %d of %d bytes: %w", socket, n, h.Size, err)
	}
	return h, nil
}

// Taken says how Take made its copy and what the copy is.
type Taken struct {
	// FromDaemon says the running gateway sent it over its control
	// socket; otherwise no gateway ran and the file was read directly.
	FromDaemon bool
	Info       store.Info // the copy, as Inspect found it
}

// Take writes a consistent copy of the database at dbPath to out: from the
// running gateway over its control socket, or, where none answers, from
// the file opened read-only. out is written atomically: a temporary file
// beside it, opened and checked (a database, of a schema this gateway
// reads, with the identity of the database copied), synced and renamed.
// A copy that fails the check is removed and leaves out as it was (last
// night's backup under a fixed name).
//
// An out that is the database itself or one of the files kept beside it
// (every PATH.* name: the marker, the control socket, the files kept
// aside, temporaries) is refused with an error wrapping ErrOutIsDatabase
// before anything is written: the copy would be renamed over it.
func Take(ctx context.Context, dbPath, out string, timeout time.Duration) (Taken, error) {
	var (
		t    Taken
		want string
	)
	if err := checkOut(dbPath, out); err != nil {
		return t, err
	}
	err := store.WriteFileAtomic(out, func(f *os.File) error {
		if err := copyTo(ctx, dbPath, f, timeout, &t, &want); err != nil {
			return err
		}
		// Checked under its temporary name: out is replaced only by a
		// copy that is whole.
		var err error
		t.Info, err = store.Inspect(f.Name())
		if err != nil {
			return fmt.Errorf("the copy does not open: %w", err)
		}
		if t.Info.ID != want {
			return fmt.Errorf("the copy is database %q, the database copied is %q", t.Info.ID, want)
		}
		return nil
	})
	if err != nil {
		return t, fmt.Errorf("backup %s to %s: %w", dbPath, out, err)
	}
	t.Info.Path = out
	return t, nil
}

// copyTo writes the copy to f, from the daemon or the file, and records
// where from and the identity of the database copied.
func copyTo(ctx context.Context, dbPath string, f *os.File, timeout time.Duration, t *Taken, want *string) error {
	h, err := Fetch(ctx, SocketPath(dbPath), f, timeout)
	if err == nil {
		t.FromDaemon, *want = true, h.ID
		return nil
	}
	if !errors.Is(err, ErrNoDaemon) {
		return err
	}
	// A file of an older schema is copied as it is: a backup before
	// the gateway upgrades it.
	info, err := store.CopyFile(dbPath, f)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: a gateway holds the database but does not answer on its control socket %s (an older version?); "+
			"stop it (systemctl stop mallgrid) and run the backup again", err, SocketPath(dbPath))
	}
	*want = info.ID
	return err
}

// checkOut returns an error wrapping ErrOutIsDatabase when out, symbolic
// links followed, is the database at dbPath or a name beginning with the
// database's name and a dot in its directory: the marker (PATH.id), the
// control socket (PATH.ctl), a file kept aside (PATH.replaced-…), a
// temporary. Renamed over any of them, the copy would stop the running
// gateway's writes, or its next start.
func checkOut(dbPath, out string) error {
	outs := []string{resolve(out)}
	if abs, err := filepath.Abs(out); err == nil {
		outs = append(outs, filepath.Join(resolve(filepath.Dir(abs)), filepath.Base(abs)))
	}
	dbs := []string{resolve(dbPath)}
	if abs, err := filepath.Abs(dbPath); err == nil {
		dbs = append(dbs, abs)
	}
	for _, o := range outs {
		for _, d := range dbs {
			if o == d || filepath.Dir(o) == filepath.Dir(d) && strings.HasPrefix(filepath.Base(o), filepath.Base(d)+".") {
				return fmt.Errorf("%w: %s is %s or one of the files the gateway keeps beside it (%s.*); the copy would be renamed over it — name a file elsewhere",
					ErrOutIsDatabase, out, dbPath, filepath.Base(dbPath))
			}
		}
	}
	return nil
}

// resolve returns path absolute with its symbolic links followed; for a
// path not there yet, its directory's followed and its name added.
func resolve(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}
