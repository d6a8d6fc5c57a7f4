package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Events is the stream of stored events. The gateway implements it.
type Events interface {
	// Subscribe returns a channel of events as they are committed and a
	// function to stop; the channel is closed when the subscriber falls
	// behind or stops.
	Subscribe() (<-chan EventView, func())
	// After returns up to limit stored events with ids above id.
	After(id uint64, limit int) ([]EventView, error)
	// Last returns the newest n stored events, oldest first.
	Last(n int) ([]EventView, error)
}

// EventView is one event as the API and the page show it.
type EventView struct {
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Meter  string    `json:"meter,omitempty"`
	Tenant string    `json:"tenant,omitempty"`
	Text   string    `json:"text"` // in English, as stored
	// Args are the event's facts by name (store.Event.Args), from which a
	// page tells it in its reader's language (i18n EventText); events
	// stored before they were recorded have none.
	Args map[string]string `json:"args,omitempty"`
	// Alarm says what the event does to an alarm: "raise" or "clear" (the
	// store's table of alarm kinds decides), "" nothing: a page sounds and
	// redraws its alarms by it without knowing the kinds.
	Alarm string `json:"alarm,omitempty"`
}

// heartbeat keeps proxies and browsers from closing a quiet stream.
const heartbeat = 15 * time.Second

// apiEvents is GET /api/v1/events: server-sent events. A client that
// reconnects with Last-Event-ID (or ?after=ID) first gets what it missed
// from the store, then the live stream; nothing committed is lost in
// between, since the subscription starts before the history is read.
//
// ?status=1 adds the gateway's counts and buses as `event: status`
// (StatusDelta) when they change, at most once a second: the dashboard
// follows both over one connection (a browser gives a site six).
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request, _ string) {
	after := uint64(0)
	// The browser's Last-Event-ID, sent when it reconnects, wins over the
	// ?after= the page was opened with: it is newer.
	for _, v := range []string{r.URL.Query().Get("after"), r.Header.Get("Last-Event-ID")} {
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("event id %q: want a number", v))
			return
		}
		after = n
	}
	live, stop := s.events.Subscribe()
	defer stop()
	history, err := s.events.After(after, 1000)
	if err != nil {
		s.fail(w, err)
		return
	}
	es, ok := s.openStream(w, r)
	if !ok {
		return
	}
	last := after
	send := func(e EventView) bool {
		if e.ID <= last {
			return true
		}
		data, _ := json.Marshal(e) // plain fields: cannot fail
		// No "event:" name: every event is a message, its kind in the data,
		// so a page need not know the kinds in advance.
		if es.send("", strconv.FormatUint(e.ID, 10), data) != nil {
			return false
		}
		last = e.ID
		return true
	}
	for _, e := range history {
		if !send(e) {
			return
		}
	}
	var statusTick <-chan time.Time // nil: no status events
	var lastStatus []byte
	if r.URL.Query().Get("status") == "1" {
		t := time.NewTicker(meterStreamEvery)
		defer t.Stop()
		statusTick = t.C
		if lastStatus, ok = s.sendStatus(es, nil); !ok {
			return
		}
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-statusTick:
			if !es.alive() {
				return
			}
			if lastStatus, ok = s.sendStatus(es, lastStatus); !ok {
				return
			}
		case e, ok := <-live:
			if !ok {
				return // fell behind: the client reconnects and catches up
			}
			// A stream opened with a login lasts only as long as the
			// login: after a logout or its expiry, not another event.
			if !es.alive() || !send(e) {
				return
			}
		case <-tick.C:
			if !es.alive() || es.ping() != nil {
				return
			}
		}
	}
}
