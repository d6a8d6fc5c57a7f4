package web

import (
	"context"
	"encoding/json"
	"net/http"
)

// Operator carries out an operator's decisions about a meter's counter.
// The gateway implements it over its billing pipeline.
type Operator interface {
	// Release bills a quarantined jump of the meter's counter.
	Release(ctx context.Context, meterID string, req ReleaseRequest, actor string) (OperatorResult, error)
	// Exchange records a meter exchange: the old meter's final counter
	// and the new meter's starting one.
	Exchange(ctx context.Context, meterID string, req ExchangeRequest, actor string) (OperatorResult, error)
}

// ReleaseRequest is the body of POST /api/v1/meters/{id}/release.
type ReleaseRequest struct {
	Reason string `json:"reason"` // why the jump is real: kept with the charge
}

// ExchangeRequest is the body of POST /api/v1/meters/{id}/exchange.
type ExchangeRequest struct {
	OldFinalKWh string `json:"old_final_kwh"` // the old meter's last counter, "1234.567"
	NewStartKWh string `json:"new_start_kwh"` // the new meter's counter when fitted, "0.000"
	Reason      string `json:"reason"`
}

// OperatorResult says what an operator's action did.
type OperatorResult struct {
	Meter     string `json:"meter"`
	Verdict   string `json:"verdict"`    // released | exchanged
	BilledKWh string `json:"billed_kwh"` // energy charged by the action
	Event     string `json:"event,omitempty"`
}

func (s *Server) operatorRoutes() {
	s.mux.HandleFunc("POST /api/v1/meters/{id}/release", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req ReleaseRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if req.Reason == "" {
			writeError(w, http.StatusBadRequest, "reason: say why the jump is real; it is kept with the charge")
			return
		}
		res, err := s.operator.Release(r.Context(), r.PathValue("id"), req, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}))
	s.mux.HandleFunc("POST /api/v1/meters/{id}/exchange", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req ExchangeRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if req.Reason == "" {
			writeError(w, http.StatusBadRequest, "reason: say what was exchanged; it is kept with the charge")
			return
		}
		res, err := s.operator.Exchange(r.Context(), r.PathValue("id"), req, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}))
}

// decodeBody reads one JSON object with known fields only into v; on
// failure it has answered 400 and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "body: one JSON object, nothing after it")
		return false
	}
	return true
}

// Relayer takes an operator's manual relay override. The gateway
// implements it over its enforcement.
type Relayer interface {
	SetRelay(ctx context.Context, meterID string, req RelayRequest, actor string) (RelayView, error)
}

// RelayRequest is the body of POST /api/v1/meters/{id}/relay.
type RelayRequest struct {
	State  string `json:"state"`  // on | off | auto (back to the policy)
	Reason string `json:"reason"` // required for on and off: recorded with who
	Until  string `json:"until"`  // RFC 3339; empty: until set back to auto
}

func (s *Server) relayRoutes() {
	s.mux.HandleFunc("POST /api/v1/meters/{id}/relay", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req RelayRequest
		if !decodeBody(w, r, &req) {
			return
		}
		v, err := s.relayer.SetRelay(r.Context(), r.PathValue("id"), req, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}
