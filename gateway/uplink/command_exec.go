package uplink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// execute carries a trusted command out through the ledger. A refusal is
// the ledger's (nothing changed); an error is the database's.
func (c *Commands) execute(ctx context.Context, msg checked) (Result, *refusal, error) {
	switch cmd := msg.command.(type) {
	case *topUpCommand:
		return c.topUp(ctx, msg, cmd)
	case *invoiceStatusCommand:
		return c.invoiceStatus(ctx, msg, cmd)
	}
	return Result{}, nil, fmt.Errorf("command %s: kind %q has no handler", msg.id, msg.head.Kind)
}

// topUp credits a payment made upstream through the local API's path:
// the same checks, once per ref whichever way it came first, the receipt
// event, enforcement woken, the invoice request stored with it.
func (c *Commands) topUp(ctx context.Context, msg checked, cmd *topUpCommand) (Result, *refusal, error) {
	if _, ok := c.Config.Tenant(cmd.Tenant); !ok {
		// An archived account is refused here too: the ledger would call
		// it a conflict, which the platform would take for its ref.
		return Result{}, refuse(ReasonUnknownTenant, "tenant %q is not in the site's configuration", clip(cmd.Tenant)), nil
	}
	req := web.TopUpRequest{Amount: cmd.Amount, Ref: cmd.Ref, Channel: cmd.Channel}
	if cmd.Invoice != nil {
		// Paid upstream: the money is not refused over the gateway's guess
		// that a title names a company (web.InvoiceRequest.Upstream).
		req.Invoice = &web.InvoiceRequest{Title: cmd.Invoice.Title, TaxID: cmd.Invoice.TaxID, Email: cmd.Invoice.Email, Upstream: true}
	}
	e, existing, err := c.Ledger.TopUp(ctx, cmd.Tenant, req, "uplink:"+msg.keyID)
	switch {
	case errors.Is(err, store.ErrInvoiceConflict):
		// The payment was credited before (at the till, say) with another
		// invoice request: the money is that entry, and only the invoice
		// differs — not a ref_conflict, which the platform would take for
		// a payment to refund.
		existing = true
		return Result{ID: msg.id, Status: StatusOK, Entry: e.ID, Receipt: e.Receipt, Balance: e.Balance, Existing: &existing, Invoice: InvoiceConflict}, nil, nil
	case errors.Is(err, web.ErrNotFound):
		return Result{}, refuse(ReasonUnknownTenant, "%v", err), nil
	case errors.Is(err, web.ErrInvalid):
		return Result{}, refuse(ReasonInvalid, "%v", err), nil
	case errors.Is(err, web.ErrConflict):
		return Result{}, refuse(ReasonRefConflict, "%v", err), nil
	case err != nil:
		return Result{}, nil, fmt.Errorf("top-up of command %s: %w", msg.id, err)
	}
	return Result{ID: msg.id, Status: StatusOK, Entry: e.ID, Receipt: e.Receipt, Balance: e.Balance, Existing: &existing}, nil, nil
}

// creditedBefore is the answer to a trusted top-up about to be refused
// (ref) when its payment was credited before, to its tenant and amount:
// ok, existing, with that entry. A refusal never means that a credited
// payment was not credited — a command whose credit was kept but whose
// record was not (a stop, a write failing between the two transactions)
// comes again, perhaps after it expired, and the platform must not take
// its refusal for a payment to refund. The command's invoice request, if
// any, is not looked at: the money is the answer.
func (c *Commands) creditedBefore(msg checked, ref *refusal) (Result, bool, error) {
	cmd, ok := msg.command.(*topUpCommand)
	if !ok || !msg.trusted {
		return Result{}, false, nil
	}
	amount, err := billing.ParseMoney(cmd.Amount)
	if err != nil {
		return Result{}, false, nil
	}
	e, found, err := c.DB.CreditedRef(cmd.Ref)
	if err != nil {
		return Result{}, false, fmt.Errorf("command %s: look up ref: %w", msg.id, err)
	}
	if !found || e.Kind != store.TopUp || e.Account != cmd.Tenant || e.Amount != amount {
		return Result{}, false, nil
	}
	c.Log.Info().Str("command", msg.id).Str("key_id", msg.keyID).Str("would_refuse", ref.reason).Str("ref", cmd.Ref).Uint64("entry", e.ID).
		Msg("uplink top-up's payment was credited before: answered with that entry, not refused")
	existing := true
	return Result{ID: msg.id, Status: StatusOK, Entry: e.ID, Receipt: e.ReceiptNo(), Balance: e.Balance.String(), Existing: &existing}, true, nil
}

// answerCredited answers, without recording it, a command whose id is
// another's (replayed) but whose payment was credited before.
func (c *Commands) answerCredited(msg checked, res Result, now time.Time) error {
	m, err := c.message(res, now)
	if err != nil {
		return err
	}
	if _, _, err := c.DB.ReportUplinkCommand(m); err != nil {
		return fmt.Errorf("answer command %s: %w", msg.id, err)
	}
	return nil
}

// invoiceStatus records what became of a top-up's invoice request.
func (c *Commands) invoiceStatus(ctx context.Context, msg checked, cmd *invoiceStatusCommand) (Result, *refusal, error) {
	inv, err := c.Ledger.InvoiceStatus(ctx, cmd.Ref, cmd.Status, cmd.Number, cmd.URL, cmd.Reason)
	switch {
	case errors.Is(err, web.ErrNotFound), errors.Is(err, store.ErrNoInvoice):
		return Result{}, refuse(ReasonUnknownRef, "%v", err), nil
	case errors.Is(err, web.ErrConflict), errors.Is(err, store.ErrInvoiceIssued):
		return Result{}, refuse(ReasonInvoiceIssued, "%v", err), nil
	case errors.Is(err, web.ErrInvalid), errors.Is(err, store.ErrBadInvoice):
		return Result{}, refuse(ReasonInvalid, "%v", err), nil
	case err != nil:
		return Result{}, nil, fmt.Errorf("invoice status of command %s: %w", msg.id, err)
	}
	return Result{ID: msg.id, Status: StatusOK, Ref: inv.Ref, InvoiceStatus: inv.Status}, nil, nil
}

// answerAgain answers a command delivered again, same bytes under the
// same id, with its first result, marked a duplicate. Nothing is carried
// out and the control room is not told: delivery is at least once.
func (c *Commands) answerAgain(msg checked, rec store.UplinkCommand, now time.Time) error {
	var res Result
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		return fmt.Errorf("command %s: stored result: %w: %v", msg.id, store.ErrCorrupt, err)
	}
	res.Duplicate = true
	m, err := c.message(res, now)
	if err != nil {
		return err
	}
	if _, _, err := c.DB.ReportUplinkCommand(m); err != nil {
		return fmt.Errorf("answer command %s again: %w", msg.id, err)
	}
	c.Log.Info().Str("command", msg.id).Str("key_id", msg.keyID).Str("status", res.Status).Msg("uplink command delivered again: answered with its first result")
	return nil
}

// report answers a command refused before it was recorded, stores the
// refusal's event with the answer and logs it.
func (c *Commands) report(msg checked, payload []byte, now time.Time, ref *refusal) error {
	m, err := c.message(c.refusedResult(msg, payload, ref), now)
	if err != nil {
		return err
	}
	var evs []store.Event
	if e, ok := c.floodGate(msg, now, ref); ok {
		evs = append(evs, e)
	}
	_, stored, err := c.DB.ReportUplinkCommand(m, evs...)
	if err != nil {
		return fmt.Errorf("report refused command %q: %w", msg.id, err)
	}
	c.publish(stored)
	if len(evs) > 0 {
		c.logRefusal(msg, ref)
	}
	return nil
}

// floodWindow is the minute of an untrusted refusal's last event, and how
// many like it were answered since without one.
type floodWindow struct {
	start  time.Time
	merged int
}

// floodGate is the event of a refusal, or false when it is merged: a
// message refused before its signature was found good (unreadable, an
// unknown key, a bad signature) is anyone's, and a flood of them must not
// fill the events bucket, the control room's pages and the log. One event
// a minute per key (every unknown key counting as one) and reason; the
// ones merged are counted in the next one's detail. Every message is still
// answered by its own result: the platform matches answers to messages,
// and the broker's ACL (who may publish to down) is the first limit.
func (c *Commands) floodGate(msg checked, now time.Time, ref *refusal) (store.Event, bool) {
	if msg.trusted {
		return c.event(msg, now, ref), true
	}
	k := [2]string{"", ref.reason}
	if _, ok := c.Keys[msg.keyID]; ok {
		k[0] = msg.keyID
	}
	if c.flood == nil {
		c.flood = map[[2]string]*floodWindow{}
	}
	w := c.flood[k]
	if w != nil {
		if d := now.Sub(w.start); d >= 0 && d < time.Minute {
			w.merged++
			return store.Event{}, false
		}
	}
	e := c.event(msg, now, ref)
	if w != nil && w.merged > 0 {
		more := fmt.Sprintf(" — and %d more like it in the minute before, answered without an event", w.merged)
		e.Args["detail"] += more
		e.Text = strings.TrimSuffix(e.Text, ".") + more + "."
	}
	c.flood[k] = &floodWindow{start: now}
	return e, true
}

func (c *Commands) publish(evs []store.Event) {
	if c.Events != nil && len(evs) > 0 {
		c.Events.Publish(evs)
	}
}

func (c *Commands) refusedResult(msg checked, payload []byte, ref *refusal) Result {
	res := Result{ID: msg.id, Status: StatusRefused, Reason: ref.reason, Detail: ref.detail}
	// An id read before the signature was checked is anyone's: the
	// message's SHA-256 goes with it, so the platform can tell its own
	// command from one sent under its id.
	if msg.id == "" || !msg.trusted {
		sum := sha256.Sum256(payload)
		res.PayloadSHA256 = hex.EncodeToString(sum[:])
	}
	return res
}

// message is a result as an uplink message.
func (c *Commands) message(res Result, now time.Time) (store.UplinkMessage, error) {
	data, err := json.Marshal(res)
	if err != nil {
		return store.UplinkMessage{}, fmt.Errorf("command %s: result: %w", res.ID, err)
	}
	c.last.note(res, now)
	return store.UplinkMessage{Kind: store.KindCommandResult, Time: now, Data: data}, nil
}

// event is a refusal as the control room sees it. A command with no id
// fit to repeat is told in the kind's no_id form.
func (c *Commands) event(msg checked, now time.Time, ref *refusal) store.Event {
	args := map[string]string{"command": msg.id, "reason": ref.reason, "detail": ref.detail, "key": msg.keyID, "command_kind": msg.head.Kind}
	text := fmt.Sprintf("Command %s from the group's platform refused (%s): %s.", msg.id, ref.reason, ref.detail)
	if msg.id == "" {
		args["form"] = "no_id"
		text = fmt.Sprintf("A message from the group's platform refused (%s): %s.", ref.reason, ref.detail)
	}
	e := store.Event{Time: now, Kind: KindCommandRefused, Text: text, Args: args}
	if msg.trusted {
		if _, ok := c.Config.Tenant(msg.tenant); ok {
			e.Tenant = msg.tenant
		}
	}
	return e
}

func (c *Commands) logRefusal(msg checked, ref *refusal) {
	c.Log.Warn().Str("command", msg.id).Str("key_id", msg.keyID).Str("kind", msg.head.Kind).Str("reason", ref.reason).
		Str("detail", ref.detail).Msg("uplink command refused")
}

// prune deletes, now and then, the records of commands expired long
// enough ago that their commands are refused as expired.
func (c *Commands) prune(now time.Time) {
	// A clock set back does not hold pruning off until it catches up.
	if d := now.Sub(c.lastPrune); d >= 0 && d < pruneEvery {
		return
	}
	c.lastPrune = now
	n, err := c.DB.PruneUplinkCommands(now, keepSeen, pruneBatch)
	if err != nil {
		c.Log.Warn().Err(err).Msg("pruning seen uplink commands")
		return
	}
	if n > 0 {
		c.Log.Debug().Int("pruned", n).Msg("seen uplink commands pruned")
	}
}
