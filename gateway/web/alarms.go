package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Alarms is what the alarm endpoints read and change; the gateway
// implements it over the store, where an alarm is raised in the same
// transaction as the event (and the reading) that raised it.
type Alarms interface {
	// List returns alarms newest first: in one state when state is not
	// empty (active, acknowledged, cleared), else every state; at most
	// limit of them.
	List(state string, limit int) ([]AlarmView, error)
	// Ack acknowledges an alarm with a note: ErrNotFound for an unknown id,
	// ErrConflict for one acknowledged before.
	Ack(ctx context.Context, id uint64, note, actor string) (AlarmView, error)
}

// Alarm states, as the API names them.
const (
	AlarmActive       = "active"       // raised, nobody has acknowledged it yet
	AlarmAcknowledged = "acknowledged" // someone took it in hand; the condition still holds
	AlarmCleared      = "cleared"      // the condition is over (acknowledged or not)
)

// AlarmView is one alarm: an episode of a condition the control room must
// act on, from the event that raised it to the one that cleared it.
type AlarmView struct {
	ID       uint64 `json:"id"`
	Kind     string `json:"kind"`     // the raising event's kind: meter_offline, bus_down, relay_fault, …
	Severity string `json:"severity"` // critical | warning
	State    string `json:"state"`    // active | acknowledged | cleared
	Meter    string `json:"meter,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Bus      string `json:"bus,omitempty"`
	Text     string `json:"text"` // the raising event's sentence, in English
	// Args are the raising event's facts by name, to tell it in the
	// reader's language (EventView.Args).
	Args map[string]string `json:"args,omitempty"`
	// Values are the measurements behind the alarm, as decimal strings by
	// name ("current_a": "72.4"), when the raising event had any.
	Values       map[string]string `json:"values,omitempty"`
	Raised       time.Time         `json:"raised"`
	RaisedEvent  uint64            `json:"raised_event"`
	Acked        *time.Time        `json:"acknowledged,omitempty"`
	AckedBy      string            `json:"acknowledged_by,omitempty"`
	Note         string            `json:"note,omitempty"`
	Cleared      *time.Time        `json:"cleared,omitempty"`
	ClearedEvent uint64            `json:"cleared_event,omitempty"`
}

// AckRequest is the body of POST /api/v1/alarms/{id}/ack.
type AckRequest struct {
	Note string `json:"note"` // what was done or found; required, and kept
}

func (s *Server) alarmRoutes() {
	s.handle("GET /api/v1/alarms", s.read(s.apiAlarms))
	s.handle("POST /api/v1/alarms/{id}/ack", s.write(s.apiAck))
}

// apiAlarms is GET /api/v1/alarms?state=active|acknowledged|cleared&limit=N
// (1..1000, default 200), newest first.
func (s *Server) apiAlarms(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	state := q.Get("state")
	switch state {
	case "", AlarmActive, AlarmAcknowledged, AlarmCleared:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state %q: want active, acknowledged or cleared", state))
		return
	}
	limit, err := intParam(q, "limit", 1, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit == 0 {
		limit = 200
	}
	list, err := s.alarms.List(state, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	if list == nil {
		list = []AlarmView{}
	}
	writeJSON(w, http.StatusOK, list)
}

// apiAck is POST /api/v1/alarms/{id}/ack with {"note": "…"}.
func (s *Server) apiAck(w http.ResponseWriter, r *http.Request, actor string) {
	var req AckRequest
	if !decodeBody(w, r, &req) {
		return
	}
	noteAudit(r, func(n *auditNote) { n.Target, n.Reason = "alarm "+r.PathValue("id"), req.Note })
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("alarm id %q: want a number", r.PathValue("id")))
		return
	}
	if strings.TrimSpace(req.Note) == "" {
		writeError(w, http.StatusBadRequest, "note: say what was done or found; it is kept with the alarm")
		return
	}
	a, err := s.alarms.Ack(r.Context(), id, req.Note, actor)
	if err != nil {
		s.fail(w, err)
		return
	}
	// An alarm may be acknowledged after it cleared: the state it had
	// before is not known here, only that nobody had acknowledged it.
	noteAudit(r, func(n *auditNote) { n.Before, n.After = "not acknowledged", "acknowledged by "+actor })
	writeJSON(w, http.StatusOK, a)
}
