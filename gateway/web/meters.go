package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"mallgrid/drivers/meter"
)

// meterRoutes registers the meter list and a meter's view, and the live
// stream of their changes when the Source counts them.
func (s *Server) meterRoutes() {
	s.handle("GET /api/v1/meters", http.HandlerFunc(s.apiMeters))
	s.handle("GET /api/v1/meters/{id}", http.HandlerFunc(s.apiMeter))
	if ch, ok := s.src.(MeterChanges); ok {
		s.handle("GET /api/v1/meters/stream", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
			s.apiMeterStream(w, r, ch)
		}))
	}
}

// maxMeterPage is the most meters one page of the list may ask for.
const maxMeterPage = 1000

// meterQuery is what GET /api/v1/meters asks for: a filter, an order and
// a page of the matching meters.
type meterQuery struct {
	q                string // lower case; matched in id, tenant id and tenant name
	bus, role, relay string
	online           *bool
	sortBy           string
	desc             bool
	offset, limit    int // limit 0: every match
}

// meterParams are the list's parameters, for the reason of a 400.
var meterParams = []string{"q", "bus", "role", "online", "relay", "sort", "offset", "limit"}

// parseMeterQuery reads the list's parameters. An unknown or repeated
// parameter or a bad value is an error whose text is the 400's reason.
func parseMeterQuery(v url.Values) (meterQuery, error) {
	q := meterQuery{}
	for k, vals := range v {
		if !slices.Contains(meterParams, k) {
			return q, fmt.Errorf("unknown parameter %q; the meter list takes %s", k, strings.Join(meterParams, ", "))
		}
		if len(vals) > 1 {
			return q, fmt.Errorf("parameter %q given %d times; give it once", k, len(vals))
		}
	}
	q.q = strings.ToLower(strings.TrimSpace(v.Get("q")))
	q.bus = v.Get("bus")
	if v.Has("bus") && q.bus == "" {
		return q, fmt.Errorf("bus is empty; give a bus's name or leave it out")
	}
	q.role = v.Get("role")
	switch q.role {
	case "", "tenant", "public", "main":
	default:
		return q, fmt.Errorf("role %q: want tenant, public or main", q.role)
	}
	if o := v.Get("online"); v.Has("online") {
		b, err := strconv.ParseBool(o)
		if err != nil || (o != "true" && o != "false") {
			return q, fmt.Errorf("online %q: want true or false", o)
		}
		q.online = &b
	}
	q.relay = v.Get("relay")
	switch q.relay {
	case "", "open", "closed", "unknown":
	default:
		return q, fmt.Errorf("relay %q: want open, closed or unknown", q.relay)
	}
	if by := v.Get("sort"); by != "" {
		q.sortBy, q.desc = strings.TrimPrefix(by, "-"), strings.HasPrefix(by, "-")
		if _, ok := meterOrders[q.sortBy]; !ok {
			return q, fmt.Errorf("sort %q: want id, tenant, bus, power, import or last_seen, with - before it for descending", by)
		}
	} else if v.Has("sort") {
		return q, fmt.Errorf("sort is empty; give id, tenant, bus, power, import or last_seen, or leave it out")
	}
	var err error
	if q.offset, err = intParam(v, "offset", 0, 1<<31-1); err != nil {
		return q, err
	}
	if q.limit, err = intParam(v, "limit", 1, maxMeterPage); err != nil {
		return q, err
	}
	return q, nil
}

// intParam reads parameter name as an integer in lo..hi; 0 when absent.
func intParam(v url.Values, name string, lo, hi int) (int, error) {
	if !v.Has(name) {
		return 0, nil
	}
	n, err := strconv.Atoi(v.Get(name))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q: want a whole number from %d to %d", name, v.Get(name), lo, hi)
	}
	return n, nil
}

// match reports whether m passes the query's filters.
func (q meterQuery) match(m *MeterView) bool {
	switch {
	case q.bus != "" && m.Bus != q.bus,
		q.role != "" && m.Role != q.role,
		q.online != nil && m.Online != *q.online,
		q.relay != "" && m.Relay.Actual != q.relay:
		return false
	}
	if q.q == "" {
		return true
	}
	for _, s := range []string{m.ID, m.Tenant, m.TenantName} {
		if strings.Contains(strings.ToLower(s), q.q) {
			return true
		}
	}
	return false
}

// sortKey is a meter's place in one order; ok is false for a meter that
// has no such value (no tenant, no reading yet), which sorts last either
// way: the meters that have one are what the order is asked for.
type sortKey struct {
	s  string
	n  int64
	ok bool
}

// meterOrders are the list's orders. Ties go by meter id.
var meterOrders = map[string]func(m *MeterView) sortKey{
	"id":  func(m *MeterView) sortKey { return sortKey{s: m.ID, ok: true} },
	"bus": func(m *MeterView) sortKey { return sortKey{s: m.Bus, ok: true} },
	// A tenant by the name the control room knows the shop by, else its id.
	"tenant": func(m *MeterView) sortKey {
		name := cmp.Or(m.TenantName, m.Tenant)
		return sortKey{s: strings.ToLower(name), ok: name != ""}
	},
	"power": func(m *MeterView) sortKey {
		v, ok := m.Values[string(meter.Power)]
		return sortKey{n: int64(v.Value * 1000), ok: ok} // mW: whole numbers order as the values do
	},
	"import": func(m *MeterView) sortKey {
		wh, err := meter.ParseKWh(m.ImportKWh)
		return sortKey{n: wh, ok: err == nil && m.ImportKWh != ""}
	},
	"last_seen": func(m *MeterView) sortKey {
		if m.Stats.LastSeen == nil {
			return sortKey{}
		}
		return sortKey{n: m.Stats.LastSeen.UnixNano(), ok: true}
	},
}

// apply filters, orders and pages ms; total is the matches before paging.
func (q meterQuery) apply(ms []MeterView) (page []*MeterView, total int) {
	out := make([]*MeterView, 0, len(ms))
	for i := range ms {
		if q.match(&ms[i]) {
			out = append(out, &ms[i])
		}
	}
	if key := meterOrders[q.sortBy]; key != nil {
		keys := make(map[*MeterView]sortKey, len(out))
		for _, m := range out {
			keys[m] = key(m)
		}
		slices.SortStableFunc(out, func(a, b *MeterView) int {
			ka, kb := keys[a], keys[b]
			if ka.ok != kb.ok {
				if ka.ok {
					return -1
				}
				return 1
			}
			c := cmp.Or(cmp.Compare(ka.n, kb.n), strings.Compare(ka.s, kb.s))
			if q.desc {
				c = -c
			}
			return cmp.Or(c, strings.Compare(a.ID, b.ID))
		})
	}
	total = len(out)
	out = out[min(q.offset, total):]
	if q.limit > 0 && len(out) > q.limit {
		out = out[:q.limit]
	}
	return out, total
}

// apiMeters is GET /api/v1/meters: a JSON array of MeterView, every meter
// in configuration order without parameters; else those that match q,
// bus, role, online and relay, in the order of sort, from offset, at most
// limit. X-Total-Count is the number of matches before paging.
func (s *Server) apiMeters(w http.ResponseWriter, r *http.Request) {
	q, err := parseMeterQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	page, total := q.apply(s.src.Meters())
	var body bytes.Buffer
	body.Grow(len(page) * 1200)
	if err := writeMeterArray(&body, page); err != nil {
		s.log.Error().Err(err).Msg("api: encode the meter list")
		writeError(w, http.StatusInternalServerError, "the meter list could not be encoded; see the gateway's log")
		return
	}
	body.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	_, _ = w.Write(body.Bytes()) // a write error means the client left
}

// writeMeterArray writes ms as a compact JSON array, each meter from the
// encoding its Source keeps where it keeps one.
func writeMeterArray(b *bytes.Buffer, ms []*MeterView) error {
	b.WriteByte('[')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		enc, err := encodedMeter(m)
		if err != nil {
			return err
		}
		b.Write(enc)
	}
	b.WriteByte(']')
	return nil
}

// encodedMeter is m's list JSON (ListView): the Source's encoding, or
// json.Marshal's.
func encodedMeter(m *MeterView) ([]byte, error) {
	if len(m.Encoded) > 0 {
		return m.Encoded, nil
	}
	enc, err := json.Marshal(m.ListView())
	if err != nil {
		return nil, fmt.Errorf("encode meter %s: %w", m.ID, err)
	}
	return enc, nil
}

func (s *Server) apiMeter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, m := range s.src.Meters() {
		if m.ID == id {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no meter %q", id))
}
