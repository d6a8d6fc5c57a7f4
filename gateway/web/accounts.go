package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"mallgrid/store"
)

// Ledger is what the account endpoints read and write. The gateway
// implements it over the store. A Ledger that also implements Corrections
// serves finance's reversals and adjustments too.
type Ledger interface {
	Accounts() ([]AccountView, error)
	Account(tenant string) (AccountView, error)
	Entries(tenant string, before uint64, limit int) ([]EntryView, error)
	// TopUp credits a payment once per reference; existing is true when the
	// reference was credited before and the original entry is returned.
	TopUp(ctx context.Context, tenant string, req TopUpRequest, actor string) (entry EntryView, existing bool, err error)
	// Protect sets or lifts an operator's protection flag on an account.
	Protect(ctx context.Context, tenant string, req ProtectRequest, actor string) (AccountView, error)
}

// ProtectRequest is the body of POST /api/v1/accounts/{tenant}/protection.
type ProtectRequest struct {
	// Protected is true to set the flag and false to lift it. It must be
	// given: a body that forgot it must not lift a protection.
	Protected *bool  `json:"protected"`
	Reason    string `json:"reason"` // required both ways: recorded with who
	Until     string `json:"until"`  // RFC 3339, when setting; empty: until lifted
}

// Errors a Ledger returns, mapped to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")                         // 404
	ErrInvalid  = errors.New("invalid request")                   // 400, with the reason wrapped
	ErrConflict = errors.New("conflicts with an earlier request") // 409
)

// AccountView is one tenant's prepaid account.
type AccountView struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Balance string `json:"balance"` // decimal yuan, "123.45": the ledger's
	// Accrued is energy charged in the current 15-minute slots and not yet
	// posted to the ledger; the balance once they close is Balance − Accrued.
	Accrued string `json:"accrued"`
	// State is the account's enforcement state; "normal" until the account
	// policy decides otherwise.
	State         string     `json:"state"`
	PendingCutOff *time.Time `json:"pending_cutoff"`
	// Archived is set for an account whose tenant is no longer in the
	// configuration: its ledger stays readable; nothing is posted to it.
	Archived bool `json:"archived,omitempty"`
	// Protected is the reason of an operator's protection flag, while set;
	// ProtectedUntil its expiry (absent: until lifted).
	Protected      string     `json:"protected,omitempty"`
	ProtectedUntil *time.Time `json:"protected_until,omitempty"`
	Entries        int64      `json:"entries"`
	Updated        *time.Time `json:"updated"`
	// Spend24h is what the account was charged for energy used over the
	// last 24 hours, decimal yuan: the recent consumption the time left
	// is reckoned from.
	Spend24h string `json:"spend_24h,omitempty"`
	// CreditLeft is how long, in seconds, until the account would be cut
	// off at the last 24 hours' spending: until the balance less the
	// accrued charges reaches its rating's overdraft limit, plus the
	// rating's grace time. Absent when nothing was spent (no rate to
	// reckon from) or the tenant has no credit rating (never cut off).
	CreditLeft *int64 `json:"credit_left_s,omitempty"`
}

// EntryView is one ledger entry; money is decimal strings, energy kWh
// strings exact to the Wh.
type EntryView struct {
	ID        uint64     `json:"id"`
	Time      time.Time  `json:"time"`
	Kind      string     `json:"kind"`
	Amount    string     `json:"amount"`
	Balance   string     `json:"balance_after"`
	Meter     string     `json:"meter,omitempty"`
	FromKWh   string     `json:"from_kwh,omitempty"`
	ToKWh     string     `json:"to_kwh,omitempty"`
	KWh       string     `json:"kwh,omitempty"`
	From      *time.Time `json:"from,omitempty"`
	To        *time.Time `json:"to,omitempty"`
	Window    string     `json:"window,omitempty"`
	UnitPrice string     `json:"unit_price,omitempty"`
	Ref       string     `json:"ref,omitempty"`
	Channel   string     `json:"channel,omitempty"`
	Reverses  uint64     `json:"reverses,omitempty"`
	Actor     string     `json:"actor,omitempty"`
	Note      string     `json:"note,omitempty"` // a top-up's note, a correction's reason
	// Receipt is a top-up's receipt number, "R00000042".
	Receipt string `json:"receipt,omitempty"`
	// ReversedBy is the id of the reversal that undid this entry.
	ReversedBy uint64 `json:"reversed_by,omitempty"`
	// Invoice is a top-up's e-invoice request and its status, when one was
	// made with it; without the buyer's e-mail, which is finance's
	// (GET /api/v1/accounts/{tenant}/invoices), and with the buyer's tax
	// id masked for a viewer (entriesFor).
	Invoice *InvoiceView `json:"invoice,omitempty"`
}

// TopUpRequest is the body of POST /api/v1/accounts/{tenant}/topups.
type TopUpRequest struct {
	Amount  string `json:"amount"`         // decimal yuan, "100.00"
	Ref     string `json:"ref"`            // the payment's reference: credited once, however often sent
	Channel string `json:"channel"`        // cash | wechat | alipay | bank
	Note    string `json:"note,omitempty"` // optional, kept with the entry and shown on its receipt
	// Invoice asks for an e-invoice for this payment; nil: none. It is
	// stored with the top-up, in its transaction; the same reference sent
	// again must carry the same request.
	Invoice *InvoiceRequest `json:"invoice,omitempty"`
}

// maxBody bounds a request body: a top-up is a few dozen bytes.
const maxBody = 4 << 10

func (s *Server) ledgerRoutes() {
	s.handle("GET /api/v1/accounts", s.read(s.apiAccounts))
	s.handle("GET /api/v1/accounts/{tenant}", s.read(s.apiAccount))
	s.handle("GET /api/v1/accounts/{tenant}/ledger", s.read(s.apiLedger))
	s.handle("POST /api/v1/accounts/{tenant}/topups", s.write(s.apiTopUp))
	if c, ok := s.ledger.(Corrections); ok {
		s.correctionRoutes(c)
	}
	if iv, ok := s.ledger.(Invoices); ok {
		s.invoiceRoutes(iv)
	}
	s.handle("POST /api/v1/accounts/{tenant}/protection", s.write(func(w http.ResponseWriter, r *http.Request, actor string) {
		var req ProtectRequest
		if !decodeBody(w, r, &req) {
			return
		}
		noteAudit(r, func(n *auditNote) { n.Target, n.Reason = r.PathValue("tenant"), req.Reason })
		// Lifting lets a protected tenant (a clinic, a cold store) be cut
		// off, so it is never read from a missing or null flag, and who
		// lifted it keeps a reason in the ledger of events like who set it.
		if req.Protected == nil {
			writeError(w, http.StatusBadRequest, `protected: say true to protect the account or false to lift its protection`)
			return
		}
		if req.Reason == "" {
			writeError(w, http.StatusBadRequest, "reason: say why the account is protected, or why its protection is lifted; it is recorded")
			return
		}
		v, err := s.ledger.Protect(r.Context(), r.PathValue("tenant"), req, actor)
		if err != nil {
			s.fail(w, err)
			return
		}
		noteAudit(r, func(n *auditNote) {
			n.After = "protected " + strconv.FormatBool(*req.Protected) + " until " + or(req.Until, "lifted")
		})
		writeJSON(w, http.StatusOK, v)
	}))
}

func (s *Server) apiAccounts(w http.ResponseWriter, r *http.Request, _ string) {
	accts, err := s.ledger.Accounts()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, accts)
}

func (s *Server) apiAccount(w http.ResponseWriter, r *http.Request, _ string) {
	a, err := s.ledger.Account(r.PathValue("tenant"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// apiLedger pages an account's entries newest first: ?limit=N (1..1000,
// default 100) and ?before=ID for the page after.
func (s *Server) apiLedger(w http.ResponseWriter, r *http.Request, _ string) {
	tenant := r.PathValue("tenant")
	limit, before, ok := pageOf(w, r)
	if !ok {
		return
	}
	if _, err := s.ledger.Account(tenant); err != nil {
		s.fail(w, err)
		return
	}
	entries, err := s.ledger.Entries(tenant, before, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	if entries == nil {
		entries = []EntryView{}
	}
	writeJSON(w, http.StatusOK, entriesFor(principalOf(r).Role, entries))
}

func (s *Server) apiTopUp(w http.ResponseWriter, r *http.Request, actor string) {
	var req TopUpRequest
	if !decodeBody(w, r, &req) {
		return
	}
	tenant := r.PathValue("tenant")
	noteAudit(r, func(n *auditNote) {
		n.Target = tenant
		n.Reason = req.Channel + " ref " + req.Ref + " amount " + req.Amount
		if req.Invoice != nil {
			// Who asked for an invoice in whose name is part of the payment's record.
			n.Reason += " invoice " + strconv.Quote(req.Invoice.Title) + " tax id " + strconv.Quote(req.Invoice.TaxID)
		}
	})
	// An operator at the counter takes cash; a payment by any other channel
	// is reconciled by finance, who alone may record it.
	if role := principalOf(r).Role; role == RoleOperator && req.Channel != "cash" {
		writeError(w, http.StatusForbidden, fmt.Sprintf("channel %q: an operator records cash top-ups only; other channels need finance or admin", req.Channel))
		return
	}
	e, existing, err := s.ledger.TopUp(r.Context(), tenant, req, actor)
	if err != nil {
		s.fail(w, err)
		return
	}
	if !existing {
		noteAudit(r, func(n *auditNote) { n.Before, n.After = "balance "+balanceBefore(e), "balance "+e.Balance })
	}
	code := http.StatusCreated
	if existing {
		code = http.StatusOK // the same payment again: the original entry, nothing changed
	}
	writeJSON(w, code, e)
}

// pageOf reads a page of a list by entry id: ?limit=N (1..1000, default
// 100) and ?before=ID; it answers 400 and returns false when either is
// not one.
func pageOf(w http.ResponseWriter, r *http.Request) (limit int, before uint64, ok bool) {
	limit = 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1..1000", v))
			return 0, 0, false
		}
		limit = n
	}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("before %q: want an entry id", v))
			return 0, 0, false
		}
		before = n
	}
	return limit, before, true
}

// fail maps a Ledger error to its status; anything unexpected is a 500
// whose cause goes to the log, not to the client.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrNoSpace):
		// The store rolled the write back: nothing was recorded, and the
		// same request (a top-up with its reference) is safe to send again.
		s.log.Error().Err(err).Msg("api: the disk is full")
		w.Header().Set("Retry-After", retryAfterNoSpace)
		writeError(w, http.StatusServiceUnavailable, "the gateway's disk is full: nothing was recorded; send the same request again later")
	case errors.Is(err, store.ErrUnavailable):
		s.log.Error().Err(err).Msg("api: the database is unavailable")
		writeError(w, http.StatusServiceUnavailable, "nothing was recorded: "+err.Error()+
			"; the gateway takes changes again once its database is restored and it is restarted")
	default:
		s.log.Error().Err(err).Msg("api")
		writeError(w, http.StatusInternalServerError, "internal error; see the gateway's log")
	}
}

// retryAfterNoSpace is the Retry-After (seconds) of a write refused for
// lack of disk: space comes back when someone frees it, not in a moment.
const retryAfterNoSpace = "60"

// or is s, or alt when s is empty.
func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
