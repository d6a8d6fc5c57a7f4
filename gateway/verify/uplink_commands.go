package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"mallgrid/store"
)

// commandResult is what verify reads of a command's stored result, the
// command_result body gateway/uplink made (uplink.Result; verify is below
// that package, so it reads the JSON names). Every name of the format is
// here: an unknown one is a result the gateway did not write.
type commandResult struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	Reason        string `json:"reason"`
	Detail        string `json:"detail"`
	PayloadSHA256 string `json:"payload_sha256"`
	Entry         uint64 `json:"entry"`
	Receipt       string `json:"receipt"`
	Balance       string `json:"balance"`
	Existing      *bool  `json:"existing"`
	Invoice       string `json:"invoice"`
	Ref           string `json:"ref"`
	InvoiceStatus string `json:"invoice_status"`
	Duplicate     bool   `json:"duplicate"`
}

// recordedRefusals are the refusals a command is recorded with: the
// ledger's answers to a command that was trusted. One refused before
// (forged, stale, another site's) is reported and never recorded, so a
// record with such a reason was not written by the gateway.
var recordedRefusals = map[string]bool{"unknown_tenant": true, "invalid": true, "ref_conflict": true, "unknown_ref": true, "invoice_issued": true}

// checkUplinkCommands: each record of a command from the group's platform
// (bucket uplink_commands) can be read — the daemon answers a command
// delivered again from it — was handled before its command expired (or,
// after, answers that its payment was credited before: ok, existing), and
// holds its first result, which agrees with the ledger: a top-up it says
// credited is a top-up entry with that receipt number and balance — of the
// ref, tenant and amount the command named, when the record keeps them —, one it
// says credited anew was entered by the uplink (actor uplink:<key>) and is
// said so by no other command, one it says credited before with another
// invoice request ("invoice":"conflict") has an invoice request, and an
// invoice status it says recorded is an invoice request's.
func checkUplinkCommands(v *ledgerView, report func(Violation)) {
	bad := func(id, format string, args ...any) {
		report(Violation{Account: fmt.Sprintf("uplink command %q", id), Problem: fmt.Sprintf(format, args...)})
	}
	for _, b := range v.badCommands {
		bad(b[0], "its record cannot be read: %s", b[1])
	}
	byID := make(map[uint64]store.Entry, len(v.entries))
	for _, e := range v.entries {
		byID[e.ID] = e
	}
	invoices := make(map[string]store.Invoice, len(v.invoices))
	for _, inv := range v.invoices {
		invoices[inv.Ref] = inv
	}
	anew := make(map[uint64]string) // entry → the command that says it credited it anew
	for _, c := range v.commands {
		var r commandResult
		d := json.NewDecoder(bytes.NewReader(c.Result))
		d.DisallowUnknownFields()
		if err := d.Decode(&r); err != nil {
			bad(c.ID, "its result cannot be read: %v", err)
			continue
		}
		// Handled after it expired only to answer a payment credited
		// before (its credit kept, its record not, before a stop).
		if !c.Handled.Before(c.Expires) && (r.Status != "ok" || r.Existing == nil || !*r.Existing) {
			bad(c.ID, "handled at %s, not before it expired at %s", c.Handled.Format("2006-01-02T15:04:05Z07:00"), c.Expires.Format("2006-01-02T15:04:05Z07:00"))
		}
		switch {
		case r.ID != c.ID:
			bad(c.ID, "its result is command %q's", r.ID)
		case r.Duplicate:
			bad(c.ID, "its result is marked a duplicate: a record keeps the first result")
		case r.Status == "refused" && !recordedRefusals[r.Reason]:
			bad(c.ID, "recorded refused as %q, a refusal that is never recorded", r.Reason)
		case r.Status == "refused":
		case r.Status != "ok":
			bad(c.ID, "its result's status is %q", r.Status)
		case r.Entry != 0:
			checkCommandCredit(c.ID, r, byID, bad)
			if e, ok := byID[r.Entry]; ok && c.Ref != "" && (e.Ref != c.Ref || e.Account != c.Tenant || e.Amount.String() != c.Amount) {
				bad(c.ID, "was a top-up of %s to %s under %s; the entry %d its result names is %s to %s under %s",
					c.Amount, c.Tenant, c.Ref, r.Entry, e.Amount, e.Account, e.Ref)
			}
			checkCommandInvoice(c.ID, r, byID, invoices, bad)
			if r.Existing != nil && !*r.Existing {
				if first, dup := anew[r.Entry]; dup {
					bad(c.ID, "says it credited entry %d anew, as command %q says too: a payment is credited once", r.Entry, first)
				} else {
					anew[r.Entry] = c.ID
				}
			}
		case r.InvoiceStatus != "":
			if _, ok := invoices[r.Ref]; !ok {
				bad(c.ID, "says the invoice of %s is %s, but %s has no invoice request", r.Ref, r.InvoiceStatus, r.Ref)
			}
		default:
			bad(c.ID, "ok, but its result names neither a top-up's entry nor an invoice")
		}
	}
}

// checkCommandCredit: a top-up command's ok result names the entry that
// credited its payment, as it stands in the ledger.
func checkCommandCredit(id string, r commandResult, byID map[uint64]store.Entry, bad func(id, format string, args ...any)) {
	e, ok := byID[r.Entry]
	switch {
	case !ok:
		bad(id, "says entry %d credited it; the ledger has no entry %d", r.Entry, r.Entry)
	case e.Kind != store.TopUp:
		bad(id, "says entry %d credited it; that entry is a %s", r.Entry, e.Kind)
	case e.ReceiptNo() != r.Receipt || e.Balance.String() != r.Balance:
		bad(id, "says entry %d is receipt %s with balance %s; the ledger says %s and %s", r.Entry, r.Receipt, r.Balance, e.ReceiptNo(), e.Balance)
	case r.Existing == nil:
		bad(id, "its result does not say whether the payment was credited before")
	case !*r.Existing && !strings.HasPrefix(e.Actor, "uplink:"):
		bad(id, "says it credited entry %d anew; that entry was entered by %q, not by the uplink", r.Entry, e.Actor)
	}
}

// checkCommandInvoice: a top-up command's result says its invoice request
// conflicted only as "conflict", only for a payment credited before, and
// only when that payment's entry has a request of its own (the first,
// which stood).
func checkCommandInvoice(id string, r commandResult, byID map[uint64]store.Entry, invoices map[string]store.Invoice, bad func(id, format string, args ...any)) {
	if r.Invoice == "" {
		return
	}
	e := byID[r.Entry]
	switch inv, ok := invoices[e.Ref]; {
	case r.Invoice != "conflict":
		bad(id, "its result's invoice is %q; the gateway writes only \"conflict\"", r.Invoice)
	case r.Existing == nil || !*r.Existing:
		bad(id, "says its invoice request conflicted with entry %d's, yet that it credited the payment anew", r.Entry)
	case !ok || inv.Entry != r.Entry:
		bad(id, "says its invoice request conflicted with entry %d's, which has none", r.Entry)
	}
}
