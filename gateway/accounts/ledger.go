package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/billing/policy"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/enforce"
	"mallgrid/gateway/live"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// maxTopUp bounds one top-up: a payment above it is far more likely a typo
// (an extra zero) than a tenant's prepayment, and a mistaken credit is
// worse to undo than a refused one.
const maxTopUp = 100_000 * billing.Yuan

// channels a top-up may come through.
var channels = map[string]bool{"cash": true, "wechat": true, "alipay": true, "bank": true}

// Ledger is the accounts API over the store: web.Ledger. Set its fields
// before it serves.
type Ledger struct {
	DB     *store.DB
	Config *config.Config
	Now    func() time.Time
	// Accrued gives the charges not yet posted, by tenant; nil for none.
	Accrued func() map[string]billing.Money
	// Enforcer is enforcement: accounts' states, woken by a top-up; nil:
	// none.
	Enforcer *enforce.Enforcer
	// Events hears of receipts; nil: no one listens.
	Events *live.Hub
	// Log records every top-up with who entered it.
	Log zerolog.Logger

	spendCache spendCache
}

func (l *Ledger) accruedOf() map[string]billing.Money {
	if l.Accrued == nil {
		return nil
	}
	return l.Accrued()
}

func (l *Ledger) tenant(id string) (config.Tenant, error) {
	t, ok := l.Config.Tenant(id)
	if !ok {
		return t, fmt.Errorf("%w: no tenant %q", web.ErrNotFound, id)
	}
	return t, nil
}

// Accounts lists every configured tenant, with or without a ledger yet,
// then every account whose tenant is no longer configured, archived.
func (l *Ledger) Accounts() ([]web.AccountView, error) {
	stored, err := l.DB.Accounts()
	if err != nil {
		return nil, err
	}
	byID := make(map[string]store.Account, len(stored))
	for _, a := range stored {
		byID[a.ID] = a
	}
	accrued := l.accruedOf()
	spend := l.spends()
	out := make([]web.AccountView, 0, len(l.Config.Tenants))
	for _, t := range l.Config.Tenants {
		out = append(out, l.withCredit(l.withState(l.accountView(t, byID[t.ID], accrued[t.ID])), spend[t.ID]))
	}
	// Accounts whose tenant left the configuration (removed or renamed)
	// stay listed, archived: their money is still owed or due.
	for _, a := range stored {
		if _, ok := l.Config.Tenant(a.ID); !ok {
			out = append(out, l.archivedView(a, accrued[a.ID]))
		}
	}
	return out, nil
}

// archivedView is an account whose tenant is no longer configured.
func (l *Ledger) archivedView(a store.Account, accrued billing.Money) web.AccountView {
	v := l.accountView(config.Tenant{ID: a.ID, Name: a.ID}, a, accrued)
	v.State, v.Archived = "archived", true
	return v
}

// Account returns one tenant's account.
func (l *Ledger) Account(id string) (web.AccountView, error) {
	t, err := l.tenant(id)
	a, aerr := l.DB.Account(id)
	switch {
	case err != nil && aerr == nil:
		return l.archivedView(a, l.accruedOf()[id]), nil
	case err != nil:
		return web.AccountView{}, err
	case aerr != nil && !errors.Is(aerr, store.ErrNoAccount):
		return web.AccountView{}, aerr
	}
	v := l.withState(l.accountView(t, a, l.accruedOf()[id]))
	spend, err := l.spend24h(id, l.Now())
	if err != nil {
		return web.AccountView{}, err
	}
	return l.withCredit(v, spend), nil
}

// withState adds the account policy's state and pending cut-off.
func (l *Ledger) withState(v web.AccountView) web.AccountView {
	if l.Enforcer == nil {
		return v
	}
	st, flag := l.Enforcer.AccountState(v.Tenant)
	if st.State != "" {
		v.State = string(st.State)
	}
	if !st.CutOffAt.IsZero() && st.CutSince.IsZero() {
		at := l.Config.SiteTime(st.CutOffAt)
		v.PendingCutOff = &at
	}
	if flag.Active(l.Now()) {
		v.Protected = flag.Reason
		if !flag.Until.IsZero() {
			until := l.Config.SiteTime(flag.Until)
			v.ProtectedUntil = &until
		}
	}
	return v
}

// accountView is a tenant's account as the API shows it; its times are in
// the site's zone, as every time the API gives.
func (l *Ledger) accountView(t config.Tenant, a store.Account, accrued billing.Money) web.AccountView {
	v := web.AccountView{Tenant: t.ID, Name: t.Name, Balance: a.Balance.String(), Accrued: accrued.String(), State: "normal", Entries: a.Entries}
	if !a.Updated.IsZero() {
		u := l.Config.SiteTime(a.Updated)
		v.Updated = &u
	}
	return v
}

// Entries pages a tenant's ledger, newest first.
func (l *Ledger) Entries(id string, before uint64, limit int) ([]web.EntryView, error) {
	if _, err := l.Account(id); err != nil { // configured or archived
		return nil, err
	}
	entries, err := l.DB.Entries(id, before, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	reversed, err := l.DB.ReversedBy(ids)
	if err != nil {
		return nil, err
	}
	out := make([]web.EntryView, len(entries))
	for i, e := range entries {
		out[i] = l.entryView(e)
		out[i].ReversedBy = reversed[e.ID]
	}
	if err := l.withInvoices(out); err != nil {
		return nil, err
	}
	return out, nil
}

// entryView is a ledger entry as the API shows it, its times in the site's
// zone.
func (l *Ledger) entryView(e store.Entry) web.EntryView {
	v := web.EntryView{
		ID: e.ID, Time: l.Config.SiteTime(e.Time), Kind: string(e.Kind), Amount: e.Amount.String(), Balance: e.Balance.String(),
		Meter: e.Meter, From: l.siteTimePtr(e.From), To: l.siteTimePtr(e.To), Window: e.Window,
		Ref: e.Ref, Channel: e.Channel, Reverses: e.Reverses, Actor: e.Actor, Note: e.Note,
	}
	if e.Kind == store.Charge || e.Kind == store.Allocation {
		v.FromKWh, v.ToKWh, v.KWh = meter.FormatKWh(e.FromWh), meter.FormatKWh(e.ToWh), meter.FormatKWh(e.Wh)
		v.UnitPrice = e.UnitPrice.String()
	}
	if e.Kind == store.TopUp {
		v.Receipt = receiptOf(e)
	}
	return v
}

// receiptOf is a top-up's receipt number; a top-up credited before the
// gateway numbered receipts keeps the number its receipt was printed
// with, its entry id (the sequence starts above every such id).
func receiptOf(e store.Entry) string { return e.ReceiptNo() }

// TopUp checks a payment and credits it once per reference, with its
// e-invoice request (req.Invoice) when it has one, in one transaction. The
// same reference again (same tenant and amount) is the first entry,
// existing: with the same request or none, unchanged; with a request the
// entry did not have, that request stored. Another request than the
// entry's is web.ErrConflict wrapping store.ErrInvoiceConflict, returned
// with that entry and existing true: the money stands, the first request
// stands, and the caller says which it was told. Every other refusal says
// why, returns no entry and changes nothing.
func (l *Ledger) TopUp(_ context.Context, id string, req web.TopUpRequest, actor string) (web.EntryView, bool, error) {
	t, err := l.tenant(id)
	if err != nil {
		if _, aerr := l.DB.Account(id); aerr == nil {
			return web.EntryView{}, false, fmt.Errorf("%w: account %s is archived: its tenant is no longer in the configuration", web.ErrConflict, id)
		}
		return web.EntryView{}, false, err
	}
	amount, err := checkTopUp(req)
	if err != nil {
		return web.EntryView{}, false, err
	}
	invoice, err := checkInvoice(req.Invoice)
	if err != nil {
		return web.EntryView{}, false, err
	}
	e, receipt, existing, err := l.DB.PostTopUpWith(store.Entry{
		Account: id, Amount: amount, Ref: req.Ref, Channel: req.Channel, Time: l.Now(), Actor: actor, Note: req.Note,
	}, store.TopUpOptions{Invoice: invoice, Receipt: func(e store.Entry) store.Event {
		no := receiptOf(e)
		return store.Event{Time: e.Time, Kind: "topup_receipt", Tenant: e.Account,
			Text: fmt.Sprintf("%s: top-up of %s received (%s, ref %s, receipt %s); balance %s", t.Name, e.Amount, e.Channel, e.Ref, no, e.Balance),
			Args: map[string]string{"tenant_name": t.Name, "amount": e.Amount.String(), "channel": e.Channel, "ref": e.Ref,
				"receipt": no, "balance": e.Balance.String()}}
	}})
	if errors.Is(err, store.ErrInvoiceConflict) {
		// The payment was credited: its entry, with the request it has,
		// goes with the refusal of the other request, so that the uplink
		// answers the money as existing and the invoice apart.
		l.Log.Warn().Str("tenant", id).Str("ref", e.Ref).Uint64("entry", e.ID).Str("actor", actor).
			Msg("top-up sent again with another invoice request: the first request stands")
		views := []web.EntryView{l.entryView(e)}
		if ierr := l.withInvoices(views); ierr != nil {
			l.Log.Error().Err(ierr).Str("ref", e.Ref).Msg("top-up's invoice request could not be read")
		}
		return views[0], true, fmt.Errorf("%w: %w", web.ErrConflict, err)
	}
	if errors.Is(err, store.ErrRefConflict) {
		return web.EntryView{}, false, fmt.Errorf("%w: %v", web.ErrConflict, err)
	}
	if errors.Is(err, store.ErrBadEntry) { // e.g. a balance beyond any real one
		return web.EntryView{}, false, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	if err != nil {
		return web.EntryView{}, false, err
	}
	if receipt != nil && l.Events != nil {
		l.Events.Publish([]store.Event{*receipt})
	}
	if !existing {
		l.Log.Info().Str("tenant", id).Str("amount", e.Amount.String()).Str("ref", e.Ref).Str("channel", e.Channel).
			Str("actor", actor).Str("balance", e.Balance.String()).Uint64("entry", e.ID).Str("receipt", receiptOf(e)).Bool("invoice", invoice != nil).Msg("top-up credited")
	}
	if !existing {
		l.balanceChanged() // a top-up may restore a cut-off tenant: at once, not at the next tick
	}
	views := []web.EntryView{l.entryView(e)}
	if err := l.withInvoices(views); err != nil {
		// The money is credited: the answer says so, without its invoice.
		l.Log.Error().Err(err).Str("ref", e.Ref).Msg("top-up's invoice request could not be read")
	}
	return views[0], existing, nil
}

// balanceChanged tells enforcement that an account's balance changed
// outside a bus cycle (a top-up, a correction): it looks at the accounts
// now rather than at its next tick.
func (l *Ledger) balanceChanged() {
	if l.Enforcer != nil {
		l.Enforcer.Wake()
	}
}

func checkTopUp(req web.TopUpRequest) (billing.Money, error) {
	invalid := func(format string, args ...any) (billing.Money, error) {
		return 0, fmt.Errorf("%w: %s", web.ErrInvalid, fmt.Sprintf(format, args...))
	}
	amount, err := billing.ParseMoney(req.Amount)
	switch {
	case err != nil:
		return invalid("amount: %v", err)
	case amount <= 0:
		return invalid("amount %s: a top-up must be more than zero", req.Amount)
	case amount%billing.Fen != 0:
		return invalid("amount %s: the fen (0.01) is the smallest amount paid", req.Amount)
	case amount > maxTopUp:
		return invalid("amount %s: over the limit of %s for one top-up", req.Amount, maxTopUp)
	case req.Ref == "" || len(req.Ref) > 64 || !printable(req.Ref):
		return invalid("ref %q: want the payment's reference, 1 to 64 printable characters", req.Ref)
	case !channels[req.Channel]:
		return invalid("channel %q: want cash, wechat, alipay or bank", req.Channel)
	}
	if err := checkText("note", req.Note, false); err != nil {
		return 0, err
	}
	return amount, nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// Protect sets or lifts an operator's protection flag; both need a reason,
// which is recorded with who.
func (l *Ledger) Protect(_ context.Context, id string, req web.ProtectRequest, actor string) (web.AccountView, error) {
	if _, err := l.tenant(id); err != nil {
		return web.AccountView{}, err
	}
	if l.Enforcer == nil {
		return web.AccountView{}, fmt.Errorf("%w: enforcement is not running", web.ErrInvalid)
	}
	if req.Protected == nil {
		return web.AccountView{}, fmt.Errorf("%w: protected: say true or false", web.ErrInvalid)
	}
	if req.Reason == "" {
		return web.AccountView{}, fmt.Errorf("%w: reason: say why the account is protected, or why its protection is lifted; it is recorded", web.ErrInvalid)
	}
	var flag *policy.Protection
	switch {
	case *req.Protected:
		flag = &policy.Protection{Reason: req.Reason}
		if req.Until != "" {
			until, err := time.Parse(time.RFC3339, req.Until)
			if err != nil || !until.After(l.Now()) {
				return web.AccountView{}, fmt.Errorf("%w: until %q: want a future RFC 3339 time", web.ErrInvalid, req.Until)
			}
			flag.Until = until
		}
	case req.Until != "":
		return web.AccountView{}, fmt.Errorf("%w: until: only when setting protection; a lift is at once", web.ErrInvalid)
	}
	if err := l.Enforcer.SetProtection(id, flag, req.Reason, actor); err != nil {
		return web.AccountView{}, err
	}
	return l.Account(id)
}

func (l *Ledger) siteTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	st := l.Config.SiteTime(*t)
	return &st
}
