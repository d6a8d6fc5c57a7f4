package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Invoice is a tenant's request for an e-invoice (发票) for one top-up, and
// where it stands. It is stored with the top-up, in its transaction
// (TopUpOptions.Invoice), keyed by the top-up's payment reference; the
// invoicing happens upstream, and its outcome comes back by
// SetInvoiceStatus.
type Invoice struct {
	Ref    string `json:"ref"`   // the top-up's payment reference
	Entry  uint64 `json:"entry"` // the top-up's ledger entry id
	Tenant string `json:"tenant"`
	Title  string `json:"title"` // the buyer on the invoice (a company or a person)
	TaxID  string `json:"tax_id,omitempty"`
	Email  string `json:"email,omitempty"`
	Status string `json:"status"` // requested | issued | failed
	Number string `json:"number,omitempty"`
	URL    string `json:"url,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Updated is when the request was made (the top-up's time) or its
	// status last changed.
	Updated time.Time `json:"updated"`
}

// Invoice statuses.
const (
	InvoiceRequested = "requested" // stored with its top-up, not answered yet
	InvoiceIssued    = "issued"    // issued upstream: Number (and URL) say which
	InvoiceFailed    = "failed"    // refused or failed upstream: Reason says why
)

// Kinds of the events SetInvoiceStatus stores: a notification route may
// name them to tell the tenant.
const (
	EventInvoiceIssued = "invoice_issued"
	EventInvoiceFailed = "invoice_failed"
)

var (
	// ErrNoInvoice is returned by SetInvoiceStatus for a reference that
	// has no invoice request: no top-up under it, or one credited without
	// a request.
	ErrNoInvoice = errors.New("store: no invoice request for the reference")
	// ErrInvoiceIssued is returned by SetInvoiceStatus for an invoice
	// issued before, when it is reported failed or issued under another
	// number: the first issue stands, and nothing changes.
	ErrInvoiceIssued = errors.New("store: invoice already issued")
	// ErrInvoiceConflict is returned by PostTopUpWith for a payment
	// credited before, to the same account and amount, with another
	// invoice request than the one sent now. It is not ErrRefConflict:
	// the money is that entry, returned with the error (existing), and the
	// first request stands; only the invoice asked for differs. Nothing
	// changes.
	ErrInvoiceConflict = errors.New("store: payment already credited with another invoice request")
	// ErrBadInvoice is returned for an invoice request or status that is
	// not one: a request without a title, a status other than issued or
	// failed, an issue without its number. Nothing changes.
	ErrBadInvoice = errors.New("store: invoice refused")
)

// sameRequest reports whether a and b ask for the same invoice: a
// client's retry, not a second request. An address typed again in other
// case is the same mailbox.
func sameRequest(a, b Invoice) bool {
	return a.Title == b.Title && a.TaxID == b.TaxID && strings.EqualFold(a.Email, b.Email)
}

// putInvoiceRequest stores inv, the request of top-up e, made at, in tx.
func putInvoiceRequest(tx *bolt.Tx, e Entry, inv Invoice, at time.Time) error {
	inv.Ref, inv.Entry, inv.Tenant = e.Ref, e.ID, e.Account
	inv.Status, inv.Number, inv.URL, inv.Reason = InvoiceRequested, "", "", ""
	inv.Updated = at
	return putInvoice(tx, inv)
}

func putInvoice(tx *bolt.Tx, inv Invoice) error {
	v, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketInvoices).Put([]byte(inv.Ref), v)
}

// getInvoice returns the invoice request under ref, or nil.
func getInvoice(tx *bolt.Tx, ref string) (*Invoice, error) {
	v := tx.Bucket(bucketInvoices).Get([]byte(ref))
	if v == nil {
		return nil, nil
	}
	var inv Invoice
	if err := json.Unmarshal(v, &inv); err != nil {
		return nil, fmt.Errorf("invoice %q: %w: %v", ref, ErrCorrupt, err)
	}
	return &inv, nil
}

// Invoices returns the invoice requests of refs, by reference; a reference
// without one is absent from the map.
func (db *DB) Invoices(refs []string) (map[string]Invoice, error) {
	out := make(map[string]Invoice)
	err := db.view(func(tx *bolt.Tx) error {
		for _, ref := range refs {
			inv, err := getInvoice(tx, ref)
			if err != nil {
				return err
			}
			if inv != nil {
				out[ref] = *inv
			}
		}
		return nil
	})
	return out, err
}

// TenantInvoices returns up to limit of tenant's invoice requests whose
// top-up entry id is below before (0: from the newest), newest first.
// Requests are kept by reference, so it reads them all: a site has one per
// invoiced top-up, thousands a year.
func (db *DB) TenantInvoices(tenant string, before uint64, limit int) ([]Invoice, error) {
	var out []Invoice
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvoices).ForEach(func(k, v []byte) error {
			var inv Invoice
			if err := json.Unmarshal(v, &inv); err != nil {
				return fmt.Errorf("invoice %q: %w: %v", k, ErrCorrupt, err)
			}
			if inv.Tenant == tenant && (before == 0 || inv.Entry < before) {
				out = append(out, inv)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Invoice) int {
		switch {
		case a.Entry > b.Entry:
			return -1
		case a.Entry < b.Entry:
			return 1
		}
		return 0
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// AllInvoices returns every stored invoice request in reference order, and
// a problem for each record that cannot be read as one (verify reports
// them); err only when the database cannot be read.
func (db *DB) AllInvoices() (invoices []Invoice, bad []string, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvoices).ForEach(func(k, v []byte) error {
			var inv Invoice
			if err := json.Unmarshal(v, &inv); err != nil {
				bad = append(bad, fmt.Sprintf("invoice %q cannot be read: %v", k, err))
				return nil
			}
			if inv.Ref != string(k) {
				bad = append(bad, fmt.Sprintf("invoice stored under %q holds reference %q", k, inv.Ref))
			}
			invoices = append(invoices, inv)
			return nil
		})
	})
	return invoices, bad, err
}

// SetInvoiceStatus records what became of the invoice request under ref;
// see SetInvoiceStatusWithEvent.
func (db *DB) SetInvoiceStatus(ref, status, number, url, reason string, at time.Time) (Invoice, error) {
	inv, _, err := db.SetInvoiceStatusWithEvent(ref, status, number, url, reason, at, nil)
	return inv, err
}

// SetInvoiceStatusWithEvent records what became of the invoice request
// under ref, in one durable transaction, and stores with it an event for
// the tenant (EventInvoiceIssued or EventInvoiceFailed, Args tenant,
// tenant_name, ref, number, url, reason), which it returns; tenantName
// names a tenant as the tenant knows it (nil, or "": its id). Status is
// InvoiceIssued, with its number, or InvoiceFailed (ErrBadInvoice
// otherwise). A request moves from requested to issued or failed, and
// from failed to issued or failed again (upstream tried again). An issued
// invoice stays issued: issued again under the same number changes
// nothing and returns the invoice with a nil event (the same answer
// delivered twice) — unless it brings the link the first answer did not
// have, which is stored, with an event —, while another number, another
// link, or failed, is ErrInvoiceIssued. A failure reported again with the
// same reason changes nothing either. ErrNoInvoice when ref has no
// request.
func (db *DB) SetInvoiceStatusWithEvent(ref, status, number, url, reason string, at time.Time, tenantName func(tenant string) string) (Invoice, *Event, error) {
	switch {
	case status != InvoiceIssued && status != InvoiceFailed:
		return Invoice{}, nil, fmt.Errorf("%w: status %q: want %s or %s", ErrBadInvoice, status, InvoiceIssued, InvoiceFailed)
	case status == InvoiceIssued && number == "":
		return Invoice{}, nil, fmt.Errorf("%w: an issued invoice has its number", ErrBadInvoice)
	}
	var (
		out   Invoice
		event *Event
	)
	err := db.update(func(tx *bolt.Tx) error {
		inv, err := getInvoice(tx, ref)
		if err != nil {
			return err
		}
		if inv == nil {
			return fmt.Errorf("%w: %q", ErrNoInvoice, ref)
		}
		if inv.Status == InvoiceIssued {
			switch {
			case status != InvoiceIssued || number != inv.Number:
				return fmt.Errorf("%w: %s was issued as number %s; now %s %s", ErrInvoiceIssued, ref, inv.Number, status, number)
			case url != "" && inv.URL != "" && url != inv.URL:
				return fmt.Errorf("%w: %s was issued as number %s with another link", ErrInvoiceIssued, ref, inv.Number)
			case url == "" || url == inv.URL:
				out = *inv
				return nil
			}
			// The link comes after the number: the tenant is told where
			// the invoice is, once; the invoice's time stays its issue's.
			inv.URL = url
			if err := putInvoice(tx, *inv); err != nil {
				return err
			}
			ev := invoiceEvent(*inv, tenantName)
			ev.Time = at
			evs, err := db.appendEvents(tx, []Event{ev})
			if err != nil {
				return err
			}
			out, event = *inv, &evs[0]
			return nil
		}
		if inv.Status == InvoiceFailed && status == InvoiceFailed && reason == inv.Reason {
			out = *inv
			return nil
		}
		inv.Status, inv.Number, inv.URL, inv.Reason, inv.Updated = status, number, url, reason, at
		if status == InvoiceFailed {
			inv.Number, inv.URL = "", ""
		}
		if err := putInvoice(tx, *inv); err != nil {
			return err
		}
		evs, err := db.appendEvents(tx, []Event{invoiceEvent(*inv, tenantName)})
		if err != nil {
			return err
		}
		out, event = *inv, &evs[0]
		return nil
	})
	if err != nil {
		return Invoice{}, nil, err
	}
	return out, event, nil
}

// invoiceEvent is the event that tells a tenant what became of inv, named
// by tenantName (nil, or "": the id). Its form picks the sentence without
// the link, or without the reason, when upstream gave none.
func invoiceEvent(inv Invoice, tenantName func(string) string) Event {
	name := inv.Tenant
	if tenantName != nil {
		if n := tenantName(inv.Tenant); n != "" {
			name = n
		}
	}
	args := map[string]string{"tenant": inv.Tenant, "tenant_name": name, "ref": inv.Ref, "number": inv.Number, "url": inv.URL, "reason": inv.Reason}
	if inv.Status == InvoiceIssued {
		text := fmt.Sprintf("%s: e-invoice %s issued for the top-up with ref %s", name, inv.Number, inv.Ref)
		if inv.URL != "" {
			text += ": " + inv.URL
		} else {
			args["form"] = "no_url"
		}
		return Event{Time: inv.Updated, Kind: EventInvoiceIssued, Tenant: inv.Tenant, Text: text, Args: args}
	}
	text := fmt.Sprintf("%s: the e-invoice for the top-up with ref %s could not be issued", name, inv.Ref)
	if inv.Reason != "" {
		text += ": " + inv.Reason
	} else {
		args["form"] = "no_reason"
	}
	return Event{Time: inv.Updated, Kind: EventInvoiceFailed, Tenant: inv.Tenant, Text: text, Args: args}
}
