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

	"golang.org/x/text/width"

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
// company wrongly refuses the top-up it came with at the till (a request
// is stored with its top-up or not at all), so only the words of a
// registered company's legal form are here. The Chinese ones are matched
// anywhere (Chinese has no spaces between words); the Latin ones as
// words (latinWord), so that "Unlimited Fitness" is not "limited".
var companyWords = []string{"公司", "有限", "集团", "事务所", "co., ltd", "co.,ltd", "ltd", "limited", "inc.", "corp.", "corporation", "llc", "gmbh", "company"}

// namesCompany reports whether an invoice's title names a company.
func namesCompany(title string) bool {
	lower := strings.ToLower(title)
	for _, w := range companyWords {
		if w[0] >= utf8.RuneSelf { // Chinese
			if strings.Contains(lower, w) {
				return true
			}
			continue
		}
		for i := 0; ; {
			j := strings.Index(lower[i:], w)
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len(w)
			before, _ := utf8.DecodeLastRuneInString(lower[:start])
			after, _ := utf8.DecodeRuneInString(lower[end:])
			// A word ending in its own full stop ("inc.") ends there.
			if !latinWord(before) && (w[len(w)-1] == '.' || !latinWord(after)) {
				return true
			}
			i = start + 1
		}
	}
	return false
}

// latinWord reports whether r continues a Latin word: a letter or digit of
// the Latin script. A Chinese character beside a Latin word bounds it
// ("深圳Acme Ltd").
func latinWord(r rune) bool {
	return unicode.IsDigit(r) || unicode.Is(unicode.Latin, r)
}

// unseen reports whether r is a character that does not show as itself in
// one line of text: a control character, a format character (Cf: bidi
// overrides and isolates, zero-width spaces and joiners, the soft hyphen,
// the byte order mark) or a line or paragraph separator (Zl, Zp). Text
// holding one reads otherwise than it is stored: a title or reason
// reversed on the screen, a name that looks the same as another yet
// differs.
func unseen(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// normalTaxID is a tax id as typed, the way the store keeps it: full-width
// characters (a Chinese IME's) folded to their ASCII forms, every space
// dropped (codes are read out and typed in groups), upper case.
func normalTaxID(s string) string {
	s = width.Fold.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	return strings.ToUpper(s)
}

// checkInvoice checks an invoice request and returns it as the store keeps
// it: spaces trimmed, the tax id in normal form (normalTaxID), the e-mail
// address in lower case. nil for none. A refusal quotes neither the tax id
// (a person's is their national id number) nor the address: it is shown,
// logged, and may be sent up in a command's result.
func checkInvoice(req *web.InvoiceRequest) (*store.Invoice, error) {
	if req == nil {
		return nil, nil
	}
	invalid := func(format string, args ...any) (*store.Invoice, error) {
		return nil, fmt.Errorf("%w: invoice: %s", web.ErrInvalid, fmt.Sprintf(format, args...))
	}
	title := strings.TrimSpace(req.Title)
	taxID := normalTaxID(req.TaxID)
	email := strings.ToLower(strings.TrimSpace(req.Email))
	switch {
	case title == "":
		return invalid("title: the buyer's name (a company's, or a person's) is required")
	case !utf8.ValidString(title):
		return invalid("title: not UTF-8")
	case utf8.RuneCountInString(title) > maxInvoiceTitle:
		return invalid("title: %d characters; at most %d", utf8.RuneCountInString(title), maxInvoiceTitle)
	case strings.IndexFunc(title, unseen) >= 0:
		r, _ := utf8.DecodeRuneInString(title[strings.IndexFunc(title, unseen):])
		return invalid("title: a control or invisible character (%U); one line of text", r)
	case taxID != "" && !validTaxID(taxID):
		return invalid("tax_id: want the buyer's taxpayer id, 15 to 20 of 0-9 and A-Z (18 for a unified social credit code); this one has %d characters", utf8.RuneCountInString(taxID))
	case taxID == "" && !req.Upstream && namesCompany(title):
		return invalid("tax_id: required for a company's invoice (%q): its unified social credit code", title)
	}
	if email != "" {
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || a.Name != "" || len(email) > maxEmail || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
			return invalid("email: want one address like ap@company.example")
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
	case !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxInvoiceReason || strings.IndexFunc(reason, unseen) >= 0:
		return invalid("reason: at most %d characters, one line of text without control or invisible characters", maxInvoiceReason)
	}
	if link != "" {
		u, err := url.Parse(link)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(link) > maxInvoiceURL || !printable(link) {
			// The link is shown to the tenant and sent in messages: a
			// script or a plain-http page is not an invoice's.
			return invalid("url %q: want an https link to the invoice, at most %d characters", link, maxInvoiceURL)
		}
	}
	inv, ev, err := l.DB.SetInvoiceStatusWithEvent(ref, status, number, link, reason, l.Now(), l.tenantName)
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

// tenantName is a tenant's name as the configuration gives it; "" for one
// no longer configured (the store then names it by its id).
func (l *Ledger) tenantName(id string) string {
	t, _ := l.Config.Tenant(id)
	return t.Name
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
