package web

import (
	"cmp"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Front is the process's one HTTP server: it holds the listener for the
// gateway's whole life and hands each request to the Server of the
// configuration in force. A reload swaps that Server without closing the
// listener, so no request is refused while it happens:
//
//   - Hold makes new requests wait, ends the current Server's event streams
//     (browsers reconnect by themselves, resuming by Last-Event-ID) and waits
//     for its other requests to finish;
//   - Set serves the new Server from then on and lets the waiting requests
//     through to it.
//
// A request therefore runs wholly on one Server: the old one or the new.
type Front struct {
	tls  *tls.Config
	port atomic.Int32 // the port served on, once Serve runs
	// heldWait, readTimeout and writeTimeout are heldWait and the
	// server's timeouts (serverReadTimeout, serverWriteTimeout): fields
	// so that a test can shorten them.
	heldWait, readTimeout, writeTimeout time.Duration

	mu   sync.Mutex
	cur  *Server
	held chan struct{} // non-nil between Hold and Set: closed by Set
	// refused is why every request is answered 503 since Refuse; "" until
	// then.
	refused string
}

// NewFront returns a Front serving HTTPS with tlsConfig, or HTTP where it is
// nil. It answers 503 until Set gives it a Server.
func NewFront(tlsConfig *tls.Config) *Front {
	return &Front{tls: tlsConfig, heldWait: heldWait, readTimeout: serverReadTimeout, writeTimeout: serverWriteTimeout}
}

// Set makes s the Server of every request from now on, and releases the
// requests that waited since Hold.
func (f *Front) Set(s *Server) {
	s.port.Store(f.port.Load())
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = s
	if f.held != nil {
		close(f.held)
		f.held = nil
	}
}

// Refuse answers every request 503 with reason from now on, those waiting
// since Hold first: for when no Server will be set again (the gateway is
// stopping), so that none waits for one until its connection is closed.
func (f *Front) Refuse(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur, f.refused = nil, reason
	if f.held != nil {
		close(f.held)
		f.held = nil
	}
}

// Hold makes new requests wait for the next Set, ends the current Server's
// event streams, and waits until its other requests have finished or
// drain has passed. It reports whether they all finished.
func (f *Front) Hold(drain time.Duration) bool { return f.HoldContext(context.Background(), drain) }

// HoldContext is Hold that also stops waiting when ctx ends (a shutdown
// asked for during a reload), and then reports false. The requests stay
// held until Set or Refuse.
func (f *Front) HoldContext(ctx context.Context, drain time.Duration) bool {
	f.mu.Lock()
	if f.held == nil {
		f.held = make(chan struct{})
	}
	old := f.cur
	f.mu.Unlock()
	if old == nil {
		return true
	}
	old.endStreams()
	done := make(chan struct{})
	go func() {
		old.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// heldWait bounds a request's wait for a reload to end: a reload takes a
// bus cycle or two; past this the request is answered 503.
const heldWait = 30 * time.Second

// ServeHTTP hands r to the current Server, waiting first while a reload
// holds requests.
//
// The connection's read and write deadlines run from the request's
// arrival, and would pass while it waits: its body could not be read
// afterwards, nor its answer (the new Server's, or the 503) written.
// So a request that waits has them put off by the wait before it waits
// (a deadline once passed cannot be put off), and once the wait is over
// set to the server's timeouts from then, as if it had only just arrived.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	for f.held != nil {
		held := f.held
		f.mu.Unlock()
		f.putOffDeadlines(w, f.heldWait)
		t := time.NewTimer(f.heldWait)
		select {
		case <-held:
			t.Stop()
			f.putOffDeadlines(w, 0)
		case <-t.C:
			writeError(w, http.StatusServiceUnavailable, "the configuration is being reloaded: try again")
			return
		case <-r.Context().Done():
			t.Stop()
			return
		}
		f.mu.Lock()
	}
	s, refused := f.cur, f.refused
	if s != nil {
		s.inflight.Add(1) // under mu: Hold's Wait sees it
	}
	f.mu.Unlock()
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, cmp.Or(refused, "starting"))
		return
	}
	defer s.inflight.Done()
	s.ServeHTTP(w, r)
}

// putOffDeadlines sets the connection's read and write deadlines to the
// server's timeouts from now plus wait.
func (f *Front) putOffDeadlines(w http.ResponseWriter, wait time.Duration) {
	rc, now := http.NewResponseController(w), time.Now()
	// An error is a writer without a connection (http.ErrNotSupported: a
	// test's recorder, which has no deadlines to lose) or a client that
	// has left (its request ends with its context): nothing to do.
	_ = rc.SetReadDeadline(now.Add(wait + f.readTimeout))
	_ = rc.SetWriteDeadline(now.Add(wait + f.writeTimeout))
}

// Serve answers on ln until ctx is cancelled, then shuts down as
// Server.Serve does, giving open requests at most a second.
func (f *Front) Serve(ctx context.Context, ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		f.port.Store(int32(a.Port))
		f.mu.Lock()
		if f.cur != nil {
			f.cur.port.Store(int32(a.Port))
		}
		f.mu.Unlock()
	}
	return serveHTTP(ctx, ln, f, f.tls, func() {
		f.mu.Lock()
		s := f.cur
		f.mu.Unlock()
		if s != nil {
			s.endStreams()
		}
	})
}

// endStreams ends the Server's event streams (once): at shutdown, or when
// a reload retires it.
func (s *Server) endStreams() { s.closeOnce.Do(func() { close(s.closing) }) }
