package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Bounds of an invoice request's and status's texts. A buyer's registered
// name is at most a few dozen characters; an invoice number is 8 to 20
// digits today (a fully digital invoice has 20), 64 leaves room for what
// a platform adds; a reason is a sentence.
const (
	maxInvoiceTitle  = 100
	maxInvoiceNumber = 64
	maxInvoiceReason = 200
	maxInvoiceURL    = 1024
	maxEmail         = 254 // RFC 5321's path limit
)

// companyWords are what a buyer's name holds when it names a company, not
// a person: such an invoice needs the company's tax id (a special VAT
// invoice and, since 2017, an ordinary one for a company), and the
// platform refuses it later without one — better said at the till, while
// the tenant is there. The list is narrow on purpose: a name taken for a
// company wrongly refuses the top-up it came with (a request is stored
// with its top-up or not at all), so only the words of a registered
// company's legal form are here.
var companyWords = []string{"公司", "有限", "集团", "事务所", "co., ltd", "co.,ltd", "ltd", "limited", "inc.", "corp.", "corporation", "llc", "gmbh", "company"}

// namesCompany reports whether an invoice's title names a company.
func namesCompany(title string) bool {
	lower := strings.ToLower(title)
	for _, w := range companyWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// checkInvoice checks an invoice request and returns it as the store keeps
// it: spaces trimmed, the tax id upper-cased. nil for none.
func checkInvoice(req *web.InvoiceRequest) (*store.Invoice, error) {
	if req == nil {
		return nil, nil
	}
	invalid := func(format string, args ...any) (*store.Invoice, error) {
		return nil, fmt.Errorf("%w: invoice: %s", web.ErrInvalid, fmt.Sprintf(format, args...))
	}
	title := strings.TrimSpace(req.Title)
	taxID := strings.ToUpper(strings.TrimSpace(req.TaxID))
	email := strings.TrimSpace(req.Email)
	switch {
	case title == "":
		return invalid("title: the buyer's name (a company's, or a person's) is required")
	case !utf8.ValidString(title):
		return invalid("title: not UTF-8")
	case utf8.RuneCountInString(title) > maxInvoiceTitle:
		return invalid("title: %d characters; at most %d", utf8.RuneCountInString(title), maxInvoiceTitle)
	case strings.IndexFunc(title, unicode.IsControl) >= 0:
		return invalid("title: a control character; one line of text")
	case taxID != "" && !validTaxID(taxID):
		return invalid("tax_id %q: want the buyer's taxpayer id, 15 to 20 of 0-9 and A-Z (18 for a unified social credit code)", req.TaxID)
	case taxID == "" && namesCompany(title):
		return invalid("tax_id: required for a company's invoice (%q): its unified social credit code", title)
	}
	if email != "" {
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || a.Name != "" || len(email) > maxEmail || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
			return invalid("email %q: want one address like ap@company.example", req.Email)
		}
	}
	return &store.Invoice{Title: title, TaxID: taxID, Email: email}, nil
}

// validTaxID reports whether id is a taxpayer id's form: the 18 characters
// of a unified social credit code (统一社会信用代码), or the 15, 17 or 20 of
// the older registrations some buyers still carry. Its check character is
// not checked: the older forms have none, and the platform checks it.
func validTaxID(id string) bool {
	if len(id) < 15 || len(id) > 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// InvoiceStatus records what upstream made of the invoice request under a
// top-up's reference (the uplink's invoice_status command): issued, with
// its number and, when given, its https link; or failed, with a reason. It
// stores an event for the tenant in the same transaction and publishes it.
// A request it cannot find is an error wrapping store.ErrNoInvoice (and
// web.ErrNotFound); an issued invoice reported again under its number is
// the invoice, unchanged, while another number or a failure is
// web.ErrConflict wrapping store.ErrInvoiceIssued; anything malformed is
// web.ErrInvalid. Nothing changes on an error.
func (l *Ledger) InvoiceStatus(_ context.Context, ref, status, number, link, reason string) (store.Invoice, error) {
	invalid := func(format string, args ...any) (store.Invoice, error) {
		return store.Invoice{}, fmt.Errorf("%w: %s", web.ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case ref == "" || len(ref) > 64 || !printable(ref):
		return invalid("ref %q: want the top-up's payment reference, 1 to 64 printable characters", ref)
	case status != store.InvoiceIssued && status != store.InvoiceFailed:
		return invalid("status %q: want issued or failed", status)
	case status == store.InvoiceIssued && number == "":
		return invalid("number: an issued invoice has its number")
	case len(number) > maxInvoiceNumber || !printable(number):
		return invalid("number %q: at most %d printable characters", number, maxInvoiceNumber)
	case status == store.InvoiceFailed && (number != "" || link != ""):
		return invalid("a failed invoice has no number or link")
	case !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxInvoiceReason || strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return invalid("reason: at most %d characters, one line of text", maxInvoiceReason)
	}
	if link != "" {
		u, err := url.Parse(link)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(link) > maxInvoiceURL || !printable(link) {
			// The link is shown to the tenant and sent in messages: a
			// script or a plain-http page is not an invoice's.
			return invalid("url %q: want an https link to the invoice, at most %d characters", link, maxInvoiceURL)
		}
	}
	inv, ev, err := l.DB.SetInvoiceStatusWithEvent(ref, status, number, link, reason, l.Now())
	switch {
	case errors.Is(err, store.ErrNoInvoice):
		return store.Invoice{}, fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case errors.Is(err, store.ErrInvoiceIssued):
		return store.Invoice{}, fmt.Errorf("%w: %w", web.ErrConflict, err)
	case errors.Is(err, store.ErrBadInvoice):
		return store.Invoice{}, fmt.Errorf("%w: %w", web.ErrInvalid, err)
	case err != nil:
		return store.Invoice{}, err
	}
	if ev != nil {
		l.Log.Info().Str("tenant", inv.Tenant).Str("ref", ref).Str("status", status).Str("number", number).
			Str("reason", reason).Uint64("entry", inv.Entry).Msg("invoice status")
		if l.Events != nil {
			l.Events.Publish([]store.Event{*ev})
		}
	}
	return inv, nil
}

// Invoices lists a tenant's invoice requests, newest first: up to limit of
// those whose top-up's entry id is below before (0: from the newest).
func (l *Ledger) Invoices(id string, before uint64, limit int) ([]web.InvoiceView, error) {
	if _, err := l.Account(id); err != nil { // configured or archived
		return nil, err
	}
	invs, err := l.DB.TenantInvoices(id, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]web.InvoiceView, len(invs))
	for i, inv := range invs {
		out[i] = l.invoiceView(inv)
	}
	return out, nil
}

// invoiceView is an invoice request as the API shows it, its time in the
// site's zone.
func (l *Ledger) invoiceView(inv store.Invoice) web.InvoiceView {
	return web.InvoiceView{Ref: inv.Ref, Entry: inv.Entry, Tenant: inv.Tenant, Title: inv.Title, TaxID: inv.TaxID, Email: inv.Email,
		Status: inv.Status, Number: inv.Number, URL: inv.URL, Reason: inv.Reason, Updated: l.Config.SiteTime(inv.Updated)}
}

// withInvoices adds to top-up entries their invoice requests. The ledger
// shows who may read it (a viewer's screen) the request without its
// e-mail address: that is finance's list's.
func (l *Ledger) withInvoices(views []web.EntryView) error {
	var refs []string
	for _, v := range views {
		if v.Kind == string(store.TopUp) && v.Ref != "" {
			refs = append(refs, v.Ref)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	invs, err := l.DB.Invoices(refs)
	if err != nil {
		return err
	}
	for i, v := range views {
		if inv, ok := invs[v.Ref]; ok && v.Kind == string(store.TopUp) && inv.Entry == v.ID {
			iv := l.invoiceView(inv)
			iv.Email = ""
			views[i].Invoice = &iv
		}
	}
	return nil
}
