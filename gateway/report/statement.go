package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/store"
)

// ErrStatementMonth is returned for a month that is not YYYY-MM, or one
// whose statement cannot be made yet (it has not ended).
var ErrStatementMonth = errors.New("report: statement month")

// ErrNoTenant is returned for a tenant the configuration does not name.
var ErrNoTenant = errors.New("report: no such tenant")

// Statement is a tenant's statement of one month of the site's calendar:
// every figure is an integer (billing.Money, Wh) and they reconcile —
// Opening + TopUps + Charges + Allocations + Adjustments + Late = Closing, and the
// days' and the windows' charges each add up to Charges. It is what is
// stored when a statement is issued (as JSON) and what the HTML and PDF
// are drawn from.
type Statement struct {
	Tenant   string    `json:"tenant"`
	Name     string    `json:"name"`
	Category string    `json:"category,omitempty"`
	AreaM2   string    `json:"area_m2,omitempty"` // as configured, for the public-area lines
	Site     string    `json:"site"`
	Month    string    `json:"month"` // YYYY-MM
	From     time.Time `json:"from"`  // the month's first midnight in the site's zone
	To       time.Time `json:"to"`    // the next month's
	Meters   []string  `json:"meters"`

	// Opening is the balance at From: the sum of every entry dated before
	// it — of those the statement before was computed over, when there is
	// one (its Through), so that it is that statement's Closing.
	Opening billing.Money `json:"opening"`
	// Closing is Opening plus every entry of the month and the late ones.
	Closing billing.Money `json:"closing"`
	// Late are the entries dated before the month but posted after the
	// statement before was computed (a charge held over a restart and
	// posted dated by its last reading, a correction dated back): issued
	// statements never change, so they are listed here, "posted late",
	// rather than left on none.
	Late []StatementLine `json:"late,omitempty"`

	TopUps      []StatementLine `json:"topups"`
	Allocations []StatementLine `json:"allocations"`
	// Corrections are the month's adjustments and reversals.
	Corrections []StatementLine `json:"corrections"`

	// Days are the month's days in order, every one of them, with the
	// energy the tenant's meters measured (interval energy, by the day its
	// slot starts in) and the charges posted that day.
	Days []StatementDay `json:"days"`
	// Windows are the charges by tariff window, in the order of first
	// appearance in the month; a charge without a window is under "".
	Windows []StatementWindow `json:"windows"`

	Totals StatementTotals `json:"totals"`

	// Through is the highest ledger entry id the statement was computed
	// over (every entry of the tenant up to it was read), and Later the
	// ids of the tenant's entries among them dated from To on: the next
	// month's statement starts from this one's closing balance, Later and
	// the entries posted after Through, not from the ledger's whole past.
	Through uint64   `json:"through,omitempty"`
	Later   []uint64 `json:"later,omitempty"`
	// LaterOmitted says Later was dropped (too many, or the next month was
	// built in the same pass): Through still says which entries the next
	// month lists as late, but it cannot start from Later.
	LaterOmitted bool `json:"later_omitted,omitempty"`
}

// StatementLine is one ledger entry of the statement, with what it holds
// to explain it (a top-up's receipt and note, a correction's reason, an
// allocation's rule and basis in its note).
type StatementLine struct {
	ID      uint64        `json:"id"`
	Time    time.Time     `json:"time"`
	Kind    store.Kind    `json:"kind"`
	Amount  billing.Money `json:"amount"`
	Ref     string        `json:"ref,omitempty"`
	Channel string        `json:"channel,omitempty"`
	Receipt uint64        `json:"receipt,omitempty"`
	// ReceiptNo is a top-up's receipt number as printed on its receipt
	// (store.Entry.ReceiptNo: "R00000042").
	ReceiptNo string `json:"receipt_no,omitempty"`
	Note      string `json:"note,omitempty"`
	Reverses  uint64 `json:"reverses,omitempty"`
	// ReversesKind is what the reversed entry was, when it is this
	// tenant's (a reversal of a top-up, a charge, an allocation).
	ReversesKind store.Kind    `json:"reverses_kind,omitempty"`
	Actor        string        `json:"actor,omitempty"`
	Meter        string        `json:"meter,omitempty"`
	Wh           int64         `json:"wh,omitempty"`
	From         *time.Time    `json:"from,omitempty"`
	To           *time.Time    `json:"to,omitempty"`
	Window       string        `json:"window,omitempty"`
	UnitPrice    billing.Price `json:"unit_price,omitempty"`
}

// StatementDay is one day of the month.
type StatementDay struct {
	Date   string        `json:"date"` // YYYY-MM-DD
	Wh     int64         `json:"wh"`   // the tenant's meters' interval energy
	Charge billing.Money `json:"charge"`
}

// StatementWindow is the charges of one tariff window.
type StatementWindow struct {
	Window string        `json:"window"`
	Wh     int64         `json:"wh"` // the energy the charges priced
	Charge billing.Money `json:"charge"`
}

// StatementTotals are the month's sums by kind.
type StatementTotals struct {
	TopUps      billing.Money `json:"topups"`
	Charges     billing.Money `json:"charges"` // ≤ 0
	Allocations billing.Money `json:"allocations"`
	Corrections billing.Money `json:"corrections"`
	// Late is Σ of the Late lines (entries of earlier months posted late).
	Late billing.Money `json:"late,omitempty"`
	// Wh is the interval energy of the month, ChargedWh the energy the
	// month's charges priced (they differ by energy read in one month and
	// billed in the next, at the month's edges).
	Wh        int64 `json:"wh"`
	ChargedWh int64 `json:"charged_wh"`
}

// Movement is the month's net change: Closing - Opening.
func (s Statement) Movement() billing.Money {
	t := s.Totals
	return t.TopUps + t.Charges + t.Allocations + t.Corrections + t.Late
}

// Reconcile returns nil when the statement's figures add up: opening plus
// the month's entries is the closing balance, and the days' and windows'
// charges and the lines of each kind are their totals.
func (s Statement) Reconcile() error {
	var errs []error
	if s.Opening+s.Movement() != s.Closing {
		errs = append(errs, fmt.Errorf("opening %s + movement %s != closing %s", s.Opening, s.Movement(), s.Closing))
	}
	var days, windows billing.Money
	var wh int64
	for _, d := range s.Days {
		days += d.Charge
		wh += d.Wh
	}
	for _, w := range s.Windows {
		windows += w.Charge
	}
	if days != s.Totals.Charges || windows != s.Totals.Charges {
		errs = append(errs, fmt.Errorf("charges %s: days add up to %s, windows to %s", s.Totals.Charges, days, windows))
	}
	if wh != s.Totals.Wh {
		errs = append(errs, fmt.Errorf("energy %d Wh: days add up to %d", s.Totals.Wh, wh))
	}
	for _, c := range []struct {
		name  string
		lines []StatementLine
		total billing.Money
	}{{"top-ups", s.TopUps, s.Totals.TopUps}, {"allocations", s.Allocations, s.Totals.Allocations}, {"corrections", s.Corrections, s.Totals.Corrections}, {"late", s.Late, s.Totals.Late}} {
		var sum billing.Money
		for _, l := range c.lines {
			sum += l.Amount
		}
		if sum != c.total {
			errs = append(errs, fmt.Errorf("%s: lines add up to %s, total %s", c.name, sum, c.total))
		}
	}
	return errors.Join(errs...)
}

// StatementInput is everything a statement is computed from.
type StatementInput struct {
	Tenant config.Tenant
	Site   string
	Month  string
	// From and To are the month's bounds in the site's zone (StatementMonth).
	From, To time.Time
	Meters   []string
	// Opening is the sum of the tenant's entries before From that are not
	// in Entries (a loader streaming the ledger adds them up as it goes
	// instead of keeping them).
	Opening billing.Money
	// LateAfter is the Through of the statement before, 0 for none: an
	// entry with a higher id dated before From was posted after that
	// statement was made and is listed as late, not added to the opening.
	LateAfter uint64
	// Entries are the tenant's ledger entries, any order: those before
	// From add to the opening balance, those from To on are ignored.
	Entries []store.Entry
	// Reversed are the kinds of entries the month's reversals undo, where
	// those entries are not in Entries.
	Reversed map[uint64]store.Kind
	// Intervals are the tenant's meters' 15-minute slots; those outside
	// From..To are ignored.
	Intervals map[string][]store.Interval
}

// StatementMonth returns the bounds of month (YYYY-MM) in loc: its first
// midnight and the next month's.
func StatementMonth(month string, loc *time.Location) (from, to time.Time, err error) {
	t, err := time.ParseInLocation("2006-01", month, loc)
	if err != nil || t.Format("2006-01") != month {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: %q: want YYYY-MM, like 2026-11", ErrStatementMonth, month)
	}
	return t, t.AddDate(0, 1, 0), nil
}

// ComputeStatement computes the statement from its input. It reads no
// clock and no store: the same input gives the same statement, whatever
// the order of its entries.
func ComputeStatement(in StatementInput) Statement {
	b := newStatementBuilder(in)
	for _, e := range in.Entries {
		b.add(e)
	}
	return b.finish(in.Intervals, in.Reversed)
}

// statementBuilder adds a month's entries up as they stream past, keeping
// only the lines a statement lists (top-ups, shares, corrections): a
// month's charges — a hundred a meter a day — are summed by day and window
// as they come, so a loader holds a month's lines, not its ledger.
type statementBuilder struct {
	s        Statement
	loc      *time.Location
	dayAt    map[string]int
	windowAt map[string]int
	kinds    map[uint64]store.Kind // the month's entries' kinds, for its reversals
	// lateAfter is StatementInput.LateAfter.
	lateAfter uint64
}

func newStatementBuilder(in StatementInput) *statementBuilder {
	s := Statement{Tenant: in.Tenant.ID, Name: in.Tenant.Name, Category: in.Tenant.Category, Site: in.Site, Month: in.Month,
		From: in.From, To: in.To, Meters: slices.Clone(in.Meters), Opening: in.Opening}
	if in.Tenant.AreaM2 > 0 {
		s.AreaM2 = fmt.Sprintf("%g", in.Tenant.AreaM2)
	}
	if s.Meters == nil {
		s.Meters = []string{}
	}
	b := &statementBuilder{loc: in.From.Location(), dayAt: map[string]int{}, windowAt: map[string]int{}, kinds: map[uint64]store.Kind{}, lateAfter: in.LateAfter}
	for d := in.From; d.Before(in.To); d = d.AddDate(0, 0, 1) {
		key := d.Format(time.DateOnly)
		b.dayAt[key] = len(s.Days)
		s.Days = append(s.Days, StatementDay{Date: key})
	}
	b.s = s
	return b
}

// add takes one of the tenant's entries: before the month it adds to the
// opening balance (or is a late line, posted after the statement before),
// from its end on it is left out.
func (b *statementBuilder) add(e store.Entry) {
	s := &b.s
	s.Through = max(s.Through, e.ID)
	switch {
	case !e.Time.Before(s.To):
		s.Later = append(s.Later, e.ID)
		return
	case e.Time.Before(s.From) && b.lateAfter != 0 && e.ID > b.lateAfter:
		b.kinds[e.ID] = e.Kind
		s.Late = append(s.Late, b.line(e))
		s.Totals.Late += e.Amount
		return
	case e.Time.Before(s.From):
		s.Opening += e.Amount
		return
	}
	b.kinds[e.ID] = e.Kind
	if e.Kind == store.Charge {
		s.Totals.Charges += e.Amount
		s.Totals.ChargedWh += e.Wh
		s.Days[b.dayAt[e.Time.In(b.loc).Format(time.DateOnly)]].Charge += e.Amount
		i, ok := b.windowAt[e.Window]
		if !ok {
			i = len(s.Windows)
			b.windowAt[e.Window] = i
			s.Windows = append(s.Windows, StatementWindow{Window: e.Window})
		}
		s.Windows[i].Wh += e.Wh
		s.Windows[i].Charge += e.Amount
		return
	}
	line := b.line(e)
	switch e.Kind {
	case store.TopUp:
		s.TopUps = append(s.TopUps, line)
		s.Totals.TopUps += e.Amount
	case store.Allocation:
		s.Allocations = append(s.Allocations, line)
		s.Totals.Allocations += e.Amount
	default: // adjustments, reversals, and any kind added later: never dropped
		s.Corrections = append(s.Corrections, line)
		s.Totals.Corrections += e.Amount
	}
}

func (b *statementBuilder) line(e store.Entry) StatementLine {
	return StatementLine{ID: e.ID, Time: e.Time.In(b.loc), Kind: e.Kind, Amount: e.Amount, Ref: e.Ref, Channel: e.Channel, Receipt: e.Receipt,
		ReceiptNo: e.ReceiptNo(), Note: e.Note, Reverses: e.Reverses, Actor: e.Actor, Meter: e.Meter, Wh: e.Wh, From: e.From, To: e.To, Window: e.Window, UnitPrice: e.UnitPrice}
}

// unknownReversed lists the entries the month's reversals undo that are
// not the month's own (a loader looks them up).
func (b *statementBuilder) unknownReversed() []uint64 {
	var ids []uint64
	for _, l := range slices.Concat(b.s.Corrections, b.s.Late) {
		if _, ok := b.kinds[l.Reverses]; l.Reverses != 0 && !ok {
			ids = append(ids, l.Reverses)
		}
	}
	return ids
}

// windowOrder is the tariff windows' order on a statement, dearest first;
// other names follow by name, then charges without a window.
var windowOrder = map[string]int{"sharp": 1, "peak": 2, "flat": 3, "valley": 4}

// finish adds the meters' intervals and the kinds of reversed entries
// (reversed: those not of the month) and returns the statement, its lines
// in ledger order.
func (b *statementBuilder) finish(intervals map[string][]store.Interval, reversed map[uint64]store.Kind) Statement {
	s := b.s
	slices.Sort(s.Later)
	byID := func(x, y StatementLine) int { return cmp.Compare(x.ID, y.ID) }
	slices.SortFunc(s.TopUps, byID)
	slices.SortFunc(s.Allocations, byID)
	slices.SortFunc(s.Corrections, byID)
	slices.SortFunc(s.Late, byID)
	for _, lines := range [][]StatementLine{s.Corrections, s.Late} {
		for i, l := range lines {
			if l.Reverses == 0 {
				continue
			}
			if k, ok := b.kinds[l.Reverses]; ok {
				lines[i].ReversesKind = k
			} else {
				lines[i].ReversesKind = reversed[l.Reverses]
			}
		}
	}
	slices.SortFunc(s.Windows, func(x, y StatementWindow) int {
		rank := func(w string) int {
			if r, ok := windowOrder[w]; ok {
				return r
			}
			if w == "" {
				return 6
			}
			return 5
		}
		return cmp.Or(cmp.Compare(rank(x.Window), rank(y.Window)), cmp.Compare(x.Window, y.Window))
	})
	for _, m := range s.Meters {
		for _, iv := range intervals[m] {
			if iv.Start.Before(s.From) || !iv.Start.Before(s.To) {
				continue
			}
			s.Days[b.dayAt[iv.Start.In(b.loc).Format(time.DateOnly)]].Wh += iv.Wh
			s.Totals.Wh += iv.Wh
		}
	}
	s.Closing = s.Opening + s.Movement()
	return s
}

// StatementSource is the part of the store statements are computed from;
// *store.DB implements it.
type StatementSource interface {
	// Entries returns a page of account's ledger, newest first.
	Entries(account string, before uint64, limit int) ([]store.Entry, error)
	// EachEntry calls fn for every entry, in one read transaction.
	EachEntry(fn func(store.Entry) error) error
	// Entry returns one entry by id (a reversed entry of an earlier month).
	Entry(id uint64) (store.Entry, error)
	// Intervals returns meter's 15-minute slots with from <= start < to.
	Intervals(meter string, from, to time.Time) ([]store.Interval, error)
}

// statementPage is how many entries a tenant's ledger is read by.
const statementPage = 1000

// BuildStatement computes tenant's statement of month from the store,
// reading the tenant's ledger (by its index) and its meters' intervals.
func BuildStatement(src StatementSource, cfg *config.Config, tenant, month string) (Statement, error) {
	in, err := statementInput(cfg, tenant, month)
	if err != nil {
		return Statement{}, err
	}
	b := newStatementBuilder(in)
	for before := uint64(0); ; {
		page, err := src.Entries(tenant, before, statementPage)
		if err != nil {
			return Statement{}, fmt.Errorf("report: ledger of %s: %w", tenant, err)
		}
		for _, e := range page {
			b.add(e)
		}
		if len(page) < statementPage {
			break
		}
		before = page[len(page)-1].ID
	}
	return finishBuild(src, b, in)
}

// BuildStatements computes the statements of month of every configured
// tenant, in the configuration's order, reading the ledger once.
func BuildStatements(src StatementSource, cfg *config.Config, month string) ([]Statement, error) {
	out, err := buildMonths(context.Background(), src, cfg, []string{month}, nil)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// buildMonths computes the statements of every configured tenant for each
// of months, reading the ledger once for all of them; lateAfter gives a
// tenant's month its StatementInput.LateAfter (the statement before's
// Through, where it was stored before). It stops with ctx's
// error when ctx ends: a ledger of years takes a while to read, and a
// gateway shutting down does not wait for it.
func buildMonths(ctx context.Context, src StatementSource, cfg *config.Config, months []string, lateAfter map[statementKey]uint64) ([][]Statement, error) {
	ins := make([][]StatementInput, len(months))
	bs := make([][]*statementBuilder, len(months))
	at := make(map[string]int, len(cfg.Tenants))
	for j, month := range months {
		for i, t := range cfg.Tenants {
			in, err := statementInput(cfg, t.ID, month)
			if err != nil {
				return nil, err
			}
			in.LateAfter = lateAfter[statementKey{t.ID, month}]
			ins[j] = append(ins[j], in)
			bs[j] = append(bs[j], newStatementBuilder(in))
			at[t.ID] = i
		}
	}
	n, through := 0, uint64(0)
	err := src.EachEntry(func(e store.Entry) error {
		through = e.ID // in id order: the last is the snapshot's highest
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if i, ok := at[e.Account]; ok {
			for j := range bs {
				bs[j][i].add(e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report: ledger: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]Statement, len(months))
	for j := range bs {
		out[j] = make([]Statement, len(bs[j]))
		for i, b := range bs[j] {
			b.s.Through = max(b.s.Through, through) // every entry up to it was read, the tenant's among them
			if out[j][i], err = finishBuild(src, b, ins[j][i]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// finishBuild reads what the ledger pass leaves: the kinds of entries of
// earlier months the month's reversals undo, and the meters' intervals.
func finishBuild(src StatementSource, b *statementBuilder, in StatementInput) (Statement, error) {
	var reversed map[uint64]store.Kind
	for _, id := range b.unknownReversed() {
		r, err := src.Entry(id)
		if errors.Is(err, store.ErrNoEntry) {
			continue // verify's to report; the line says "reverses entry N"
		}
		if err != nil {
			return Statement{}, fmt.Errorf("report: entry %d, reversed in %s: %w", id, in.Month, err)
		}
		if reversed == nil {
			reversed = map[uint64]store.Kind{}
		}
		reversed[id] = r.Kind
	}
	intervals := make(map[string][]store.Interval, len(in.Meters)) // the caller's input keeps none of them
	for _, m := range in.Meters {
		slots, err := src.Intervals(m, in.From, in.To)
		if err != nil {
			return Statement{}, fmt.Errorf("report: intervals of meter %s: %w", m, err)
		}
		intervals[m] = slots
	}
	return b.finish(intervals, reversed), nil
}

func statementInput(cfg *config.Config, tenant, month string) (StatementInput, error) {
	t, ok := cfg.Tenant(tenant)
	if !ok {
		return StatementInput{}, fmt.Errorf("%w: %q", ErrNoTenant, tenant)
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	from, to, err := StatementMonth(month, loc)
	if err != nil {
		return StatementInput{}, err
	}
	in := StatementInput{Tenant: t, Site: cfg.Site.Name, Month: month, From: from, To: to}
	for _, m := range cfg.Meters {
		if m.Tenant == tenant {
			in.Meters = append(in.Meters, m.ID)
		}
	}
	return in, nil
}

// LedgerTail is a StatementSource that also reads the entries posted
// after a given id; *store.DB implements it.
type LedgerTail interface {
	StatementSource
	// EachEntryAfter calls fn for every entry with an id above after, in
	// id order, in one read transaction.
	EachEntryAfter(after uint64, fn func(store.Entry) error) error
}

// buildNext computes month's statements of the tenants of prev from their
// statements of the month before: each opens with that one's closing
// balance, takes the entries it left for later (Later, read by id) and
// those posted after its Through, read in one pass from the lowest Through;
// of these, the ones dated before month are its late lines (the opening is
// prev's closing, whatever was posted since). It gives what buildMonths
// gives with prev's Through as LateAfter (tested) but reads the month's
// entries, not the ledger's past. prev must be computed
// by this package (Through set) for the month before month.
func buildNext(ctx context.Context, src LedgerTail, cfg *config.Config, month string, prev []Statement) ([]Statement, error) {
	ins := make([]StatementInput, len(prev))
	bs := make([]*statementBuilder, len(prev))
	at := make(map[string]int, len(prev))
	base := uint64(0)
	for i, p := range prev {
		in, err := statementInput(cfg, p.Tenant, month)
		if err != nil {
			return nil, err
		}
		if !p.To.Equal(in.From) || p.Through == 0 {
			return nil, fmt.Errorf("report: %s's statement %s does not lead to %s", p.Tenant, p.Month, month)
		}
		in.Opening, in.LateAfter = p.Closing, p.Through
		ins[i], bs[i], at[p.Tenant] = in, newStatementBuilder(in), i
		bs[i].s.Through = p.Through
		if i == 0 || p.Through < base {
			base = p.Through
		}
		for _, id := range p.Later {
			e, err := src.Entry(id)
			if err != nil {
				return nil, fmt.Errorf("report: entry %d, left by %s's statement %s: %w", id, p.Tenant, p.Month, err)
			}
			bs[i].add(e)
		}
	}
	n, through := 0, base
	err := src.EachEntryAfter(base, func(e store.Entry) error {
		through = e.ID
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if i, ok := at[e.Account]; ok && e.ID > prev[i].Through {
			bs[i].add(e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report: ledger after entry %d: %w", base, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Statement, len(bs))
	for i, b := range bs {
		b.s.Through = max(b.s.Through, through)
		if out[i], err = finishBuild(src, b, ins[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
