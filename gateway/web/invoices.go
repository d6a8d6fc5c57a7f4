package web

import (
	"net/http"
	"time"
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
