package web

import (
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// InvoiceRequest is a tenant's request for a Chinese e-invoice (发票) for
// a top-up, sent with it (the "invoice" of a top-up's body, or of a
// top-up command from the group's payment platform). The invoicing itself
// happens upstream; the gateway stores the request with the top-up, in
// its transaction, and sends it up with the top-up's ledger entry.
type InvoiceRequest struct {
	// Title is the buyer named on the invoice: a company or a person.
	Title string `json:"title"`
	// TaxID is the buyer's taxpayer id (统一社会信用代码), 15 to 20 of
	// [0-9A-Z]; required when the title names a company.
	TaxID string `json:"tax_id,omitempty"`
	// Email is where the platform sends the invoice; optional.
	Email string `json:"email,omitempty"`
	// Upstream marks a request that came with a payment made and confirmed
	// upstream (the group's platform's top-up command), never one read
	// from a body: the money is credited whatever the gateway guesses of
	// the title — a company's name without its tax id is not refused
	// here, the platform that issues the invoice refuses it, and says so
	// by invoice_status. The till's API asks its operator instead, while
	// the tenant is there.
	Upstream bool `json:"-"`
}

// InvoiceView is a top-up's invoice request and where it stands.
type InvoiceView struct {
	Ref    string `json:"ref"`   // the top-up's payment reference
	Entry  uint64 `json:"entry"` // the top-up's ledger entry
	Tenant string `json:"tenant"`
	Title  string `json:"title"`
	TaxID  string `json:"tax_id,omitempty"`
	Email  string `json:"email,omitempty"`
	// Status is requested (sent up, not answered yet), issued or failed.
	Status string `json:"status"`
	Number string `json:"number,omitempty"` // the invoice's number, once issued
	URL    string `json:"url,omitempty"`    // where the issued invoice is downloaded
	Reason string `json:"reason,omitempty"` // why it failed
	// Updated is when the request was made or its status last changed,
	// in the site's zone.
	Updated time.Time `json:"updated"`
}

// Invoices is what GET /api/v1/accounts/{tenant}/invoices reads: a Ledger
// that implements it serves finance the tenants' invoice requests.
type Invoices interface {
	// Invoices returns up to limit of a tenant's invoice requests whose
	// top-up's entry id is below before (0: from the newest), newest
	// first; ErrNotFound for a tenant with neither configuration nor
	// account.
	Invoices(tenant string, before uint64, limit int) ([]InvoiceView, error)
}

func (s *Server) invoiceRoutes(iv Invoices) {
	s.handle("GET /api/v1/accounts/{tenant}/invoices", s.read(func(w http.ResponseWriter, r *http.Request, _ string) {
		limit, before, ok := pageOf(w, r)
		if !ok {
			return
		}
		out, err := iv.Invoices(r.PathValue("tenant"), before, limit)
		if err != nil {
			s.fail(w, err)
			return
		}
		if out == nil {
			out = []InvoiceView{}
		}
		writeJSON(w, http.StatusOK, out)
	}))
}

// seesTaxIDs are the roles that read a buyer's tax id whole: the operator
// at the till who takes the request, and the finance office that
// reconciles the invoices. A viewer's screen (a wall in the control room,
// a shared login) sees it masked: a person's tax id is their national id
// number.
var seesTaxIDs = []string{RoleOperator, RoleFinance, RoleAdmin}

// maskTaxID is a tax id as a viewer reads it: its first and last four
// characters, enough to tell two apart at a glance, the rest starred
// ("1101**********777X"); a short one is starred whole.
func maskTaxID(id string) string {
	n := utf8.RuneCountInString(id)
	if n <= 8 {
		return strings.Repeat("*", n)
	}
	r := []rune(id)
	return string(r[:4]) + strings.Repeat("*", n-8) + string(r[n-4:])
}

// entriesFor returns entries as role may read them: for a role not in
// seesTaxIDs, each invoice request's tax id masked (a copy: entries is not
// changed).
func entriesFor(role string, entries []EntryView) []EntryView {
	if slices.Contains(seesTaxIDs, role) {
		return entries
	}
	out := slices.Clone(entries)
	for i, e := range out {
		if e.Invoice != nil && e.Invoice.TaxID != "" {
			iv := *e.Invoice
			iv.TaxID = maskTaxID(iv.TaxID)
			out[i].Invoice = &iv
		}
	}
	return out
}
