package backup

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/store"
)

// SocketSuffix is added to the database's path to name its control socket.
const SocketSuffix = ".ctl"

// SocketPath returns the control socket of the database at dbPath.
func SocketPath(dbPath string) string { return dbPath + SocketSuffix }

// maxSocketPath is the longest path a unix socket address holds: sun_path
// is 108 bytes on Linux, the last one the terminating NUL.
const maxSocketPath = 107

// DefaultTimeout bounds each read and write on the control socket.
const DefaultTimeout = 10 * time.Second

// Source is what the server and the snapshotter copy: the open database.
type Source interface {
	WriteBackup(w io.Writer, size func(int64) error) (int64, error)
	ID() string
	SchemaVersion() (int, error)
	// Reserve is the free space the database's file system keeps: what
	// a snapshot must leave free.
	Reserve() int64
}

// Server serves backups of the open database on its control socket.
type Server struct {
	path string
	ln   *net.UnixListener
	db   Source
	log  zerolog.Logger
	// Timeout bounds each read and write on a connection; 0 is
	// DefaultTimeout.
	Timeout time.Duration
	// MaxCopy bounds a whole copy; 0 is DefaultMaxCopy. The copy is one
	// read transaction, and while it is open bbolt cannot grow the file's
	// mapping: a client that reads slowly but steadily would at last hold
	// up the gateway's commits.
	MaxCopy time.Duration
}

// DefaultMaxCopy bounds a whole copy over the control socket: a local
// client reads a gigabyte in seconds.
const DefaultMaxCopy = 2 * time.Minute

// Listen creates the control socket at path (mode 0600) for db, whose
// file lock the caller holds. A socket already there that nothing answers
// on (left by a daemon that was killed) is replaced; a live one, or a file
// that is not a socket, is an error. It returns an error wrapping
// ErrSocketPath for a path too long for a socket.
func Listen(path string, db Source, log zerolog.Logger) (*Server, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%w: %s is %d bytes, a unix socket's path holds %d; move the database (storage.path) to a shorter path",
			ErrSocketPath, path, len(path), maxSocketPath)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	// Bound under a temporary name, made 0600, then renamed into place: the
	// socket is never reachable at its path with a wider mode.
	tmp := filepath.Join(filepath.Dir(path), ".ctl-"+randomSuffix())
	if len(tmp) > maxSocketPath {
		tmp = path // the final name fits, the temporary one not: bind in place (the directory is the gateway's)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the name is ours to remove, after the rename
	if err := os.Chmod(tmp, 0o600); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if tmp != path {
		if err := os.Rename(tmp, path); err != nil {
			_ = ln.Close()
			_ = os.Remove(tmp)
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
	}
	return &Server{path: path, ln: ln, db: db, log: log}, nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return an error
	return hex.EncodeToString(b)
}

// clearStale removes a socket at path that nothing answers on.
func clearStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: a file that is not a socket is there; it is left alone — move it away", path)
	}
	// A process answering is a second gateway on this database, or one
	// still running on a file moved away from the path. The caller holds
	// the lock of the file at the path: a socket nothing answers on
	// (refused, or not ours to connect to, as one left by a gateway run as
	// root) is stale.
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("control socket %s: another process answers on it (a second gateway on the same database?)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s: remove the stale one: %w", path, err)
	}
	return nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Run serves connections until ctx ends, then closes the socket, removes
// it, and ends the copies being served by closing their connections: the
// gateway's stop is not held up by a backup (systemd kills a stop that
// takes longer than TimeoutStopSec, 10 s). It returns nil then.
func (s *Server) Run(ctx context.Context) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		_ = s.ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = c.Close()
		}
	})
	defer stop()
	var err error
	for {
		var c *net.UnixConn
		c, err = s.ln.AcceptUnix()
		if err != nil {
			break
		}
		mu.Lock()
		if ctx.Err() != nil { // accepted as ctx ended: the closing above may have run already
			mu.Unlock()
			_ = c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
	_ = s.ln.Close()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		s.log.Warn().Err(rerr).Str("socket", s.path).Msg("remove control socket")
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("control socket %s: %w", s.path, err)
}

func (s *Server) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// serve answers one request; ctx ending closes c (Run).
func (s *Server) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	start := time.Now()
	t := s.timeout()
	_ = c.SetReadDeadline(time.Now().Add(t))
	line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
	if err != nil {
		s.log.Warn().Err(err).Msg("control socket: no request")
		return
	}
	maxCopy := s.MaxCopy
	if maxCopy <= 0 {
		maxCopy = DefaultMaxCopy
	}
	w := &deadlineWriter{c: c, t: t, end: time.Now().Add(maxCopy)}
	if cmd := strings.TrimSpace(line); cmd != "backup" {
		_, _ = fmt.Fprintf(w, "error unknown request %q; want backup\n", cmd)
		return
	}
	schema, err := s.db.SchemaVersion()
	if err != nil {
		_, _ = fmt.Fprintf(w, "error %s\n", oneLine(err))
		return
	}
	headerSent := false
	n, err := s.db.WriteBackup(w, func(size int64) error {
		headerSent = true
		_, err := fmt.Fprintf(w, "ok %d %s %d\n", size, s.db.ID(), schema)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			s.log.Warn().Int64("bytes", n).Msg("control socket: backup ended unfinished, the gateway is stopping")
			return
		}
		if !headerSent {
			_, _ = fmt.Fprintf(w, "error %s\n", oneLine(err))
		}
		s.log.Error().Err(err).Int64("bytes", n).Msg("control socket: backup failed")
		return
	}
	s.log.Info().Int64("bytes", n).Str("db", s.db.ID()).Dur("took", time.Since(start)).Msg("backup sent over the control socket")
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// deadlineWriter gives every write on the connection a deadline of its
// own, and the whole copy one: a client that stops reading, or reads too
// slowly, ends the copy and with it the daemon's read transaction (which
// keeps bbolt from reusing freed pages and from growing the file).
type deadlineWriter struct {
	c   net.Conn
	t   time.Duration
	end time.Time // the whole copy's deadline
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	d := time.Now().Add(w.t)
	if w.end.Before(d) {
		d = w.end
	}
	if err := w.c.SetWriteDeadline(d); err != nil {
		return 0, err
	}
	return w.c.Write(p)
}

// deadlineReader gives every read on the connection a deadline of its own.
type deadlineReader struct {
	c net.Conn
	t time.Duration
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if err := r.c.SetReadDeadline(time.Now().Add(r.t)); err != nil {
		return 0, err
	}
	return r.c.Read(p)
}

var _ Source = (*store.DB)(nil)
