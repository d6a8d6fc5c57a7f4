package verify

import (
	"fmt"

	"mallgrid/store"
)

// checkInvoices: each e-invoice request belongs to a top-up — its entry is
// a top-up of its tenant under its reference — and says where it stands in
// a status the gateway writes: requested (nothing answered yet), issued
// with its number, or failed (no number). A request pointing at another
// entry would be sent up with the wrong payment, or shown on another
// tenant's ledger; an issued one without its number can never be matched
// to the invoice the platform made.
func checkInvoices(v *ledgerView, report func(Violation)) {
	for _, p := range v.badInvoices {
		report(Violation{Account: "invoices", Problem: p})
	}
	byID := make(map[uint64]store.Entry)
	for _, e := range v.entries {
		if e.Kind == store.TopUp {
			byID[e.ID] = e
		}
	}
	for _, inv := range v.invoices {
		bad := func(format string, args ...any) {
			report(Violation{Account: inv.Tenant, Entry: inv.Entry, Problem: fmt.Sprintf("invoice %s: ", inv.Ref) + fmt.Sprintf(format, args...)})
		}
		e, ok := byID[inv.Entry]
		switch {
		case !ok && v.kindOf(inv.Entry) == "":
			bad("its top-up, entry %d, does not exist", inv.Entry)
		case !ok:
			bad("entry %d is a %s, not a top-up", inv.Entry, v.kindOf(inv.Entry))
		case e.Ref != inv.Ref:
			bad("entry %d is the top-up with reference %s", inv.Entry, e.Ref)
		case e.Account != inv.Tenant:
			bad("entry %d is a top-up of %s", inv.Entry, e.Account)
		}
		if inv.Title == "" {
			bad("no title")
		}
		switch inv.Status {
		case store.InvoiceRequested:
			if inv.Number != "" || inv.URL != "" {
				bad("requested, yet it has a number or a link")
			}
		case store.InvoiceIssued:
			if inv.Number == "" {
				bad("issued without its number")
			}
		case store.InvoiceFailed:
			if inv.Number != "" || inv.URL != "" {
				bad("failed, yet it has a number or a link")
			}
		default:
			bad("status %q is none the gateway writes", inv.Status)
		}
	}
}
