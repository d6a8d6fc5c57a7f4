package web

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"
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
	// HeldKWh is the held counter the operator checked, "26.850"
	// (optional): a retry of it is answered with the first result, and a
	// different jump held since is not released by it.
	HeldKWh string `json:"held_kwh,omitempty"`
}

// ExchangeRequest is the body of POST /api/v1/meters/{id}/exchange.
type ExchangeRequest struct {
	OldFinalKWh string `json:"old_final_kwh"` // the old meter's last counter, "1234.567"
	NewStartKWh string `json:"new_start_kwh"` // the new meter's counter when fitted, "0.000"
	// At is when the meter was exchanged (RFC 3339); empty: now. A record
	// entered after the new meter's readings began must say when, so that
	// they are told from the old meter's.
	At     string `json:"at,omitempty"`
	Reason string `json:"reason"`
}

// OperatorResult says what an operator's action did.
type OperatorResult struct {
	Meter     string `json:"meter"`
	Verdict   string `json:"verdict"`    // released | exchanged
	BilledKWh string `json:"billed_kwh"` // energy charged by the action
	Event     string `json:"event,omitempty"`
	HeldKWh   string `json:"held_kwh,omitempty"` // release: the held counter released
	// Repeated is set when the same action was applied before: this is
	// its original result, and nothing was done again.
	Repeated bool `json:"repeated,omitempty"`
}

func (s *Server) operatorRoutes() {
	s.handle("POST /api/v1/meters/{id}/release", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req ReleaseRequest
		if !decodeBody(w, r, &req) {
			return
		}
		noteAudit(r, func(n *auditNote) { n.Target, n.Reason = r.PathValue("id"), req.Reason })
		if req.Reason == "" {
			writeError(w, http.StatusBadRequest, "reason: say why the jump is real; it is kept with the charge")
			return
		}
		res, err := s.operator.Release(r.Context(), r.PathValue("id"), req, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		noteAudit(r, func(n *auditNote) { n.After = res.Verdict + ", billed " + res.BilledKWh + " kWh" })
		writeJSON(w, http.StatusOK, res)
	}))
	s.handle("POST /api/v1/meters/{id}/exchange", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req ExchangeRequest
		if !decodeBody(w, r, &req) {
			return
		}
		noteAudit(r, func(n *auditNote) { n.Target, n.Reason = r.PathValue("id"), req.Reason })
		if req.Reason == "" {
			writeError(w, http.StatusBadRequest, "reason: say what was exchanged; it is kept with the charge")
			return
		}
		res, err := s.operator.Exchange(r.Context(), r.PathValue("id"), req, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		noteAudit(r, func(n *auditNote) { n.After = res.Verdict + ", billed " + res.BilledKWh + " kWh" })
		writeJSON(w, http.StatusOK, res)
	}))
}

// decodeBody reads one JSON object into v; on failure it has answered 400
// and returns false. Each key must be one of v's json names exactly and
// appear once in its object: encoding/json alone takes the last of a
// duplicated key and matches keys case-insensitively, so a body whose
// first "amount" a person or a log reads as 1.00 could credit 99,999.00.
// The body is scanned for both before anything is decoded.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			err = fmt.Errorf("more than %d bytes", maxBody)
		}
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	if err := checkKeys(raw, reflect.TypeOf(v)); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

// checkKeys scans raw, which must be one JSON object and nothing after it,
// for a key given twice in an object and for a key of a struct that is not
// one of its fields' json names exactly, at any depth. t is the type raw is
// to be decoded into. The values themselves are left to the decoder.
func checkKeys(raw []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // a number is only skipped here: no float parsing
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return errors.New("empty; want one JSON object")
	case err != nil:
		return err
	case tok != json.Delim('{'):
		return errors.New("want one JSON object")
	}
	if err := scanObject(dec, t, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("one JSON object, nothing after it")
	}
	return nil
}

// nextToken is dec.Token inside a value, where the end of the body is an
// unfinished value, not the end of the input.
func nextToken(dec *json.Decoder) (json.Token, error) {
	tok, err := dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return tok, err
}

// scanValue scans the value that starts with tok, decoded into t (nil: a
// type whose keys are not checked).
func scanValue(dec *json.Decoder, tok json.Token, t reflect.Type, path string) error {
	switch tok {
	case json.Delim('{'):
		return scanObject(dec, t, path)
	case json.Delim('['):
		t = keyedType(t)
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; ; i++ {
			tok, err := nextToken(dec)
			if err != nil {
				return err
			}
			if tok == json.Delim(']') {
				return nil
			}
			if err := scanValue(dec, tok, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanObject scans an object's keys and values up to its closing brace,
// which the caller has read the opening of.
func scanObject(dec *json.Decoder, t reflect.Type, path string) error {
	t = keyedType(t)
	var fields map[string]reflect.Type
	var names []string
	if t != nil && t.Kind() == reflect.Struct {
		fields = make(map[string]reflect.Type)
		names = jsonFields(t, fields, nil)
	}
	seen := make(map[string]bool)
	for {
		tok, err := nextToken(dec)
		if err != nil {
			return err
		}
		if tok == json.Delim('}') {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("want a key at %q", path)
		}
		at := key
		if path != "" {
			at = path + "." + key
		}
		if seen[key] {
			return fmt.Errorf("key %q appears more than once", at)
		}
		seen[key] = true
		var vt reflect.Type
		switch {
		case fields != nil:
			ft, ok := fields[key]
			if !ok {
				for _, n := range names {
					if strings.EqualFold(n, key) {
						return fmt.Errorf("key %q: the key is %q (keys are case-sensitive)", at, strings.TrimSuffix(at, key)+n)
					}
				}
				return fmt.Errorf("unknown field %q", at)
			}
			vt = ft
		case t != nil && t.Kind() == reflect.Map:
			vt = t.Elem()
		}
		tok, err = nextToken(dec)
		if err != nil {
			return err
		}
		if err := scanValue(dec, tok, vt, at); err != nil {
			return err
		}
	}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// keyedType is t without its pointers, or nil when the decoder does not
// map keys to fields by t's shape: an interface, or a type that decodes
// itself.
func keyedType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	if p := reflect.PointerTo(t); p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) {
		return nil
	}
	return t
}

// jsonFields adds struct t's json names to fields, with the type each is
// decoded into, and returns the names in order appended to names. The
// names follow encoding/json: the tag's name, else the field's; "-" is
// skipped; an untagged embedded struct's fields are promoted.
func jsonFields(t reflect.Type, fields map[string]reflect.Type, names []string) []string {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				names = jsonFields(ft, fields, names)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := fields[name]; !dup {
			fields[name] = f.Type
			names = append(names, name)
		}
	}
	return names
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

// OverrideReader tells why a meter's relay is wanted open or closed and,
// while an operator's override holds, whose it is; false for a meter
// without a relay the gateway drives. The enforcer implements it beside
// Relayer.
type OverrideReader interface {
	Override(meter string) (OverrideView, bool)
}

// OverrideView is a relay's wanted state with its reason, and the
// operator's override behind it, if any.
type OverrideView struct {
	Desired string `json:"desired"` // closed | open
	Why     string `json:"why"`     // the reason of the desired state, in English
	// WhyCode is the reason's kind, for the pages' words: override,
	// not_tenant (a public or main meter), exhausted, may_draw.
	WhyCode string     `json:"why_code"`
	State   string     `json:"state,omitempty"` // on | off while overridden
	Actor   string     `json:"actor,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	At      *time.Time `json:"at,omitempty"`
	Until   *time.Time `json:"until,omitempty"` // nil: until set back to automatic
}

func (s *Server) relayRoutes() {
	s.handle("POST /api/v1/meters/{id}/relay", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req RelayRequest
		if !decodeBody(w, r, &req) {
			return
		}
		noteAudit(r, func(n *auditNote) { n.Target, n.Reason = r.PathValue("id"), req.Reason })
		v, err := s.relayer.SetRelay(r.Context(), r.PathValue("id"), req, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		noteAudit(r, func(n *auditNote) { n.After = "relay " + req.State + " until " + or(req.Until, "set back to auto") })
		writeJSON(w, http.StatusOK, v)
	}))
}
