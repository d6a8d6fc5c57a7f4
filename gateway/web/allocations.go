package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Allocations is what the allocation endpoints call; the gateway
// implements it over the store (gateway/report). Errors: ErrNotFound for
// an unknown rule or posting, ErrInvalid for a span or period it cannot
// compute or post, ErrConflict for a posting reversed before or a period
// overlapping one that stands.
type Allocations interface {
	// Preview computes rule over [from, to) and posts nothing.
	Preview(rule string, from, to time.Time) (AllocationPreview, error)
	// Postings returns the postings, newest first.
	Postings() ([]AllocationPosting, error)
	// Post posts rule's period that starts at from, once: a period posted
	// and standing is returned with existing = true.
	Post(ctx context.Context, rule string, from time.Time, actor string) (p AllocationPosting, existing bool, err error)
	// Reverse undoes posting id, once, with a reason.
	Reverse(ctx context.Context, id uint64, reason, actor string) (AllocationPosting, error)
}

// AllocationPreview is GET /api/v1/allocations/preview: the rule's public
// energy over the span (kWh to the Wh), its cost at the rule's tariff
// (whole fen) and each tenant's share with its basis, as decimal text.
type AllocationPreview struct {
	Rule      string            `json:"rule"`
	From      time.Time         `json:"from"`
	To        time.Time         `json:"to"`
	Basis     string            `json:"rule_basis"`
	Tariff    string            `json:"tariff"`
	PublicKWh string            `json:"public_kwh"`
	Cost      string            `json:"cost"`
	Shares    []AllocationShare `json:"shares"`
}

// AllocationShare is one tenant's share: its basis as a sentence it can
// check ("area 120.50 m² of 480.00 m² = 25.1042% of the cost") and the
// amount, and once posted its ledger entry.
type AllocationShare struct {
	Tenant string `json:"tenant"`
	Basis  string `json:"basis"`
	Amount string `json:"amount"`
	Entry  uint64 `json:"entry,omitempty"`
}

// AllocationPosting is a posting in GET /api/v1/allocations: what its
// preview showed (each share with its entry), and its period, when, by
// whom and whether it was reversed.
type AllocationPosting struct {
	ID     uint64 `json:"id"`
	Period string `json:"period"`
	AllocationPreview
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`
	Reversal *AllocationUndo `json:"reversal,omitempty"`
}

// AllocationUndo is who reversed a posting, when and why, and the
// reversal entries.
type AllocationUndo struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason"`
	Entries []uint64  `json:"entries"`
}

// AllocationPostRequest is the body of POST /api/v1/allocations.
type AllocationPostRequest struct {
	Rule string `json:"rule"`
	From string `json:"from"` // RFC 3339: the start of one of the rule's periods
}

// ReverseRequest is the body of POST /api/v1/allocations/{id}/reverse.
type ReverseRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) allocationRoutes(al Allocations) {
	s.handle("GET /api/v1/allocations/preview", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		rule := q.Get("rule")
		if rule == "" {
			writeError(w, http.StatusBadRequest, "rule: required, the name of an allocation rule")
			return
		}
		from, to, ok := historyRange(w, q.Get("from"), q.Get("to"))
		if !ok {
			return
		}
		release, ok := s.previewSlot()
		if !ok {
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, "another allocation preview is being computed: try again in a few seconds")
			return
		}
		v, err := func() (AllocationPreview, error) { defer release(); return al.Preview(rule, from, to) }()
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
	s.handle("GET /api/v1/allocations", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		v, err := al.Postings()
		if err != nil {
			s.fail(w, err)
			return
		}
		if v == nil {
			v = []AllocationPosting{}
		}
		writeJSON(w, http.StatusOK, v)
	}))
	s.handle("POST /api/v1/allocations", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req AllocationPostRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if req.Rule == "" {
			writeError(w, http.StatusBadRequest, "rule: required, the name of an allocation rule")
			return
		}
		from, err := time.Parse(time.RFC3339, req.From)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("from %q: want the RFC 3339 start of one of the rule's periods, like 2026-11-01T00:00:00+08:00", req.From))
			return
		}
		v, existing, err := al.Post(r.Context(), req.Rule, from, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		code := http.StatusCreated
		if existing {
			code = http.StatusOK
		}
		writeJSON(w, code, v)
	}))
	s.handle("POST /api/v1/allocations/{id}/reverse", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil || id == 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no allocation posting %q", r.PathValue("id")))
			return
		}
		var req ReverseRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if req.Reason == "" {
			writeError(w, http.StatusBadRequest, "reason: required; say why the posting is reversed, it is recorded")
			return
		}
		v, err := al.Reverse(r.Context(), id, req.Reason, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}

// previewSlot takes the one allocation preview's slot, or reports it busy.
// release gives it back; call it however the preview ends.
func (s *Server) previewSlot() (release func(), ok bool) {
	select {
	case s.previewing <- struct{}{}:
		return func() { <-s.previewing }, true
	default:
		return nil, false
	}
}
