package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/i18n"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// StatementStore is the part of the store the statement service uses;
// *store.DB implements it.
type StatementStore interface {
	LedgerTail
	PutStatement(s store.StoredStatement) (stored store.StoredStatement, existing bool, err error)
	Statement(tenant, month string) (store.StoredStatement, error)
	StatementMonths(tenant string) ([]string, error)
	HasStatement(tenant, month string) (bool, error)
	StatementKey() ([]byte, error)
	// FirstEntry is the account's earliest-dated entry (among its
	// first by id: ids are not in time order); ok false for none.
	FirstEntry(account string) (e store.Entry, ok bool, err error)
}

// Timing of the statements.
const (
	// DefaultLinkTTL is how long a tenant's link stays valid from the
	// moment staff list it.
	DefaultLinkTTL = 90 * 24 * time.Hour
	// IssueDelay is how long after a month ends its statements are
	// issued: the month's last charges, posted at the end of the bus cycle
	// after their slot, land first. A share of public energy is posted only
	// PostingSettle after its period ends, and is dated then (in the next
	// month: see the README), so it is not waited for. Entries dated in the
	// month posted later still are listed on the next month's statement as
	// late. Run also waits this long after it starts (StartDelay).
	IssueDelay = time.Hour
	// issueCatchUp is how many months back a gateway that was down (or new
	// to statements) issues what is missing.
	issueCatchUp = 12
	// maxLater bounds the entries after its month a stored statement
	// lists for the next one to start from: an hour's worth (a month's
	// issue an hour after its end) is a few a meter.
	maxLater = 20_000
	// issueCheck is the longest wait between two looks at what is due, so
	// that a clock set forward is noticed within it.
	issueCheck = time.Hour
)

// Statements issues the tenants' monthly statements on schedule (Run),
// keeps them in the store, and serves them to staff and to tenants' signed
// links (web.Statements).
type Statements struct {
	DB       StatementStore
	Config   *config.Config
	Renderer *StatementRenderer
	Now      func() time.Time
	Log      zerolog.Logger
	// LinkTTL is how long a link from List stays valid; 0 means
	// DefaultLinkTTL.
	LinkTTL time.Duration
	// Ready, when set, says every bus has committed a cycle since the
	// start (live.Picture.CycledSince): a gateway that was stopped posts
	// each meter's open charge, dated by its last reading, at its bus's
	// first cycle, and a month's statement issued before that would leave
	// the charge to the next month's late lines. Run issues nothing until
	// Ready is true, looking every second, or StartDelay has passed (a bus
	// that cannot be read: its charges come late whenever they come; an
	// MQTT bus, whose meters upload each on its own and which has no
	// whole cycle to wait for).
	Ready func() bool
	// StartDelay bounds Run's wait for Ready; 0 means IssueDelay.
	StartDelay time.Duration
	// drawn keeps the PDFs of issued statements last drawn (pdfKept):
	// one costs 30-50 ms and 28 MB — fpdf reads the embedded font
	// afresh for each document and has no way to share a parsed font —
	// while an issued statement never changes, and a tenant's link is
	// opened, and shared, more than once.
	drawn pdfCache
	// onRefused, when set, is called with each statement IssueDue
	// refuses to store (its opening is not the closing before); tests
	// hook it.
	onRefused func(st Statement)
}

var _ web.Statements = (*Statements)(nil)

func (s *Statements) loc() *time.Location {
	if s.Config.Location != nil {
		return s.Config.Location
	}
	return time.UTC
}

// Run issues every statement due once the buses have cycled after it
// starts (Ready, at most StartDelay), then each
// month IssueDelay after it ends, until ctx is cancelled (it then returns
// nil). A failed attempt is logged and tried again at the next look, within
// issueCheck.
func (s *Statements) Run(ctx context.Context) error {
	delay := s.StartDelay
	if delay <= 0 {
		delay = IssueDelay
	}
	start := time.NewTimer(delay)
	defer start.Stop()
	look := time.NewTicker(time.Second)
	defer look.Stop()
wait:
	for s.Ready == nil || !s.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-start.C:
			break wait
		case <-look.C:
		}
	}
	for {
		now := s.Now()
		if n, err := s.IssueDue(ctx, now); errors.Is(err, context.Canceled) {
			return nil
		} else if err != nil {
			s.Log.Error().Err(err).Msg("statements: issue")
		} else if n > 0 {
			s.Log.Info().Int("statements", n).Msg("statements issued")
		}
		wait := min(s.nextDue(now).Sub(now), issueCheck)
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// nextDue is when the statements of the month holding now are due.
func (s *Statements) nextDue(now time.Time) time.Time {
	from, _, _ := StatementMonth(now.In(s.loc()).Format("2006-01"), s.loc())
	return from.AddDate(0, 1, 0).Add(IssueDelay)
}

// IssueDue issues, for every configured tenant, each statement due at now
// and not yet stored: the months ended at least IssueDelay ago, from the
// month of the tenant's first ledger entry (a tenant without one has no
// statement) and back at most issueCatchUp months. It returns how many it
// stored. Issuing again stores nothing new: a statement once stored stays
// as it was issued. It stops with ctx's error when ctx ends, having stored
// none of the months it was building.
func (s *Statements) IssueDue(ctx context.Context, now time.Time) (int, error) {
	loc := s.loc()
	due, _, _ := StatementMonth(now.In(loc).Format("2006-01"), loc)
	due = due.AddDate(0, -1, 0) // the last month ended
	if now.Before(due.AddDate(0, 1, 0).Add(IssueDelay)) {
		due = due.AddDate(0, -1, 0)
	}
	oldest := due.AddDate(0, -(issueCatchUp - 1), 0)
	// The months with a tenant's statement missing, built in one pass over
	// the ledger (after downtime, up to issueCatchUp of them).
	missing := map[string][]string{} // month → tenants without its statement
	plans := map[statementKey]issuePlan{}
	for _, t := range s.Config.Tenants {
		first, ok, err := s.DB.FirstEntry(t.ID)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		start, _, _ := StatementMonth(first.Time.In(loc).Format("2006-01"), loc)
		if start.Before(oldest) {
			start = oldest
		}
		var todo []time.Time
		for m := start; !m.After(due); m = m.AddDate(0, 1, 0) {
			has, err := s.DB.HasStatement(t.ID, m.Format("2006-01"))
			if err != nil {
				return 0, err
			}
			if !has {
				todo = append(todo, m)
			}
		}
		for i, m := range todo {
			month := m.Format("2006-01")
			missing[month] = append(missing[month], t.ID)
			var plan issuePlan
			if i == 0 || !todo[i-1].Equal(m.AddDate(0, -1, 0)) { // the month before was stored before this run
				prev, err := s.issued(t.ID, m.AddDate(0, -1, 0).Format("2006-01"))
				switch {
				case err == nil && prev.Statement.Through != 0:
					p := prev.Statement
					plan.prev, plan.lateAfter = &p, p.Through
					// A month followed by missing ones (downtime) is built
					// with them in the whole-ledger pass, from the same
					// read: months chained from reads made at different
					// times would each take the entries posted between.
					nextMissing := i+1 < len(todo) && todo[i+1].Equal(m.AddDate(0, 1, 0))
					plan.chain = !p.LaterOmitted && !nextMissing
				case err != nil && !errors.Is(err, store.ErrNoStatement):
					return 0, err
				}
			}
			plans[statementKey{t.ID, month}] = plan
		}
	}
	if len(missing) == 0 {
		return 0, nil
	}
	months := slices.Sorted(maps.Keys(missing))
	issued := 0
	// Tenants one of whose months was refused in this run: their later
	// months are not issued either — one issued now would list as late
	// the entries the refused month lists when it is issued at last.
	refused := map[string]bool{}
	issue := func(st Statement) error {
		if refused[st.Tenant] {
			s.Log.Warn().Str("tenant", st.Tenant).Str("month", st.Month).Msg("statements: a month before was refused; not issued")
			return nil
		}
		// A statement whose next month is issued in this run too, or that
		// was made long after its month (Later holding months of entries),
		// leaves no Later to start from: its next month reads the whole
		// ledger instead of fetching all those entries one by one. Through
		// stays: the next month lists the entries posted after it, dated
		// before, as late.
		next := st.To.Format("2006-01")
		if slices.Contains(missing[next], st.Tenant) || len(st.Later) > maxLater {
			st.Later, st.LaterOmitted = nil, true
		}
		if err := st.Reconcile(); err != nil { // computed to add up: a failure here is a bug, and is not issued
			return fmt.Errorf("report: statement %s of %s does not add up: %w", st.Month, st.Tenant, err)
		}
		// The chain from month to month: a tenant's statement opens with
		// the balance the one before closed with. One that does not is not
		// issued (it is logged, and tried again at the next look); the
		// other tenants' are.
		// The statement before must add up too: a month chained from it
		// takes its closing as its opening.
		if p := plans[statementKey{st.Tenant, st.Month}].prev; p != nil && (st.Opening != p.Closing || p.Reconcile() != nil) {
			s.Log.Error().Str("tenant", st.Tenant).Str("month", st.Month).Str("opening", st.Opening.String()).
				Str("closing_before", p.Closing.String()).AnErr("before_adds_up", p.Reconcile()).
				Msg("statements: opening is not the closing of the month before; not issued")
			refused[st.Tenant] = true
			if s.onRefused != nil {
				s.onRefused(st)
			}
			return nil
		}
		figures, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if _, existing, err := s.DB.PutStatement(store.StoredStatement{Tenant: st.Tenant, Month: st.Month, Generated: now, Figures: figures}); err != nil {
			return fmt.Errorf("report: store statement %s of %s: %w", st.Month, st.Tenant, err)
		} else if !existing {
			issued++
		}
		return nil
	}
	// Months a tenant starts without the statement before (its first, or
	// the first after an older gateway's): from the whole ledger, in one
	// pass for all of them.
	var whole []string
	for _, month := range months {
		for _, t := range missing[month] {
			if !plans[statementKey{t, month}].chain {
				whole = append(whole, month)
				break
			}
		}
	}
	if len(whole) > 0 {
		lateAfter := map[statementKey]uint64{}
		for k, p := range plans {
			lateAfter[k] = p.lateAfter
		}
		built, err := buildMonths(ctx, s.DB, s.Config, whole, lateAfter)
		if err != nil {
			return 0, err
		}
		for j, month := range whole {
			for _, st := range built[j] {
				if k := (statementKey{st.Tenant, month}); slices.Contains(missing[month], st.Tenant) && !plans[k].chain {
					if err := issue(st); err != nil {
						return issued, err
					}
				}
			}
		}
	}
	// The others, month by month, from the statement before (issued above
	// or earlier) and the entries since.
	for _, month := range months {
		var prev []Statement
		for _, t := range missing[month] {
			if p := plans[statementKey{t, month}]; p.chain {
				prev = append(prev, *p.prev)
			}
		}
		if len(prev) == 0 {
			continue
		}
		built, err := buildNext(ctx, s.DB, s.Config, month, prev)
		if err != nil {
			return issued, err
		}
		for _, st := range built {
			if err := issue(st); err != nil {
				return issued, err
			}
		}
	}
	return issued, nil
}

// statementKey names one tenant's statement of one month.
type statementKey struct{ tenant, month string }

// issuePlan is how IssueDue builds one missing statement.
type issuePlan struct {
	// prev is the statement of the month before, stored before this run
	// (with its Through); nil when there is none, or it is built in this
	// run too (from the same read of the ledger).
	prev *Statement
	// lateAfter is prev's Through (StatementInput.LateAfter).
	lateAfter uint64
	// chain: built from prev and the entries since (buildNext), not in
	// the whole-ledger pass.
	chain bool
}

// List returns tenant's issued statements, newest first, each with a link
// valid for LinkTTL from now.
func (s *Statements) List(tenant string) ([]web.StatementInfo, error) {
	if _, ok := s.Config.Tenant(tenant); !ok {
		return nil, fmt.Errorf("%w: tenant %q", web.ErrNotFound, tenant)
	}
	months, err := s.DB.StatementMonths(tenant)
	if err != nil {
		return nil, err
	}
	key, err := s.DB.StatementKey()
	if err != nil {
		return nil, err
	}
	ttl := s.LinkTTL
	if ttl <= 0 {
		ttl = DefaultLinkTTL
	}
	expires := s.Now().Add(ttl).Truncate(time.Second)
	var out []web.StatementInfo
	for _, month := range slices.Backward(months) {
		is, err := s.issued(tenant, month)
		if err != nil {
			return nil, err
		}
		token, err := SignLink(key, Link{Tenant: tenant, Month: month, Expires: expires})
		if err != nil {
			return nil, err
		}
		base := "/api/v1/accounts/" + url.PathEscape(tenant) + "/statements/" + month
		out = append(out, web.StatementInfo{Month: month, Generated: is.Generated, Opening: is.Statement.Opening.String(),
			Closing: is.Statement.Closing.String(), HTML: base + "?format=html", PDF: base + "?format=pdf",
			Link: "/s/" + token, LinkExpires: expires})
	}
	return out, nil
}

// issued returns tenant's stored statement of month.
func (s *Statements) issued(tenant, month string) (Issue, error) {
	st, err := s.DB.Statement(tenant, month)
	if err != nil {
		return Issue{}, err
	}
	var figures Statement
	if err := json.Unmarshal(st.Figures, &figures); err != nil {
		return Issue{}, fmt.Errorf("report: stored statement %s of %s: %w", month, tenant, err)
	}
	return Issue{Statement: figures, Generated: st.Generated, Issued: true}, nil
}

// Statement renders tenant's statement of month: the issued one, else
// (a month not ended, or not yet issued) its figures as they stand now.
func (s *Statements) Statement(tenant, month, format string, lang i18n.Lang) (web.Document, error) {
	if _, ok := s.Config.Tenant(tenant); !ok {
		return web.Document{}, fmt.Errorf("%w: tenant %q", web.ErrNotFound, tenant)
	}
	from, _, err := StatementMonth(month, s.loc())
	if err != nil {
		return web.Document{}, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	now := s.Now()
	if now.Before(from) {
		return web.Document{}, fmt.Errorf("%w: %s has not begun", web.ErrInvalid, month)
	}
	is, err := s.issued(tenant, month)
	if errors.Is(err, store.ErrNoStatement) {
		var st Statement
		st, err = BuildStatement(s.DB, s.Config, tenant, month)
		is = Issue{Statement: st, Generated: now}
	}
	if err != nil {
		return web.Document{}, err
	}
	return s.render(is, format, lang)
}

// Shared renders the issued statement token grants, and nothing else.
func (s *Statements) Shared(token, format string, lang i18n.Lang) (web.Document, error) {
	key, err := s.DB.StatementKey()
	if err != nil {
		return web.Document{}, err
	}
	l, err := VerifyLink(key, token, s.Now())
	switch {
	case errors.Is(err, ErrLinkExpired):
		return web.Document{}, fmt.Errorf("%w: %v", web.ErrLinkExpired, err)
	case err != nil:
		return web.Document{}, fmt.Errorf("%w: %v", web.ErrNotFound, err)
	}
	is, err := s.issued(l.Tenant, l.Month)
	if errors.Is(err, store.ErrNoStatement) {
		return web.Document{}, fmt.Errorf("%w: %v", web.ErrNotFound, err)
	}
	if err != nil {
		return web.Document{}, err
	}
	return s.render(is, format, lang)
}

func (s *Statements) render(is Issue, format string, lang i18n.Lang) (web.Document, error) {
	var buf bytes.Buffer
	name := "statement-" + fileSafe(is.Statement.Tenant) + "-" + is.Statement.Month
	switch format {
	case "pdf":
		key := pdfKey{is.Statement.Tenant, is.Statement.Month, lang, is.Generated.UnixNano()}
		if body, ok := s.drawn.get(key); ok && is.Issued {
			return web.Document{Body: body, ContentType: "application/pdf", Filename: name + ".pdf"}, nil
		}
		if err := s.Renderer.PDF(&buf, is, lang, PDFOptions{}); err != nil {
			return web.Document{}, err
		}
		if is.Issued { // a preview's figures may still change
			s.drawn.put(key, buf.Bytes())
		}
		return web.Document{Body: buf.Bytes(), ContentType: "application/pdf", Filename: name + ".pdf"}, nil
	case "html", "":
		if err := s.Renderer.HTML(&buf, is, lang); err != nil {
			return web.Document{}, err
		}
		return web.Document{Body: buf.Bytes(), ContentType: "text/html; charset=utf-8", CSP: StatementCSP, Filename: name + ".html"}, nil
	}
	return web.Document{}, fmt.Errorf("%w: format %q: want html or pdf", web.ErrInvalid, format)
}

// pdfKept is how many issued statements' PDFs Statements keeps drawn
// (some 100 KB each).
const pdfKept = 32

// pdfKey names an issued statement's PDF in one language.
type pdfKey struct {
	tenant, month string
	lang          i18n.Lang
	generated     int64 // a statement issued again (a new database) is drawn again
}

// pdfCache keeps the last pdfKept PDFs drawn; the zero value is empty.
type pdfCache struct {
	mu    sync.Mutex
	body  map[pdfKey][]byte
	order []pdfKey // oldest first
}

func (c *pdfCache) get(k pdfKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.body[k]
	return b, ok
}

func (c *pdfCache) put(k pdfKey, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.body == nil {
		c.body = map[pdfKey][]byte{}
	}
	if _, ok := c.body[k]; ok {
		return
	}
	if len(c.order) >= pdfKept {
		delete(c.body, c.order[0])
		c.order = c.order[1:]
	}
	c.body[k] = b
	c.order = append(c.order, k)
}

// fileSafe keeps what a file name in a header may hold.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
