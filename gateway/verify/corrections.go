package verify

import (
	"fmt"

	"mallgrid/store"
)

// checkCorrectionRefs: a correction is kept once per reference, and its
// reference is no other entry's (a payment's, another correction's) — else
// a client's retry could have been taken for a second correction.
func checkCorrectionRefs(v *ledgerView, report func(Violation)) {
	refs := make(map[string]uint64)
	for _, e := range v.entries {
		if e.Ref == "" {
			continue
		}
		prev, dup := refs[e.Ref]
		if !dup {
			refs[e.Ref] = e.ID
			continue
		}
		if e.Kind == store.Adjustment || e.Kind == store.Reversal || v.kindOf(prev) == store.Adjustment || v.kindOf(prev) == store.Reversal {
			report(entryViolation(e, "reference %s already used by entry %d", e.Ref, prev))
		}
	}
}

// checkRefIndex: the index that keeps a payment or a correction once per
// reference (store topup_refs) says what the entries say. Each top-up's and
// correction's reference is indexed to its entry — a reference missing
// there would be credited or corrected again when the client retries —
// and each indexed reference names an entry that carries it. An entry
// under a reference an earlier entry holds is the topup and correction_ref
// rules' to report; the index names the first.
func checkRefIndex(v *ledgerView, report func(Violation)) {
	byID := make(map[uint64]store.Entry)
	first := make(map[string]bool)
	for _, e := range v.entries {
		if e.Ref == "" || (e.Kind != store.TopUp && e.Kind != store.Adjustment && e.Kind != store.Reversal) {
			continue
		}
		byID[e.ID] = e
		if first[e.Ref] {
			continue
		}
		first[e.Ref] = true
		switch id, ok := v.corrections.Refs[e.Ref]; {
		case !ok:
			report(entryViolation(e, "reference %s is not in the index of references: a retry would be posted again", e.Ref))
		case id != e.ID:
			report(entryViolation(e, "reference %s is indexed to entry %d, not to this entry", e.Ref, id))
		}
	}
	index := func(format string, args ...any) {
		report(Violation{Account: "corrections index", Problem: fmt.Sprintf(format, args...)})
	}
	for ref, id := range v.corrections.Refs {
		e, ok := byID[id]
		switch {
		case !ok && v.kindOf(id) == "":
			index("reference %s is indexed to entry %d, which does not exist", ref, id)
		case !ok:
			index("reference %s is indexed to entry %d, a %s, which no reference keeps", ref, id, v.kindOf(id))
		case e.Ref != ref:
			index("reference %s is indexed to entry %d, whose reference is %s", ref, id, e.Ref)
		}
	}
}

// kindOf is the kind of entry id (entries are in id order).
func (v *ledgerView) kindOf(id uint64) store.Kind {
	lo, hi := 0, len(v.entries)
	for lo < hi {
		mid := (lo + hi) / 2
		switch {
		case v.entries[mid].ID == id:
			return v.entries[mid].Kind
		case v.entries[mid].ID < id:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return ""
}

// checkReceipts: receipt numbers are the site's one sequence — the
// numbered top-ups, in the order credited, are 1, 2, 3… (or, in a
// database upgraded from schema 7, follow the highest entry id it had,
// the numbers of its top-ups' receipts) with no gap and no number twice;
// every top-up since has one, and nothing but a top-up has one.
func checkReceipts(v *ledgerView, report func(Violation)) {
	last := v.corrections.Legacy
	for _, e := range v.entries {
		switch {
		case e.Receipt != 0 && e.Kind != store.TopUp:
			report(entryViolation(e, "%s with receipt %s", e.Kind, store.ReceiptNumber(e.Receipt)))
		case e.Kind != store.TopUp:
		case e.Receipt == 0 && e.ID > v.corrections.Legacy:
			report(entryViolation(e, "top-up without a receipt number"))
		case e.Receipt == 0: // from before receipt numbers: its entry id was printed
		case e.Receipt <= last:
			report(entryViolation(e, "receipt %s again, or out of order: the one before was %s", store.ReceiptNumber(e.Receipt), store.ReceiptNumber(last)))
		case e.Receipt != last+1:
			report(entryViolation(e, "receipt %s follows %s: numbers skipped", store.ReceiptNumber(e.Receipt), store.ReceiptNumber(last)))
			last = e.Receipt
		default:
			last = e.Receipt
		}
	}
}

// checkCorrectionIndex: the store's index of receipt numbers (the next
// number is taken from it) and of reversed entries (a second reversal is
// refused by it) say what the entries say.
func checkCorrectionIndex(v *ledgerView, report func(Violation)) {
	ix := v.corrections
	index := func(format string, args ...any) {
		report(Violation{Account: "corrections index", Problem: fmt.Sprintf(format, args...)})
	}
	for _, bad := range ix.Bad {
		index("%s", bad)
	}
	// Receipts are held against the index by number: which entry holds a
	// number is the receipt rule's and entry_order's to judge.
	byID := make(map[uint64]store.Entry, len(v.entries))
	numbered := make(map[uint64]bool)
	highest := ix.Legacy
	reversals := make(map[uint64]uint64) // reversed entry → its first reversal
	for _, e := range v.entries {
		byID[e.ID] = e
		if e.Kind == store.TopUp && e.Receipt != 0 {
			highest = max(highest, e.Receipt)
			numbered[e.Receipt] = true
			if _, ok := ix.Receipts[e.Receipt]; !ok {
				report(entryViolation(e, "receipt %s is not in the index of receipt numbers", store.ReceiptNumber(e.Receipt)))
			}
		}
		if e.Kind == store.Reversal {
			if _, seen := reversals[e.Reverses]; !seen {
				reversals[e.Reverses] = e.ID
			}
		}
	}
	for n, id := range ix.Receipts {
		if !numbered[n] {
			index("receipt %s names entry %d, but no top-up has that number", store.ReceiptNumber(n), id)
		}
	}
	if ix.LastReceipt != highest {
		index("the last receipt number given is %s; the top-ups' highest is %s", store.ReceiptNumber(ix.LastReceipt), store.ReceiptNumber(highest))
	}
	for orig, rev := range reversals {
		if got, ok := ix.Reversed[orig]; !ok || got != rev {
			report(entryViolation(byID[rev], "reversal of entry %d is not in the index of reversed entries (it says %d)", orig, got))
		}
	}
	for orig, rev := range ix.Reversed {
		if e, ok := byID[rev]; !ok || e.Kind != store.Reversal || e.Reverses != orig {
			index("entry %d is indexed as reversed by entry %d, which does not reverse it", orig, rev)
		}
	}
}
