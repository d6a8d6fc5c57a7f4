package accounts

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"mallgrid/billing"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// maxText bounds a reason or a note: a sentence the ledger, the page and
// the finance report show, not a letter.
const maxText = 200

// maxAdjustment bounds one adjustment either way, as maxTopUp bounds a
// top-up: an extra zero is likelier than a correction that large.
const maxAdjustment = maxTopUp

// Reverse implements web.Corrections: finance's reversal of one entry of
// a tenant's account (a top-up, a charge, an adjustment; an allocation is
// undone with its posting), once per reference. The reversal changes the
// balance as a top-up does, so enforcement looks at the account at once:
// a reversed top-up can bring a cut-off after the grace time, a reversed
// charge restores power.
func (l *Ledger) Reverse(_ context.Context, id string, req web.ReversalRequest, actor string) (web.EntryView, bool, error) {
	if err := l.correctable(id); err != nil {
		return web.EntryView{}, false, err
	}
	if req.Entry == 0 {
		return web.EntryView{}, false, fmt.Errorf("%w: entry: want the id of the entry to reverse (the ledger's id column)", web.ErrInvalid)
	}
	if err := checkCorrection(req.Reason, req.Ref); err != nil {
		return web.EntryView{}, false, err
	}
	e, existing, err := l.DB.PostCorrection(store.Entry{Account: id, Kind: store.Reversal, Reverses: req.Entry,
		Ref: req.Ref, Note: req.Reason, Actor: actor, Time: l.Now()})
	return l.corrected(e, existing, err)
}

// Adjust implements web.Corrections: finance's credit or debit of a
// tenant's account with a reason, once per reference; enforcement looks at
// the account at once, as after a top-up.
func (l *Ledger) Adjust(_ context.Context, id string, req web.AdjustmentRequest, actor string) (web.EntryView, bool, error) {
	if err := l.correctable(id); err != nil {
		return web.EntryView{}, false, err
	}
	amount, err := billing.ParseMoney(req.Amount)
	switch {
	case err != nil:
		return web.EntryView{}, false, fmt.Errorf("%w: amount: %v", web.ErrInvalid, err)
	case amount == 0:
		return web.EntryView{}, false, fmt.Errorf("%w: amount %s: an adjustment is a credit (\"5.00\") or a debit (\"-12.30\"), not zero", web.ErrInvalid, req.Amount)
	case amount%billing.Fen != 0:
		return web.EntryView{}, false, fmt.Errorf("%w: amount %s: the fen (0.01) is the smallest amount", web.ErrInvalid, req.Amount)
	case amount > maxAdjustment || amount < -maxAdjustment:
		return web.EntryView{}, false, fmt.Errorf("%w: amount %s: over the limit of %s either way for one adjustment", web.ErrInvalid, req.Amount, maxAdjustment)
	}
	if err := checkCorrection(req.Reason, req.Ref); err != nil {
		return web.EntryView{}, false, err
	}
	e, existing, err := l.DB.PostCorrection(store.Entry{Account: id, Kind: store.Adjustment, Amount: amount,
		Ref: req.Ref, Note: req.Reason, Actor: actor, Time: l.Now()})
	return l.corrected(e, existing, err)
}

// correctable: a configured tenant's account, or an archived one (its
// tenant left the configuration; its money is still settled).
func (l *Ledger) correctable(id string) error {
	if _, err := l.tenant(id); err == nil {
		return nil
	}
	if _, err := l.DB.Account(id); err != nil {
		if errors.Is(err, store.ErrNoAccount) {
			return fmt.Errorf("%w: no tenant %q", web.ErrNotFound, id)
		}
		return err
	}
	return nil
}

// corrected maps the store's answer to the API's, and wakes enforcement
// for a correction posted.
func (l *Ledger) corrected(e store.Entry, existing bool, err error) (web.EntryView, bool, error) {
	switch {
	case errors.Is(err, store.ErrNoEntry):
		return web.EntryView{}, false, fmt.Errorf("%w: %v", web.ErrNotFound, err)
	case errors.Is(err, store.ErrRefConflict), errors.Is(err, store.ErrReversed):
		return web.EntryView{}, false, fmt.Errorf("%w: %v", web.ErrConflict, err)
	case errors.Is(err, store.ErrNotReversible), errors.Is(err, store.ErrBadEntry):
		return web.EntryView{}, false, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	case err != nil:
		return web.EntryView{}, false, err
	}
	v := l.entryView(e)
	if existing {
		return v, true, nil
	}
	ev := l.Log.Info().Str("tenant", e.Account).Str("kind", string(e.Kind)).Str("amount", e.Amount.String()).Str("ref", e.Ref).
		Str("actor", e.Actor).Str("reason", e.Note).Str("balance", e.Balance.String()).Uint64("entry", e.ID)
	if e.Reverses != 0 {
		ev = ev.Uint64("reverses", e.Reverses)
	}
	ev.Msg("correction posted")
	// The balance changed as a top-up changes it: a credit may restore a
	// cut-off tenant at once, a debit starts the policy's way to a cut-off
	// (warnings, grace) now, not at the next tick.
	l.balanceChanged()
	return v, false, nil
}

// checkCorrection checks a correction's reason and reference.
func checkCorrection(reason, ref string) error {
	if err := checkText("reason", reason, true); err != nil {
		return err
	}
	if ref == "" || len(ref) > 64 || !printable(ref) {
		return fmt.Errorf("%w: ref %q: want the correction's reference, 1 to 64 printable characters without spaces; "+
			"the same reference sent again is answered with the first correction", web.ErrInvalid, ref)
	}
	return nil
}

// checkText checks a reason or a note: at most maxText characters, no
// control or invisible characters (unseen: it is shown on pages and in
// reports as one line, as it reads).
func checkText(field, s string, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%w: %s: say why; it is kept in the ledger with who", web.ErrInvalid, field)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s: not UTF-8", web.ErrInvalid, field)
	case utf8.RuneCountInString(s) > maxText:
		return fmt.Errorf("%w: %s: %d characters; at most %d", web.ErrInvalid, field, utf8.RuneCountInString(s), maxText)
	}
	for _, r := range s {
		if unseen(r) {
			return fmt.Errorf("%w: %s: a control or invisible character (%U); one line of text", web.ErrInvalid, field, r)
		}
	}
	return nil
}
