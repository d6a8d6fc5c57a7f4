package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"mallgrid/billing"
	"mallgrid/billing/counter"
	"mallgrid/gateway/enforce"
	"mallgrid/gateway/pipeline"
	"mallgrid/store"
)

// Report is what File found.
type Report struct {
	Accounts, Entries int
	// AuditRecords is how many records the audit log holds, and AuditLast
	// the newest one's hash while the chain is whole ("" for an empty log):
	// copied somewhere the gateway cannot write, it is what shows later that
	// the log was not rewritten up to that record.
	AuditRecords int
	AuditLast    string
	// Alarms is how many alarms the database holds, OpenAlarms how many of
	// them are not cleared.
	Alarms, OpenAlarms int
	// UpgradedFrom is the file's schema version when it is older than this
	// gateway's (a backup, a snapshot from before an upgrade): the checks
	// then ran on a temporary copy upgraded to store.SchemaVersion, and the
	// file itself was only read. 0 for a file of this gateway's schema.
	UpgradedFrom int
	Violations   []Violation
}

// File opens the database at path read-only and verifies its ledger.
// It refuses the file as the daemon would (its marker is read, never
// written): a damaged file is an error wrapping store.ErrCorrupt, and a
// missing, empty or other database one wrapping store.ErrMissing,
// store.ErrEmpty or store.ErrReplaced — so that after a restore, verify
// says whether the gateway will take the file. A file of an older schema
// is checked on a copy upgraded in the temporary directory (os.TempDir),
// removed afterwards; Report.UpgradedFrom says so.
func File(path string) (Report, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true, Marker: true})
	if errors.Is(err, store.ErrSchemaOld) {
		// The marker has been checked by now: only the schema is left, and
		// the ledger's rules are written for this gateway's.
		return upgradedCopy(path)
	}
	if err != nil {
		return Report{}, err
	}
	defer db.Close()
	return fileReport(db)
}

// upgradedCopy verifies the file at path, of an older schema, on a copy
// upgraded as the gateway would upgrade it: the file is opened read-only
// to be copied, never written.
func upgradedCopy(path string) (r Report, err error) {
	dir, err := os.MkdirTemp("", "mallgrid-verify-*")
	if err != nil {
		return r, fmt.Errorf("verify %s, of an older schema, on an upgraded copy: %w", path, err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); err == nil && rerr != nil {
			err = rerr
		}
	}()
	tmp := filepath.Join(dir, filepath.Base(path))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return r, err
	}
	info, err := store.CopyFile(path, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A full temporary directory must not read as a damaged file.
		return r, fmt.Errorf("verify %s, of an older schema, on an upgraded copy in %s (TMPDIR chooses where): %w", path, dir, err)
	}
	db, err := store.Open(tmp, store.Options{})
	if err != nil {
		return r, fmt.Errorf("upgrade a copy of %s: %w", path, err)
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	r, err = fileReport(db)
	if info.Schema < store.SchemaVersion {
		r.UpgradedFrom = info.Schema
	}
	return r, err
}

// fileReport verifies the open database and counts what it holds.
func fileReport(db *store.DB) (Report, error) {
	var (
		r   Report
		err error
	)
	if r.Violations, err = Check(db); err != nil {
		return r, err
	}
	accounts, err := db.Accounts()
	if err != nil {
		return r, err
	}
	r.Accounts = len(accounts)
	for _, a := range accounts {
		r.Entries += int(a.Entries)
	}
	chain, err := db.CheckAuditChain()
	if err != nil {
		return r, err
	}
	r.AuditRecords, r.AuditLast = chain.Records, chain.Last
	err = db.EachAlarm(func(a store.Alarm) error {
		r.Alarms++
		if a.Open() {
			r.OpenAlarms++
		}
		return nil
	})
	return r, err
}

// Violation is one broken ledger invariant found by Check.
type Violation struct {
	Account string
	Entry   uint64 // 0 when the violation is about the account as a whole
	Problem string
}

func (v Violation) String() string {
	if v.Entry != 0 {
		return fmt.Sprintf("account %s, entry %d: %s", v.Account, v.Entry, v.Problem)
	}
	return fmt.Sprintf("account %s: %s", v.Account, v.Problem)
}

// Check checks the ledger in the database against every rule verify
// knows (verifyRules) and returns every violation found; an error only when
// the database cannot be read.
//
// The rules: the balance after each entry is the one before plus its
// amount; each account's stored balance and count are what its entries add
// up to; top-ups are credits with a payment reference used once; charges
// and allocations are debits; a charge's energy is its counter span, never
// negative; every reversal undoes an entry of its account before it,
// exactly, once, and never a reversal; adjustments say who and why; a
// correction's reference is no other entry's; top-ups' receipt numbers run
// 1, 2, 3… without a gap or a repeat, and the store's indexes of receipts
// and reversals agree with the entries. Each meter's charges (and its open charge,
// not yet posted) follow its counter chains — the counter from its first
// reading to the first reset or exchange, from there to the next, and so
// on, as the gateway recorded them (store.Break) — covering each chain
// exactly from its start to its end, the last chain ending at the meter's
// baseline: energy skipped, charged twice or charged across a reset breaks
// this. An exchange record applied twice is found, and a meter's charges
// must come to the price of their energy, to the nano-yuan, with what the
// meter carries below a fen. The audit log's hash chain is whole
// (store.CheckAuditChain): its first break is a violation. Every alarm
// follows its events: raised by a stored event of its kind about its
// subject, cleared (if it is) by a later event that clears it, acknowledged
// with who, when and a later alarm_acknowledged event; one open per kind
// and subject, each in the index of open alarms; and every raising event
// has its alarm. The notification outbox's indexes agree with its
// deliveries. The uplink outbox's messages are stored under their seqs,
// none above the last seq given, and its depth and size counters agree
// with them, and the feed's cursors are whole and not ahead of what they
// follow (store.CheckUplink). Allocation postings add up to their
// cost, one stands per rule and period, and their entries agree with them
// (checkAllocations). Each e-invoice request belongs to a top-up of its
// tenant under its reference, in a status the gateway writes
// (checkInvoices). Each record of a command from the group's platform can
// be read, was handled before it expired, and its result agrees with the
// ledger (checkUplinkCommands).
func Check(db *store.DB) ([]Violation, error) {
	return verifyWith(db, verifyRules)
}

// ledgerView is what verify reads from the database, once.
type ledgerView struct {
	entries   []store.Entry // id order
	accounts  []store.Account
	states    map[string]*pipeline.MeterState // meter id → stored state; nil when it cannot be read
	badStates map[string]error                // meter id → why its stored state cannot be read
	breaks    map[string][]store.Break        // meter id → its breaks, in the order stored
	charges   map[string][]store.Entry        // meter id → its charges, posted and open (chargesByMeter)
	// markEvents counts each meter's billing_stopped and billing_started
	// events, by the kind of mark they go with.
	markEvents map[string]map[string]int
	audit      store.AuditChain
	outbox     []string      // store.CheckOutbox's problems
	uplink     []string      // store.CheckUplink's problems
	alarms     []store.Alarm // id order
	openIndex  map[store.AlarmKey]uint64
	// alarmEvents are the events alarms name (raising, clearing,
	// acknowledging) and every event of a kind that raises alarms, by id.
	alarmEvents map[uint64]store.Event
	raising     []store.Event // the events of kinds that raise alarms, id order
	// postings are the allocation postings, id order; livePostings the
	// index of those that stand (store.LivePostings).
	postings     []store.Posting
	livePostings map[string]uint64
	corrections  store.CorrectionIndex

	// invoices are the e-invoice requests, badInvoices the records that
	// cannot be read as one (store.AllInvoices).
	invoices    []store.Invoice
	badInvoices []string
	// commands are the records of the platform's commands, badCommands
	// the ids and problems of those that cannot be read.
	commands    []store.UplinkCommand
	badCommands [][2]string
}

// verifyRule is one check of the ledger; report is called for every
// violation it finds. Each rule is needed: a test removes each in turn and
// shows a damaged ledger it alone finds (TestVerify_EveryRuleIsNeeded).
type verifyRule struct {
	name  string
	check func(v *ledgerView, report func(Violation))
}

var verifyRules = []verifyRule{
	{"entry_order", checkEntryOrder},
	{"balance_after", checkBalanceAfter},
	{"account_totals", checkAccountTotals},
	{"topup", checkTopUps},
	{"debit", checkDebits},
	{"charge_energy", checkChargeEnergy},
	{"negative_span", checkNegativeSpans},
	{"reversal", checkReversals},
	{"adjustment", checkAdjustments},
	{"correction_ref", checkCorrectionRefs},
	{"receipt", checkReceipts},
	{"correction_index", checkCorrectionIndex},
	{"ref_index", checkRefIndex},
	{"kind", checkKinds},
	{"meter_state", checkMeterStates},
	{"chain_breaks", checkChainBreaks},
	{"chain_cover", checkChainCover},
	{"double_exchange", checkDoubleExchange},
	{"charge_price", checkChargePrice},
	{"billing_marks", checkBillingMarks},
	{"audit_chain", checkAuditChain},
	{"alarms", checkAlarms},
	{"outbox", checkOutbox},
	{"uplink_outbox", checkUplinkOutbox},
	{"allocation", checkAllocations},
	{"invoice", checkInvoices},
	{"uplink_commands", checkUplinkCommands},
}

func verifyWith(db *store.DB, rules []verifyRule) ([]Violation, error) {
	v := &ledgerView{states: make(map[string]*pipeline.MeterState), badStates: make(map[string]error), breaks: make(map[string][]store.Break)}
	if err := db.EachEntry(func(e store.Entry) error {
		v.entries = append(v.entries, e)
		return nil
	}); err != nil {
		return nil, err
	}
	var err error
	if v.accounts, err = db.Accounts(); err != nil {
		return nil, err
	}
	states, err := db.MeterStates()
	if err != nil {
		return nil, err
	}
	var out []Violation
	report := func(x Violation) { out = append(out, x) }
	// Everything the daemon loads at start is read here too, so that a
	// file verify passes is one the daemon starts on.
	controls, err := db.Controls()
	if err != nil {
		return nil, err
	}
	for key, raw := range controls {
		if err := enforce.CheckControl(key, raw); err != nil {
			report(Violation{Account: "control " + key, Problem: err.Error()})
		}
	}
	for key, raw := range states {
		if id, tenant := strings.CutPrefix(key, pipeline.TenantKeyPrefix); tenant {
			var tm pipeline.TenantMonth
			if err := json.Unmarshal(raw, &tm); err != nil {
				report(Violation{Account: "tenant " + id, Problem: fmt.Sprintf("stored month of energy cannot be read: %v", err)})
			}
			continue
		}
		mb, err := pipeline.DecodeState(raw)
		if err != nil {
			mb = nil // checkMeterStates reports it
			v.badStates[key] = err
		}
		v.states[key] = mb
	}
	breaks, err := db.Breaks()
	if err != nil {
		return nil, err
	}
	for _, b := range breaks {
		v.breaks[b.Meter] = append(v.breaks[b.Meter], b)
	}
	if err := db.EachAlarm(func(a store.Alarm) error {
		v.alarms = append(v.alarms, a)
		return nil
	}); err != nil {
		return nil, err
	}
	if v.openIndex, err = db.OpenAlarmIndex(); err != nil {
		return nil, err
	}
	named := make(map[uint64]bool)
	for _, a := range v.alarms {
		named[a.RaisedEvent], named[a.ClearedEvent], named[a.AckEvent] = true, true, true
	}
	v.alarmEvents = make(map[uint64]store.Event)
	v.markEvents = make(map[string]map[string]int)
	for after := uint64(0); ; {
		evs, err := db.EventsAfter(after, 10_000)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			raises := store.AlarmSeverity(e.Kind) != ""
			if raises {
				v.raising = append(v.raising, e)
			}
			if raises || named[e.ID] {
				v.alarmEvents[e.ID] = e
			}
			for _, mark := range []string{pipeline.BreakUnbilled, pipeline.BreakBilled} {
				if e.Kind == pipeline.BillingEventKind(mark) {
					if v.markEvents[e.Meter] == nil {
						v.markEvents[e.Meter] = make(map[string]int)
					}
					v.markEvents[e.Meter][mark]++
				}
			}
		}
		after = evs[len(evs)-1].ID
	}
	v.charges = chargesByMeter(v)
	if v.corrections, err = db.Corrections(); err != nil {
		return nil, err
	}
	if v.audit, err = db.CheckAuditChain(); err != nil {
		return nil, err
	}
	if v.outbox, err = db.CheckOutbox(); err != nil {
		return nil, err
	}
	// The uplink's time cursors are checked against the clock verify
	// runs by: one more than a day ahead of it is damage, not news.
	if v.uplink, err = db.CheckUplink(time.Now()); err != nil {
		return nil, err
	}
	if v.invoices, v.badInvoices, err = db.AllInvoices(); err != nil {
		return nil, err
	}
	if err := db.EachUplinkCommand(func(c store.UplinkCommand) error {
		v.commands = append(v.commands, c)
		return nil
	}, func(id string, err error) { v.badCommands = append(v.badCommands, [2]string{id, err.Error()}) }); err != nil {
		return nil, err
	}
	if err := db.EachPosting(func(p store.Posting) error {
		v.postings = append(v.postings, p)
		return nil
	}); err != nil {
		return nil, err
	}
	if v.livePostings, err = db.LivePostings(); err != nil {
		return nil, err
	}
	for _, r := range rules {
		r.check(v, report)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Entry < out[j].Entry
	})
	return out, nil
}

func entryViolation(e store.Entry, format string, args ...any) Violation {
	return Violation{Account: e.Account, Entry: e.ID, Problem: fmt.Sprintf(format, args...)}
}

func checkEntryOrder(v *ledgerView, report func(Violation)) {
	last := make(map[string]uint64)
	for _, e := range v.entries {
		if prev := last[e.Account]; e.ID <= prev {
			report(entryViolation(e, "id not after the account's previous entry %d", prev))
		}
		last[e.Account] = e.ID
	}
}

func checkBalanceAfter(v *ledgerView, report func(Violation)) {
	balance := make(map[string]billing.Money)
	for _, e := range v.entries {
		if want := balance[e.Account] + e.Amount; e.Balance != want {
			report(entryViolation(e, "balance after is %s; the entries before it and its amount make %s", e.Balance, want))
		}
		balance[e.Account] += e.Amount
	}
}

func checkAccountTotals(v *ledgerView, report func(Violation)) {
	type running struct {
		balance billing.Money
		count   int64
		last    uint64
	}
	accts := make(map[string]*running)
	for _, e := range v.entries {
		r := accts[e.Account]
		if r == nil {
			r = &running{}
			accts[e.Account] = r
		}
		r.balance += e.Amount
		r.count++
		r.last = max(r.last, e.ID)
	}
	seen := make(map[string]bool)
	for _, a := range v.accounts {
		seen[a.ID] = true
		r := accts[a.ID]
		if r == nil {
			report(Violation{Account: a.ID, Problem: "account has no entries"})
			continue
		}
		if a.Balance != r.balance || a.Entries != r.count || a.LastEntry != r.last {
			report(Violation{Account: a.ID, Problem: fmt.Sprintf(
				"stored balance %s over %d entries (last %d); the entries make %s over %d (last %d)",
				a.Balance, a.Entries, a.LastEntry, r.balance, r.count, r.last)})
		}
	}
	for id := range accts {
		if !seen[id] {
			report(Violation{Account: id, Problem: "entries without an account record"})
		}
	}
}

func checkTopUps(v *ledgerView, report func(Violation)) {
	refs := make(map[string]uint64)
	for _, e := range v.entries {
		if e.Kind != store.TopUp {
			continue
		}
		if e.Amount <= 0 {
			report(entryViolation(e, "top-up of %s is not a credit", e.Amount))
		}
		if e.Ref == "" {
			report(entryViolation(e, "top-up without a payment reference"))
		} else if prev, dup := refs[e.Ref]; dup {
			report(entryViolation(e, "payment reference %s already credited by entry %d", e.Ref, prev))
		} else {
			refs[e.Ref] = e.ID
		}
	}
}

func checkDebits(v *ledgerView, report func(Violation)) {
	for _, e := range v.entries {
		if (e.Kind == store.Charge || e.Kind == store.Allocation) && e.Amount > 0 {
			report(entryViolation(e, "%s of %s is a credit", e.Kind, e.Amount))
		}
	}
}

func checkChargeEnergy(v *ledgerView, report func(Violation)) {
	for _, e := range v.entries {
		if e.Kind == store.Charge && e.ToWh-e.FromWh != e.Wh {
			report(entryViolation(e, "charges %d Wh for counter %d → %d", e.Wh, e.FromWh, e.ToWh))
		}
	}
}

// checkNegativeSpans: a counter that went down is a reset or an exchange,
// which starts a new chain; it is never billed as negative energy.
func checkNegativeSpans(v *ledgerView, report func(Violation)) {
	for _, e := range v.entries {
		if e.Kind == store.Charge && (e.ToWh < e.FromWh || e.Wh < 0) {
			report(entryViolation(e, "negative energy: counter %d → %d Wh (%d Wh) on meter %s", e.FromWh, e.ToWh, e.Wh, e.Meter))
		}
	}
}

func checkReversals(v *ledgerView, report func(Violation)) {
	byID := make(map[uint64]store.Entry)
	reversed := make(map[uint64]uint64)
	for _, e := range v.entries {
		if e.Kind == store.Reversal {
			orig, ok := byID[e.Reverses]
			switch {
			case !ok:
				report(entryViolation(e, "reverses entry %d, which is not before it", e.Reverses))
			case orig.Account != e.Account:
				report(entryViolation(e, "reverses entry %d of account %s", e.Reverses, orig.Account))
			case e.Amount != -orig.Amount:
				report(entryViolation(e, "reverses %s with %s", orig.Amount, e.Amount))
			}
			if ok && orig.Kind == store.Reversal {
				report(entryViolation(e, "reverses entry %d, itself a reversal", e.Reverses))
			}
			if prev, twice := reversed[e.Reverses]; twice {
				report(entryViolation(e, "entry %d already reversed by %d", e.Reverses, prev))
			}
			reversed[e.Reverses] = e.ID
		}
		byID[e.ID] = e
	}
}

func checkAdjustments(v *ledgerView, report func(Violation)) {
	for _, e := range v.entries {
		if e.Kind == store.Adjustment && (e.Note == "" || e.Actor == "") {
			report(entryViolation(e, "adjustment without who and why"))
		}
	}
}

func checkKinds(v *ledgerView, report func(Violation)) {
	for _, e := range v.entries {
		switch e.Kind {
		case store.TopUp, store.Charge, store.Allocation, store.Reversal, store.Adjustment:
		default:
			report(entryViolation(e, "unknown kind %q", e.Kind))
		}
	}
}

func meterViolation(meterID, format string, args ...any) Violation {
	return Violation{Account: "meter " + meterID, Problem: fmt.Sprintf(format, args...)}
}

func checkMeterStates(v *ledgerView, report func(Violation)) {
	for id, mb := range v.states {
		if mb == nil {
			report(meterViolation(id, "stored billing state cannot be read: %v", v.badStates[id]))
		}
	}
}

// meterChains is one meter's counter chains as verify sees them.
type meterChains struct {
	start  map[int]int64 // chain → its first counter (from its latest break)
	end    map[int]int64 // chain → its last counter (from the next chain's latest break, or the baseline)
	last   int           // the highest chain with a break
	pieces map[int][]piece
}

// piece is a part of a chain that is accounted for: a charge, or a part
// no charge is owed for (the meter was not billed then).
type piece struct {
	entry    store.Entry // a charge; ID 0 and Kind "" for an unbilled part
	from, to int64
}

// unbilledPart is a stretch of a chain no charge is owed for; fromStart
// and toEnd follow the chain's ends, which an amending exchange may move.
type unbilledPart struct {
	chain            int
	from, to         int64
	fromStart, toEnd bool
}

// chainsOf lays out a meter's breaks, its charges (posted and open) and
// the parts of its chains it was not billed for.
func chainsOf(v *ledgerView, meterID string, charges []store.Entry) meterChains {
	c := meterChains{start: make(map[int]int64), end: make(map[int]int64), last: -1, pieces: make(map[int][]piece)}
	// Parts begun while the meter was unbilled follow an amending exchange
	// (which bills nothing while the meter is unbilled) until billing
	// resumes; from then on an amendment's spans are charged, so their
	// ends are fixed where they were then.
	var parts, settled []unbilledPart
	var open *unbilledPart // where the meter's energy stopped being billed
	settle := func() {
		for _, u := range parts {
			if u.fromStart {
				u.from, u.fromStart = c.start[u.chain], false
			}
			if u.toEnd {
				if end, ok := c.end[u.chain]; ok {
					u.to, u.toEnd = end, false
				}
			}
			settled = append(settled, u)
		}
		parts = parts[:0]
	}
	for _, b := range v.breaks[meterID] {
		switch b.Kind {
		case pipeline.BreakUnbilled:
			if open == nil {
				open = &unbilledPart{chain: b.Chain, from: b.OldEndWh}
				if start, ok := c.start[b.Chain]; ok && start == b.OldEndWh {
					// Unbilled from the chain's start: an exchange that
					// moves the start later moves this too.
					open.fromStart = true
				}
			}
			continue
		case pipeline.BreakBilled:
			if open != nil {
				open.to = b.NewStartWh
				parts = append(parts, *open)
				open = nil
			}
			settle()
			continue
		}
		c.start[b.Chain] = b.NewStartWh
		if b.Chain > 0 {
			c.end[b.Chain-1] = b.OldEndWh
		}
		if !b.Amends && open != nil && b.Chain > open.chain {
			// Still unbilled when a new chain starts: the old one is
			// unbilled to its end, the new one from its start.
			open.toEnd = true
			parts = append(parts, *open)
			open = &unbilledPart{chain: b.Chain, fromStart: true}
		}
		c.last = max(c.last, b.Chain)
	}
	if mb := v.states[meterID]; mb != nil && mb.Counter.Known {
		if _, ok := c.end[mb.Counter.Chain]; !ok {
			c.end[mb.Counter.Chain] = mb.Counter.Baseline.Wh
		}
	}
	if open != nil {
		open.toEnd = true
		parts = append(parts, *open)
	}
	settle()
	parts = settled
	for _, u := range parts {
		if !u.fromStart && !u.toEnd && u.to != u.from {
			c.pieces[u.chain] = append(c.pieces[u.chain], piece{from: u.from, to: u.to})
		}
	}
	for _, e := range charges {
		c.pieces[e.Chain] = append(c.pieces[e.Chain], piece{entry: e, from: e.FromWh, to: e.ToWh})
	}
	return c
}

// chargesByMeter gathers every meter's charges, posted and open.
func chargesByMeter(v *ledgerView) map[string][]store.Entry {
	out := make(map[string][]store.Entry)
	for _, e := range v.entries {
		if e.Kind == store.Charge && e.Meter != "" {
			out[e.Meter] = append(out[e.Meter], e)
		}
	}
	for id, mb := range v.states {
		if mb != nil && mb.Open != nil {
			o := mb.Open
			out[id] = append(out[id], store.Entry{Account: o.Account, Meter: id, Chain: o.Chain, FromWh: o.FromWh, ToWh: o.ToWh,
				Wh: o.ToWh - o.FromWh, UnitPrice: o.Price, Amount: -o.Amount})
		}
	}
	return out
}

// metersOf is every meter with a chain break or a charge.
func metersOf(v *ledgerView, charges map[string][]store.Entry) map[string]bool {
	meters := make(map[string]bool)
	for id := range v.breaks {
		meters[id] = true
	}
	for id := range charges {
		meters[id] = true
	}
	return meters
}

// checkChainBreaks: a meter's chains are numbered one after another, an
// amendment changes the newest chain only, the stored state is on the
// newest chain, and every charge is on a chain that was started.
func checkChainBreaks(v *ledgerView, report func(Violation)) {
	charges := v.charges
	for id := range metersOf(v, charges) {
		last := -1
		if bs := v.breaks[id]; len(bs) > 0 && bs[0].Kind != string(counter.Baseline) && !bs[0].Amends {
			// A meter read before breaks were recorded (a ledger of schema
			// 2): its first recorded chain follows one that was not.
			last = bs[0].Chain - 1
			if bs[0].Kind == pipeline.BreakBilled || bs[0].Kind == pipeline.BreakUnbilled {
				last = bs[0].Chain
			}
		}
		for _, b := range v.breaks[id] {
			switch {
			case b.Kind == pipeline.BreakUnbilled || b.Kind == pipeline.BreakBilled:
				if b.Chain != last {
					report(meterViolation(id, "%s mark at %s on chain %d, but the newest chain is %d", b.Kind, b.At.Format(time.RFC3339), b.Chain, last))
				}
				continue
			case b.Amends && b.Chain != last:
				report(meterViolation(id, "break at %s amends chain %d, but the newest chain is %d", b.At.Format(time.RFC3339), b.Chain, last))
			case !b.Amends && b.Chain != last+1:
				report(meterViolation(id, "break at %s starts chain %d after chain %d", b.At.Format(time.RFC3339), b.Chain, last))
			}
			last = max(last, b.Chain)
		}
		if mb := v.states[id]; mb != nil && len(v.breaks[id]) > 0 && mb.Counter.Chain != last {
			report(meterViolation(id, "its counter is on chain %d; the breaks recorded end at chain %d", mb.Counter.Chain, last))
		}
		for _, e := range charges[id] {
			// A ledger from before breaks were recorded has charges on chain
			// 0 and no break: the chain is taken as it is.
			if e.Chain < 0 || e.Chain > max(last, 0) {
				report(entryViolation(e, "meter %s: charge on chain %d, which no reading or exchange started", id, e.Chain))
			}
		}
	}
}

// checkChainCover: each chain's charges, with the parts of it the meter
// was not billed for, cover it in counter order from its start to its end
// exactly once.
func checkChainCover(v *ledgerView, report func(Violation)) {
	charges := v.charges
	for id := range metersOf(v, charges) {
		c := chainsOf(v, id, charges[id])
		last := c.last
		for chain := range c.pieces {
			last = max(last, chain)
		}
		for chain := 0; chain <= last; chain++ {
			list := c.pieces[chain]
			sort.SliceStable(list, func(i, j int) bool {
				if list[i].from != list[j].from {
					return list[i].from < list[j].from
				}
				return list[i].to < list[j].to
			})
			cursor, known := c.start[chain]
			if !known {
				if len(list) == 0 {
					continue // a chain from before breaks were recorded
				}
				cursor = list[0].from
			}
			for _, p := range list {
				what := fmt.Sprintf("charge %d→%d Wh", p.from, p.to)
				if p.entry.Kind == "" {
					what = fmt.Sprintf("unbilled part %d→%d Wh", p.from, p.to)
				}
				bad := func(format string, args ...any) {
					x := meterViolation(id, format, args...)
					if p.entry.Kind != "" {
						x = entryViolation(p.entry, format, args...)
					}
					report(x)
				}
				switch {
				case p.from > cursor:
					bad("meter %s chain %d: %s starts after the energy before it ended at %d Wh: energy skipped", id, chain, what, cursor)
				case p.from < cursor:
					bad("meter %s chain %d: %s overlaps energy already charged up to %d Wh: energy charged twice", id, chain, what, cursor)
				}
				cursor = max(cursor, p.to)
			}
			if end, known := c.end[chain]; known && cursor != end {
				if len(list) == 0 {
					report(meterViolation(id, "chain %d: %d → %d Wh with no charge: energy skipped", chain, cursor, end))
				} else {
					report(meterViolation(id, "chain %d: charges end at %d Wh; the chain ends at %d Wh", chain, cursor, end))
				}
			}
		}
	}
}

// checkDoubleExchange: the same exchange record applied a second time
// bills the old meter's counter again as if the new one were the old.
func checkDoubleExchange(v *ledgerView, report func(Violation)) {
	for id, breaks := range v.breaks {
		var prev *store.Break
		for i := range breaks {
			b := &breaks[i]
			if b.Kind != string(counter.Exchanged) {
				continue
			}
			if prev != nil && prev.OldEndWh == b.OldEndWh && prev.NewStartWh == b.NewStartWh {
				report(meterViolation(id, "exchange (old final %d Wh, new start %d Wh) recorded at %s and again at %s",
					b.OldEndWh, b.NewStartWh, prev.At.Format(time.RFC3339), b.At.Format(time.RFC3339)))
			}
			prev = b
		}
	}
}

// checkChargePrice: a meter's charges are its energy at their unit prices:
// the posted fen and what the meter carries below a fen add up to the exact
// price of every Wh charged.
func checkChargePrice(v *ledgerView, report func(Violation)) {
	for id, charges := range v.charges {
		exact, posted := new(big.Int), new(big.Int)
		for _, e := range charges {
			// The counter span, not the Wh field (charge_energy checks that
			// they agree): each rule finds its own fault.
			exact.Add(exact, new(big.Int).Mul(big.NewInt(int64(e.UnitPrice)), big.NewInt(e.ToWh-e.FromWh)))
			posted.Sub(posted, big.NewInt(int64(e.Amount)*1000)) // micro-yuan → nano-yuan
		}
		if mb := v.states[id]; mb != nil {
			posted.Add(posted, big.NewInt(int64(mb.Counter.Remainder)))
		}
		if exact.Cmp(posted) != 0 {
			report(meterViolation(id, "charges come to %s nano-yuan with the remainder carried; their energy at their prices is %s", posted, exact))
		}
	}
}

// checkBillingMarks: a mark that a stretch of a chain is not billed is
// stored with an event saying why, and the meter's state agrees with its
// last mark — so a mark added by hand to hide energy never charged stands
// out.
func checkBillingMarks(v *ledgerView, report func(Violation)) {
	for id, breaks := range v.breaks {
		marks := map[string]int{}
		last := ""
		for _, b := range breaks {
			if b.Kind == pipeline.BreakUnbilled || b.Kind == pipeline.BreakBilled {
				marks[b.Kind]++
				last = b.Kind
			}
		}
		for _, kind := range []string{pipeline.BreakUnbilled, pipeline.BreakBilled} {
			if got := v.markEvents[id][kind]; got != marks[kind] {
				report(meterViolation(id, "%d %s marks but %d %s events: a mark without its reason", marks[kind], kind, got, pipeline.BillingEventKind(kind)))
			}
		}
		if mb := v.states[id]; mb != nil && last != "" && mb.Unbilled != (last == pipeline.BreakUnbilled) {
			report(meterViolation(id, "its last billing mark is %s, but its state says unbilled %v", last, mb.Unbilled))
		}
	}
}

// checkAuditChain: the audit log is append-only; a record changed, removed,
// added or moved behind the gateway's back breaks its hash chain there.
func checkAuditChain(v *ledgerView, report func(Violation)) {
	if f := v.audit.Fault; f != nil {
		report(Violation{Account: "audit log", Problem: f.String()})
	}
}

// checkOutbox: the notification outbox's indexes agree with its
// deliveries (store.CheckOutbox). A delivery missing from the index of due
// ones is never sent; one in the wrong state's index is listed as what it
// is not.
func checkOutbox(v *ledgerView, report func(Violation)) {
	for _, p := range v.outbox {
		report(Violation{Account: "outbox", Problem: p})
	}
}

// checkUplinkOutbox: the uplink outbox is what the store wrote
// (store.CheckUplink). A message under another seq is sent as one the
// group has (deduplicated away) or pages the sender back; one above the
// last seq given gets its seq given again; wrong counters report a wrong
// backlog to the group and on the status page.
func checkUplinkOutbox(v *ledgerView, report func(Violation)) {
	for _, p := range v.uplink {
		report(Violation{Account: "uplink outbox", Problem: p})
	}
}

// checkAlarms: an alarm is what its events say. One raised, cleared or
// acknowledged by hand, or removed, to make a condition look handled or
// never to have happened, no longer matches them.
func checkAlarms(v *ledgerView, report func(Violation)) {
	bad := func(a store.Alarm, format string, args ...any) {
		report(Violation{Account: fmt.Sprintf("alarm %d", a.ID), Problem: fmt.Sprintf(format, args...)})
	}
	open := make(map[store.AlarmKey][]uint64)
	byKey := make(map[store.AlarmKey][]store.Alarm) // in id order, so in raising order
	for _, a := range v.alarms {
		key := store.AlarmKey{Kind: a.Kind, Subject: a.Subject}
		byKey[key] = append(byKey[key], a)
		raised, ok := v.alarmEvents[a.RaisedEvent]
		switch {
		case !ok:
			bad(a, "%s of %q: its raising event %d is not stored", a.Kind, a.Subject, a.RaisedEvent)
		case raised.Kind != a.Kind || store.AlarmSubject(a.Kind, raised) != a.Subject:
			bad(a, "%s of %q, but its raising event %d is %s of %q", a.Kind, a.Subject, raised.ID, raised.Kind, store.AlarmSubject(raised.Kind, raised))
		case store.AlarmSeverityOf(raised) != a.Severity:
			bad(a, "%s is %s; its raising event %d says %s", a.Kind, a.Severity, raised.ID, store.AlarmSeverityOf(raised))
		}
		if a.Open() {
			open[key] = append(open[key], a.ID)
			switch id, ok := v.openIndex[key]; {
			case !ok:
				bad(a, "open, but not in the index of open alarms: %s of %q would raise a second one", a.Kind, a.Subject)
			case id != a.ID:
				bad(a, "open, but the index of open alarms names alarm %d for %s of %q", id, a.Kind, a.Subject)
			}
		} else {
			cleared, ok := v.alarmEvents[a.ClearedEvent]
			switch {
			case !ok:
				bad(a, "cleared by event %d, which is not stored", a.ClearedEvent)
			case a.ClearedEvent <= a.RaisedEvent:
				bad(a, "cleared by event %d, not after its raising event %d", a.ClearedEvent, a.RaisedEvent)
			case !store.ClearsAlarm(cleared, a):
				bad(a, "cleared by event %d (%s of %q), which does not clear %s of %q", cleared.ID, cleared.Kind, store.AlarmSubject(a.Kind, cleared), a.Kind, a.Subject)
			}
		}
		if !a.Acked.IsZero() || a.AckedBy != "" || a.AckEvent != 0 {
			ack, ok := v.alarmEvents[a.AckEvent]
			switch {
			case a.Acked.IsZero() || a.AckedBy == "":
				bad(a, "acknowledged without who and when (by %q at %s)", a.AckedBy, a.Acked.Format(time.RFC3339))
			case !ok || ack.Kind != store.KindAlarmAcknowledged:
				bad(a, "acknowledged by %s, but its event %d is not a stored %s", a.AckedBy, a.AckEvent, store.KindAlarmAcknowledged)
			case a.AckEvent <= a.RaisedEvent:
				bad(a, "acknowledged by event %d, before it was raised by event %d", a.AckEvent, a.RaisedEvent)
			}
		}
	}
	for key, ids := range open {
		if len(ids) > 1 {
			report(Violation{Account: fmt.Sprintf("alarm %d", ids[1]), Problem: fmt.Sprintf("alarms %v are all open for %s of %q: one episode, one alarm", ids, key.Kind, key.Subject)})
		}
	}
	for key, id := range v.openIndex {
		if len(open[key]) == 0 {
			report(Violation{Account: fmt.Sprintf("alarm %d", id), Problem: fmt.Sprintf("the index of open alarms names it for %s of %q, where none is open", key.Kind, key.Subject)})
		}
	}
	// Every raising event opened an alarm or came while one of its kind
	// and subject was open: an alarm removed leaves its events behind.
	for _, e := range v.raising {
		key := store.AlarmKey{Kind: e.Kind, Subject: store.AlarmSubject(e.Kind, e)}
		list := byKey[key]
		i := sort.Search(len(list), func(i int) bool { return list[i].RaisedEvent > e.ID }) - 1
		if i < 0 || (!list[i].Open() && list[i].ClearedEvent < e.ID) {
			report(Violation{Account: "event " + strconv.FormatUint(e.ID, 10), Problem: fmt.Sprintf("%s of %q raised no alarm: none is stored for it", e.Kind, key.Subject)})
		}
	}
}
