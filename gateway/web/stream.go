package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MeterChanges is a Source that numbers its meters' changes, for the live
// stream of the meter list (GET /api/v1/meters/stream); the gateway's
// picture implements it.
type MeterChanges interface {
	// MetersSince returns the views of the meters changed after sequence
	// number after, in configuration order, and the number of the latest
	// change; every meter when after is not a number it gave (0, or one
	// from an earlier run of the gateway).
	MetersSince(after uint64) ([]MeterView, uint64)
}

// StatusDelta is the meter stream's status event: the counts, buses and
// uplink of GET /api/v1/status, without the per-meter polling list (the
// meters event carries each meter's statistics).
type StatusDelta struct {
	Counts CountsView  `json:"counts"`
	Buses  []BusView   `json:"buses"`
	Uplink *UplinkView `json:"uplink,omitempty"`
}

// meterStreamEvery is how often the meter stream sends: the changes of
// a second are coalesced into one message, whatever the buses do.
const meterStreamEvery = time.Second

// streamWriteTimeout bounds each write of a stream: a client that takes
// no bytes for so long (a suspended laptop) is let go, and reconnects.
const streamWriteTimeout = 10 * time.Second

// apiMeterStream is GET /api/v1/meters/stream: server-sent events of the
// meter list's changes, at most one message a second.
//
//	event: meters   data: a JSON array of the MeterViews changed since the
//	                last message; id: the change sequence number
//	event: status   data: StatusDelta, when the counts, buses or uplink changed
//
// A client that reconnects with Last-Event-ID gets the changes after that
// number, or every meter when the number is not one this gateway gave (it
// restarted); a first connection gets every meter. ?ids=M-1,M-2 limits the
// meters event to those meters (the page's rows), and ?ids= (empty) to
// none; the status event is sent in any case.
func (s *Server) apiMeterStream(w http.ResponseWriter, r *http.Request, src MeterChanges) {
	ids, err := s.streamIDs(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The browser sends back the last id it saw; anything else (none, or
	// not a number) asks for everything, as an id of another run does.
	after, _ := strconv.ParseUint(strings.TrimSpace(r.Header.Get("Last-Event-ID")), 10, 64)
	es, ok := s.openStream(w, r)
	if !ok {
		return
	}
	var lastStatus []byte
	send := func() bool {
		changed, seq := src.MetersSince(after)
		var rows []*MeterView
		for i := range changed {
			if ids == nil || ids[changed[i].ID] {
				rows = append(rows, &changed[i])
			}
		}
		if len(rows) > 0 {
			var data bytes.Buffer
			if err := writeMeterArray(&data, rows); err != nil {
				s.log.Error().Err(err).Msg("meter stream: encode")
				return false
			}
			if es.send("meters", strconv.FormatUint(seq, 10), data.Bytes()) != nil {
				return false
			}
		}
		after = seq
		var ok bool
		lastStatus, ok = s.sendStatus(es, lastStatus)
		return ok
	}
	if !send() {
		return
	}
	tick := time.NewTicker(meterStreamEvery)
	defer tick.Stop()
	quiet := 0 // ticks since the last heartbeat
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-tick.C:
		}
		if !es.alive() || !send() {
			return
		}
		if quiet++; quiet >= int(heartbeat/meterStreamEvery) {
			if es.ping() != nil {
				return
			}
			quiet = 0
		}
	}
}

// streamIDs reads the meter stream's only parameter, ids: nil for every
// meter. An unknown meter, an empty id or more ids than a page has is a
// 400's reason.
func (s *Server) streamIDs(r *http.Request) (map[string]bool, error) {
	v := r.URL.Query()
	for k, vals := range v {
		if k != "ids" {
			return nil, fmt.Errorf("unknown parameter %q; the meter stream takes ids", k)
		}
		if len(vals) > 1 {
			return nil, fmt.Errorf("parameter ids given %d times; give it once, the ids separated by commas", len(vals))
		}
	}
	if !v.Has("ids") {
		return nil, nil
	}
	if v.Get("ids") == "" {
		return map[string]bool{}, nil // no meter: the status events alone (the dashboard)
	}
	list := strings.Split(v.Get("ids"), ",")
	if len(list) > maxMeterPage {
		return nil, fmt.Errorf("ids: %d meters; at most %d", len(list), maxMeterPage)
	}
	known := make(map[string]bool)
	for _, m := range s.src.Meters() {
		known[m.ID] = true
	}
	ids := make(map[string]bool, len(list))
	for _, id := range list {
		switch {
		case id == "":
			return nil, fmt.Errorf("ids %q: an empty id; separate ids by single commas", v.Get("ids"))
		case !known[id]:
			return nil, fmt.Errorf("ids: no meter %q", id)
		}
		ids[id] = true
	}
	return ids, nil
}

// sendStatus sends the status event when it differs from last; it returns
// what was last sent, and false when the client is gone.
func (s *Server) sendStatus(es *eventStream, last []byte) ([]byte, bool) {
	st := s.src.Status()
	status, _ := json.Marshal(StatusDelta{Counts: st.Counts, Buses: st.Buses, Uplink: st.Uplink}) // plain fields: cannot fail
	if bytes.Equal(status, last) {
		return last, true
	}
	if es.send("status", "", status) != nil {
		return last, false
	}
	return status, true
}

// eventStream is an open stream of server-sent events: what the event
// stream and the meter stream share.
type eventStream struct {
	s  *Server
	w  http.ResponseWriter
	rc *http.ResponseController
	// alive reports whether the login the stream was opened with (if
	// any) still holds: after a logout, its expiry, or its user's removal
	// or new password, nothing more is sent.
	alive func() bool
}

// openStream answers r with the head of an event stream; false (and an
// error answered) when w cannot stream.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) (*eventStream, bool) {
	if _, ok := w.(http.Flusher); !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return nil, false
	}
	es := &eventStream{s: s, w: w, rc: http.NewResponseController(w), alive: func() bool { return true }}
	if sess := principalOf(r).sess; sess != nil {
		es.alive = func() bool {
			_, stands := s.userOf(*sess)
			return stands && s.sessions.alive(sess.id, s.now())
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return es, es.write("retry: 3000\n\n") == nil
}

// send writes one event (no name and no id when they are empty) and
// flushes it to the client.
func (es *eventStream) send(name, id string, data []byte) error {
	var b bytes.Buffer
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("data: ")
	b.Write(data) // JSON: one line
	b.WriteString("\n\n")
	return es.write(b.String())
}

// ping keeps proxies and browsers from closing a quiet stream.
func (es *eventStream) ping() error { return es.write(": ping\n\n") }

// write sends text within streamWriteTimeout. The server's write timeout
// is for ordinary requests; a stream lives as long as the page, each
// write with its own deadline.
func (es *eventStream) write(text string) error {
	if err := es.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		es.s.log.Debug().Err(err).Msg("event stream: set the write deadline")
	}
	if _, err := fmt.Fprint(es.w, text); err != nil {
		return err
	}
	return es.rc.Flush()
}
