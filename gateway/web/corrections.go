package web

import (
	"context"
	"net/http"
	"strconv"

	"mallgrid/billing"
)

// Corrections is finance's corrections of a ledger. A Ledger that also
// implements it serves POST …/reversals and …/adjustments; one that does
// not serves neither.
type Corrections interface {
	// Reverse posts a reversal of one entry of the tenant's account, once
	// per reference; existing is true when the reference was posted before
	// and the original entry is returned.
	Reverse(ctx context.Context, tenant string, req ReversalRequest, actor string) (entry EntryView, existing bool, err error)
	// Adjust posts an adjustment, a credit or a debit, once per reference.
	Adjust(ctx context.Context, tenant string, req AdjustmentRequest, actor string) (entry EntryView, existing bool, err error)
}

// ReversalRequest is the body of POST /api/v1/accounts/{tenant}/reversals.
type ReversalRequest struct {
	Entry  uint64 `json:"entry"`  // the id of the entry to reverse: a top-up, a charge, an adjustment
	Reason string `json:"reason"` // why; kept in the ledger with who
	// Ref is the request's reference: the reversal is posted once,
	// however often it is sent; the same reference with anything else
	// is refused (409).
	Ref string `json:"ref"`
}

// AdjustmentRequest is the body of POST /api/v1/accounts/{tenant}/adjustments.
type AdjustmentRequest struct {
	Amount string `json:"amount"` // decimal yuan: "5.00" a credit, "-12.30" a debit
	Reason string `json:"reason"`
	Ref    string `json:"ref"` // as ReversalRequest's
}

func (s *Server) correctionRoutes(c Corrections) {
	s.handle("POST /api/v1/accounts/{tenant}/reversals", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req ReversalRequest
		if !decodeBody(w, r, &req) {
			return
		}
		tenant := r.PathValue("tenant")
		noteAudit(r, func(n *auditNote) {
			n.Target, n.Reason = tenant, "reverse entry "+strconv.FormatUint(req.Entry, 10)+" ref "+req.Ref+": "+req.Reason
		})
		s.correct(w, r, func() (EntryView, bool, error) { return c.Reverse(r.Context(), tenant, req, actor) })
	}))
	s.handle("POST /api/v1/accounts/{tenant}/adjustments", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req AdjustmentRequest
		if !decodeBody(w, r, &req) {
			return
		}
		tenant := r.PathValue("tenant")
		noteAudit(r, func(n *auditNote) {
			n.Target, n.Reason = tenant, "adjust "+req.Amount+" ref "+req.Ref+": "+req.Reason
		})
		s.correct(w, r, func() (EntryView, bool, error) { return c.Adjust(r.Context(), tenant, req, actor) })
	}))
}

// correct answers a correction: 201 with the entry posted, 200 with the
// original entry for a reference posted before.
func (s *Server) correct(w http.ResponseWriter, r *http.Request, post func() (EntryView, bool, error)) {
	e, existing, err := post()
	if err != nil {
		s.fail(w, err)
		return
	}
	code := http.StatusCreated
	if existing {
		code = http.StatusOK // the same correction again: nothing changed
	} else {
		noteAudit(r, func(n *auditNote) {
			n.Before, n.After = "balance "+balanceBefore(e), "balance "+e.Balance+" (entry "+strconv.FormatUint(e.ID, 10)+")"
		})
	}
	writeJSON(w, code, e)
}

// balanceBefore is the account's balance just before entry e was posted,
// worked out from the entry itself: a balance read in a transaction of its
// own could include another post made between the two, and the audit would
// show a change the entry did not make.
func balanceBefore(e EntryView) string {
	after, err1 := billing.ParseMoney(e.Balance)
	amount, err2 := billing.ParseMoney(e.Amount)
	if err1 != nil || err2 != nil {
		return "?" // a ledger's entry always has both; the audit does not guess
	}
	return (after - amount).String()
}
