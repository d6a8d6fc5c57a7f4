package web

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"mallgrid/gateway/i18n"
)

// pageRoutes registers the control room's pages; who may open each is its
// line in accessRules, like every endpoint.
func (s *Server) pageRoutes() {
	s.handle("GET /{$}", http.HandlerFunc(s.dashboardPage))
	s.handle("GET /meters", http.HandlerFunc(s.metersPage))
	s.handle("GET /meters/{id}", http.HandlerFunc(s.meterPage))
	s.handle("GET /events", http.HandlerFunc(s.eventsPage))
	s.handle("POST /lang", http.HandlerFunc(s.setLang))
	s.handle("GET /words/{file}", http.HandlerFunc(s.wordsScript))
	if s.ledger != nil {
		s.handle("GET /tenants", http.HandlerFunc(s.tenantsPage))
		s.handle("GET /tenants/{tenant}", http.HandlerFunc(s.tenantPage))
		s.handle("GET /tenants/{tenant}/receipts/{entry}", http.HandlerFunc(s.receiptPage))
	}
	if s.alarms != nil {
		s.handle("GET /alarms", http.HandlerFunc(s.alarmsPage))
	}
	if s.auditLog != nil {
		s.handle("GET /audit", http.HandlerFunc(s.auditPage))
	}
	if s.finance.reports != nil || s.finance.allocations != nil {
		s.handle("GET /finance", http.HandlerFunc(s.financePage))
	}
}

// atRiskDays: an account whose credit lasts less than this at its recent
// spending is listed on the dashboard before it reaches a warning.
const atRiskDays = 3

// dashboardView is the dashboard: what the control room must look at
// first.
type dashboardView struct {
	Counts      CountsView
	Buses       []BusView
	Alarms      []AlarmView // active first, then acknowledged; newest first in each
	AlarmsOn    bool        // the gateway keeps alarms
	AtRisk      []AccountView
	CutOff      int
	Offline     []MeterView
	OfflineMore int
	Events      []EventView // newest first
	// AlarmsFailed and AccountsFailed say a list could not be read: the
	// page says so instead of showing it empty, as if all were well.
	AlarmsFailed, AccountsFailed bool
	// Uplink is the link to the group's broker (nil: none configured),
	// UplinkLine its line in the reader's language.
	Uplink     *UplinkView
	UplinkLine string
}

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request) {
	st := s.src.Status()
	d := dashboardView{Counts: st.Counts, Buses: st.Buses, AlarmsOn: s.alarms != nil, Uplink: st.Uplink}
	if st.Uplink != nil {
		d.UplinkLine = uplinkLine(s.localizer(r), st.Uplink, s.now())
	}
	if s.alarms != nil {
		for _, state := range []string{AlarmActive, AlarmAcknowledged} {
			list, err := s.alarms.List(state, 100)
			if err != nil {
				s.log.Error().Err(err).Msg("read alarms for the dashboard")
				d.AlarmsFailed = true
			}
			d.Alarms = append(d.Alarms, list...)
		}
	}
	if s.ledger != nil {
		accts, err := s.ledger.Accounts()
		if err != nil {
			s.log.Error().Err(err).Msg("read accounts for the dashboard")
			d.AccountsFailed = true
		}
		d.AtRisk = atRisk(accts)
		for _, a := range accts {
			if a.State == "cut_off" {
				d.CutOff++
			}
		}
	}
	const offlineShown = 50
	for _, m := range s.src.Meters() {
		if m.Online {
			continue
		}
		if len(d.Offline) < offlineShown {
			d.Offline = append(d.Offline, m)
		} else {
			d.OfflineMore++
		}
	}
	d.Events, _ = s.lastEvents(15)
	s.render(w, r, "dashboard", "nav.dashboard", d)
}

// lastEvents returns the newest n events, newest first, and the newest id.
func (s *Server) lastEvents(n int) ([]EventView, uint64) {
	if s.events == nil {
		return nil, 0
	}
	evs, err := s.events.Last(n)
	if err != nil {
		s.log.Error().Err(err).Msg("read events for a page")
	}
	var last uint64
	if len(evs) > 0 {
		last = evs[len(evs)-1].ID
	}
	slices.Reverse(evs)
	return evs, last
}

// atRisk lists the accounts the control room must watch, in the order
// power goes off: cut off now, then by the time left before a cut-off (a
// scheduled one, else the credit left at recent spending), at most 50.
func atRisk(accts []AccountView) []AccountView {
	var out []AccountView
	for _, a := range accts {
		if a.Archived {
			continue
		}
		low := a.CreditLeft != nil && *a.CreditLeft < atRiskDays*86400
		if a.State != "normal" || low || a.PendingCutOff != nil {
			out = append(out, a)
		}
	}
	// left is the seconds until power goes off; cut off already: -1; a
	// protected account, which is not cut, after every other.
	left := func(a AccountView) int64 {
		switch {
		case a.State == "cut_off":
			return -1
		case a.Protected != "":
			return 1 << 62
		case a.PendingCutOff != nil:
			return 0 // due now or at a known time, before any reckoning
		case a.CreditLeft != nil:
			return *a.CreditLeft
		}
		return 1 << 61
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if la, lb := left(a), left(b); la != lb {
			return la < lb
		}
		if a.PendingCutOff != nil && b.PendingCutOff != nil && !a.PendingCutOff.Equal(*b.PendingCutOff) {
			return a.PendingCutOff.Before(*b.PendingCutOff)
		}
		return a.Tenant < b.Tenant
	})
	if len(out) > 50 {
		out = out[:50]
	}
	return out
}

// metersView is the meters page: the list itself is fetched by app.js
// from GET /api/v1/meters a page at a time, filtered and sorted there.
type metersView struct {
	Buses []string
	Roles []string
	Total int
}

func (s *Server) metersPage(w http.ResponseWriter, r *http.Request) {
	st := s.src.Status()
	d := metersView{Total: st.Counts.Meters}
	for _, b := range st.Buses {
		d.Buses = append(d.Buses, b.Name)
	}
	d.Roles = []string{"tenant", "public", "main"}
	s.render(w, r, "meters", "nav.meters", d)
}

// meterView is one meter's page.
type meterView struct {
	Meter    MeterView
	Polling  *PollingView
	Relay    *OverrideView // nil: the meter has no relay the gateway drives
	Account  *AccountView
	Quantity []string // the live values shown, in order
	Counters []string // the rate counters shown, in order
}

// liveQuantities are the values a meter page shows, in this order, when
// the meter gives them.
var liveQuantities = []string{"power", "power_a", "power_b", "power_c", "voltage_a", "voltage_b", "voltage_c",
	"current_a", "current_b", "current_c", "pf", "pf_a", "pf_b", "pf_c", "frequency", "reactive_power", "apparent_power",
	"residual_current", "temp_a", "temp_b", "temp_c", "temp_n"}

// energyQuantities are the rate counters a meter page shows below the
// billing counter, when the meter gives them.
var energyQuantities = []string{"sharp_kwh", "peak_kwh", "flat_kwh", "valley_kwh", "export_kwh"}

func (s *Server) meterPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var d meterView
	found := false
	for _, m := range s.src.Meters() {
		if m.ID == id {
			d.Meter, found = m, true
			break
		}
	}
	if !found {
		s.notFoundPage(w, r, id)
		return
	}
	for _, p := range s.src.Status().Polling {
		if p.Meter == id {
			d.Polling = &p
			break
		}
	}
	if or, ok := s.relayer.(OverrideReader); ok {
		if v, drives := or.Override(id); drives {
			d.Relay = &v
		}
	}
	if s.ledger != nil && d.Meter.Tenant != "" {
		if a, err := s.ledger.Account(d.Meter.Tenant); err == nil {
			d.Account = &a
		}
	}
	for _, q := range liveQuantities {
		if _, ok := d.Meter.Values[q]; ok {
			d.Quantity = append(d.Quantity, q)
		}
	}
	for _, q := range energyQuantities {
		if _, ok := d.Meter.Energy[q]; ok {
			d.Counters = append(d.Counters, q)
		}
	}
	s.render(w, r, "meter", "page.meter", d)
}

// tenantsView is the tenants page: every account, searchable.
type tenantsView struct {
	Q        string
	Accounts []AccountView
	Shops    map[string]string // each tenant's meter ids, for the search box
}

func (s *Server) tenantsPage(w http.ResponseWriter, r *http.Request) {
	accts, err := s.ledger.Accounts()
	if err != nil {
		s.fail(w, err)
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	shops := s.shops()
	d := tenantsView{Q: q, Shops: shops}
	for _, a := range accts {
		if q == "" || containsFold(a.Tenant, q) || containsFold(a.Name, q) || containsFold(shops[a.Tenant], q) {
			d.Accounts = append(d.Accounts, a)
		}
	}
	s.render(w, r, "tenants", "nav.tenants", d)
}

// shops maps each tenant to its meters' ids, which the shop floor knows
// tenants by as often as by name.
func (s *Server) shops() map[string]string {
	out := map[string]string{}
	for _, m := range s.src.Meters() {
		if m.Tenant != "" {
			out[m.Tenant] += " " + m.ID
		}
	}
	return out
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// tenantView is one tenant's page.
type tenantView struct {
	Account   AccountView
	Meters    []tenantMeter
	Entries   []EntryView // newest first, within From … To
	From, To  string      // the ledger's date range, YYYY-MM-DD in the site's zone
	More      bool        // the range holds more entries than shown
	RangeNote string
	// Statements are the tenant's issued statements, newest first, for a
	// role that may read them; StatementsFailed says they could not be
	// read. LinkBase ("https://host") makes a statement's signed link a
	// whole URL to hand to the tenant.
	Statements       []StatementInfo
	StatementsFailed bool
	LinkBase         string
}

// tenantMeter is a tenant's meter with its relay's override.
type tenantMeter struct {
	Meter MeterView
	Relay *OverrideView
}

// maxLedgerRows bounds the ledger a tenant page shows; the API pages
// further.
const maxLedgerRows = 500

func (s *Server) tenantPage(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	a, err := s.ledger.Account(tenant)
	if err != nil {
		if isNotFound(err) {
			s.notFoundPage(w, r, tenant)
			return
		}
		s.fail(w, err)
		return
	}
	d := tenantView{Account: a}
	for _, m := range s.src.Meters() {
		if m.Tenant != tenant {
			continue
		}
		tm := tenantMeter{Meter: m}
		if or, ok := s.relayer.(OverrideReader); ok {
			if v, drives := or.Override(m.ID); drives {
				tm.Relay = &v
			}
		}
		d.Meters = append(d.Meters, tm)
	}
	now := s.now().In(s.location())
	from, to := now.AddDate(0, 0, -30), now
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		if t, err := time.ParseInLocation(time.DateOnly, v, s.location()); err == nil {
			from = t
		}
	}
	if v := q.Get("to"); v != "" {
		if t, err := time.ParseInLocation(time.DateOnly, v, s.location()); err == nil {
			to = t.AddDate(0, 0, 1) // through the end of that day
		}
	}
	d.From, d.To = from.Format(time.DateOnly), to.Add(-time.Nanosecond).Format(time.DateOnly)
	d.Entries, d.More, err = s.entriesBetween(tenant, from, to)
	if err != nil {
		s.fail(w, err)
		return
	}
	d.Entries = entriesFor(principalOf(r).Role, d.Entries)
	s.tenantStatements(r, tenant, &d)
	s.render(w, r, "tenant", "page.tenant", d)
}

// entriesBetween reads tenant's ledger newest first and keeps the entries
// posted in [from, to), at most maxLedgerRows.
func (s *Server) entriesBetween(tenant string, from, to time.Time) ([]EntryView, bool, error) {
	var out []EntryView
	var before uint64
	for {
		page, err := s.ledger.Entries(tenant, before, 200)
		if err != nil {
			return nil, false, err
		}
		for _, e := range page {
			if e.Time.Before(from) {
				return out, false, nil
			}
			if !e.Time.Before(to) {
				continue
			}
			if len(out) == maxLedgerRows {
				return out, true, nil
			}
			out = append(out, e)
		}
		if len(page) < 200 {
			return out, false, nil
		}
		before = page[len(page)-1].ID
	}
}

func (s *Server) location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// receiptView is a printable top-up receipt.
type receiptView struct {
	Account AccountView
	Entry   EntryView
}

func (s *Server) receiptPage(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	id, err := strconv.ParseUint(r.PathValue("entry"), 10, 64)
	if err != nil || id == 0 {
		s.notFoundPage(w, r, r.PathValue("entry"))
		return
	}
	a, err := s.ledger.Account(tenant)
	if err != nil {
		s.notFoundPage(w, r, tenant)
		return
	}
	page, err := s.ledger.Entries(tenant, id+1, 1)
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(page) == 0 || page[0].ID != id || page[0].Kind != "topup" {
		// The id names an entry that is not a top-up of this tenant's (or
		// none): it has no receipt, so its number would name nothing.
		s.notFoundPage(w, r, s.localizer(r).T("receipt.entry", "id", strconv.FormatUint(id, 10)))
		return
	}
	s.render(w, r, "receipt", "page.receipt", receiptView{Account: a, Entry: entriesFor(principalOf(r).Role, page)[0]})
}

// alarmsView is the alarms page.
type alarmsView struct {
	State  string
	States []string
	Kind   string   // the kind asked for; "" every kind
	Kinds  []string // the kinds of alarm, for the filter
	Where  string   // a meter, tenant or bus; "" anywhere
	Alarms []AlarmView
	Older  uint64 // before= of the next page; 0: no older match
	// Scanned is set when the page stopped at its reading bound before it
	// was full.
	Scanned bool
}

// AlarmPager walks back through every alarm, newest first, for the
// alarms page's filters and paging; the gateway implements it beside
// Alarms.
type AlarmPager interface {
	EachAlarmBefore(id uint64, fn func(AlarmView) bool) error
	Kinds() []string
}

// Bounds of one alarms page, as of the events page.
const (
	alarmsPerPage = 200
	alarmsScanned = 50_000
)

func (s *Server) alarmsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && state != AlarmActive && state != AlarmAcknowledged && state != AlarmCleared {
		state = ""
	}
	d := alarmsView{State: state, States: []string{AlarmActive, AlarmAcknowledged, AlarmCleared},
		Kind: q.Get("kind"), Where: strings.TrimSpace(q.Get("where"))}
	before, _ := strconv.ParseUint(q.Get("before"), 10, 64)
	match := func(a AlarmView) bool {
		return (d.State == "" || a.State == d.State) && (d.Kind == "" || a.Kind == d.Kind) &&
			(d.Where == "" || strings.EqualFold(a.Meter, d.Where) || strings.EqualFold(a.Tenant, d.Where) || strings.EqualFold(a.Bus, d.Where))
	}
	pager, ok := s.alarms.(AlarmPager)
	if !ok {
		list, err := s.alarms.List(state, 1000)
		if err != nil {
			s.fail(w, err)
			return
		}
		kinds := map[string]bool{}
		for _, a := range list {
			kinds[a.Kind] = true
			if match(a) {
				d.Alarms = append(d.Alarms, a)
			}
		}
		d.Kinds = slices.Sorted(maps.Keys(kinds))
		s.render(w, r, "alarms", "nav.alarms", d)
		return
	}
	d.Kinds = pager.Kinds()
	scanned := 0
	err := pager.EachAlarmBefore(before, func(a AlarmView) bool {
		scanned++
		if match(a) {
			if len(d.Alarms) == alarmsPerPage {
				d.Older = d.Alarms[len(d.Alarms)-1].ID
				return false
			}
			d.Alarms = append(d.Alarms, a)
		}
		if scanned >= alarmsScanned {
			d.Older, d.Scanned = a.ID, true
			return false
		}
		return true
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, r, "alarms", "nav.alarms", d)
}

// EventPager walks back through the stored events, newest first, for the
// events page's filters and paging; the gateway's event hub implements it.
type EventPager interface {
	EachBefore(id uint64, fn func(EventView) bool) error
}

// eventsView is the events page: the newest events that match the
// filters, a page at a time.
type eventsView struct {
	Kind, Meter, Tenant string
	From, To            string      // YYYY-MM-DD in the site's zone, as asked
	Kinds               []string    // every kind the gateway stores, for the filter
	Events              []EventView // newest first
	Older               uint64      // before= of the next page; 0: no older match
	Scanned             bool        // the scan stopped at its bound before a page was full
	Live                bool        // no filter: the stream adds new events on top
}

// Bounds of one events page: how many matches it shows and how many
// events it reads back to find them.
const (
	eventsPerPage = 200
	eventsScanned = 50_000
)

func (s *Server) eventsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := eventsView{Kind: q.Get("kind"), Meter: strings.TrimSpace(q.Get("meter")), Tenant: strings.TrimSpace(q.Get("tenant")),
		From: q.Get("from"), To: q.Get("to")}
	before, _ := strconv.ParseUint(q.Get("before"), 10, 64)
	var from, to time.Time
	if t, err := time.ParseInLocation(time.DateOnly, d.From, s.location()); err == nil {
		from = t
	}
	if t, err := time.ParseInLocation(time.DateOnly, d.To, s.location()); err == nil {
		to = t.AddDate(0, 0, 1)
	}
	d.Live = d.Kind == "" && d.Meter == "" && d.Tenant == "" && from.IsZero() && to.IsZero() && before == 0
	d.Kinds = eventKinds()
	pager, ok := s.events.(EventPager)
	if !ok {
		evs, _ := s.lastEvents(eventsPerPage)
		d.Events = evs
		s.render(w, r, "events", "nav.events", d)
		return
	}
	scanned := 0
	err := pager.EachBefore(before, func(e EventView) bool {
		scanned++
		// Events are stored in commit order, which is time order but for
		// a wall clock stepped back: an hour's margin before stopping.
		if !from.IsZero() && e.Time.Before(from.Add(-time.Hour)) {
			return false
		}
		match := (d.Kind == "" || e.Kind == d.Kind) && (d.Meter == "" || strings.EqualFold(e.Meter, d.Meter)) &&
			(d.Tenant == "" || strings.EqualFold(e.Tenant, d.Tenant)) &&
			(from.IsZero() || !e.Time.Before(from)) && (to.IsZero() || e.Time.Before(to))
		if match {
			if len(d.Events) == eventsPerPage {
				d.Older = d.Events[len(d.Events)-1].ID
				return false
			}
			d.Events = append(d.Events, e)
		}
		if scanned >= eventsScanned {
			d.Older, d.Scanned = e.ID, true
			return false
		}
		return true
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	s.render(w, r, "events", "nav.events", d)
}

// eventKinds are the kinds the events filter offers: every kind with a
// word in the catalog.
func eventKinds() []string {
	var out []string
	for _, id := range i18n.IDs() {
		if k, ok := strings.CutPrefix(id, "event."); ok {
			out = append(out, k)
		}
	}
	return out
}

// auditView is the admin's audit page.
type auditView struct {
	Actor, Action, Target, From, To string
	Records                         []AuditEntry
	Problem                         string
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := auditView{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), From: q.Get("from"), To: q.Get("to")}
	aq := AuditQuery{Actor: d.Actor, Action: d.Action, Target: d.Target, Limit: 200}
	for _, f := range []struct {
		v   string
		dst *time.Time
		add int
	}{{d.From, &aq.From, 0}, {d.To, &aq.To, 1}} {
		if f.v == "" {
			continue
		}
		t, err := time.ParseInLocation(time.DateOnly, f.v, s.location())
		if err != nil {
			d.Problem = f.v
			continue
		}
		*f.dst = t.AddDate(0, 0, f.add)
	}
	recs, err := s.auditLog.Records(aq)
	if err != nil {
		s.fail(w, err)
		return
	}
	d.Records = recs
	s.render(w, r, "audit", "nav.audit", d)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
