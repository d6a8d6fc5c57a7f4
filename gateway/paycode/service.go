package paycode

import (
	"bytes"
	"fmt"
	"strings"

	"mallgrid/gateway/config"
	"mallgrid/gateway/report"
	"mallgrid/gateway/web"
)

// Service draws the stickers of the configured tenants for the admin's
// page and its API (it implements web.Paycodes) and for `mallgrid qr`.
// Make it with NewService; it is safe for concurrent use.
type Service struct {
	signer  *Signer
	mall    string
	tenants []config.Tenant
	cjk     *report.CJK
}

// NewService returns the stickers of tenants at mall (site.name), signed
// for site (uplink.site_id) with qr (uplink.qr); ErrNotConfigured when qr
// has no URL.
func NewService(mall, site string, qr config.UplinkQR, tenants []config.Tenant) (*Service, error) {
	signer, err := NewSigner(site, qr)
	if err != nil {
		return nil, err
	}
	cjk, err := report.LoadCJK()
	if err != nil {
		return nil, fmt.Errorf("paycode: %w", err)
	}
	return &Service{signer: signer, mall: mall, tenants: tenants, cjk: cjk}, nil
}

// Tenants lists every tenant with its sticker's link, in the
// configuration's order.
func (s *Service) Tenants() []web.PaycodeTenant {
	out := make([]web.PaycodeTenant, len(s.tenants))
	for i, t := range s.tenants {
		out[i] = web.PaycodeTenant{ID: t.ID, Name: t.Name, Link: s.signer.Link(t.ID)}
	}
	return out
}

// Sticker returns tenant's sticker; ErrUnknownTenant (which is
// web.ErrNotFound too) for a tenant the configuration does not hold.
func (s *Service) Sticker(tenant string) (Sticker, error) {
	for _, t := range s.tenants {
		if t.ID == tenant {
			return s.sticker(t)
		}
	}
	return Sticker{}, fmt.Errorf("%w %q (%w)", ErrUnknownTenant, tenant, web.ErrNotFound)
}

func (s *Service) sticker(t config.Tenant) (Sticker, error) {
	c, err := Encode(s.signer.Link(t.ID))
	if err != nil {
		return Sticker{}, fmt.Errorf("tenant %q: %w", t.ID, err)
	}
	return Sticker{Tenant: t.ID, Name: t.Name, Code: c}, nil
}

// Code returns tenant's code alone as format "png" or "svg".
func (s *Service) Code(tenant, format string) (web.Document, error) {
	st, err := s.Sticker(tenant)
	if err != nil {
		return web.Document{}, err
	}
	var b bytes.Buffer
	doc := web.Document{Filename: "qr-" + fileName(tenant) + "." + format}
	switch format {
	case "png":
		err, doc.ContentType = st.Code.PNG(&b), "image/png"
	case "svg":
		err, doc.ContentType = st.Code.SVG(&b), "image/svg+xml"
	default:
		return web.Document{}, fmt.Errorf("%w %q: a code is png or svg (%w)", ErrFormat, format, web.ErrInvalid)
	}
	if err != nil {
		return web.Document{}, err
	}
	doc.Body = b.Bytes()
	return doc, nil
}

// Sheet returns the sticker sheet of tenants, in the order given, each
// once however often named (every tenant, in the configuration's order,
// when none is), as format "pdf" or "svg". Names of no tenant are an
// ErrUnknownTenant that is web.ErrInvalid, checked before anything is
// drawn: the sheet is of the configuration's tenants at most.
func (s *Service) Sheet(tenants []string, format string) (web.Document, error) {
	if format != "pdf" && format != "svg" {
		return web.Document{}, fmt.Errorf("%w %q: a sheet is pdf or svg (%w)", ErrFormat, format, web.ErrInvalid)
	}
	if len(tenants) == 0 {
		for _, t := range s.tenants {
			tenants = append(tenants, t.ID)
		}
	}
	byID := make(map[string]config.Tenant, len(s.tenants))
	for _, t := range s.tenants {
		byID[t.ID] = t
	}
	seen := make(map[string]bool, len(tenants))
	var ids, unknown []string
	for _, id := range tenants {
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := byID[id]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", id))
			continue
		}
		ids = append(ids, id)
	}
	if len(unknown) > 0 {
		if len(unknown) > 10 {
			unknown = append(unknown[:10], fmt.Sprintf("and %d more", len(unknown)-10))
		}
		return web.Document{}, fmt.Errorf("%w %s (%w)", ErrUnknownTenant, strings.Join(unknown, ", "), web.ErrInvalid)
	}
	sheet := Sheet{Mall: s.mall}
	for _, id := range ids {
		st, err := s.sticker(byID[id])
		if err != nil {
			return web.Document{}, err
		}
		sheet.Stickers = append(sheet.Stickers, st)
	}
	var b bytes.Buffer
	doc := web.Document{Filename: "qr-stickers." + format}
	var err error
	if format == "pdf" {
		err, doc.ContentType = sheet.PDF(&b, s.cjk), "application/pdf"
	} else {
		err, doc.ContentType = sheet.SVG(&b), "image/svg+xml"
	}
	if err != nil {
		return web.Document{}, err
	}
	doc.Body = b.Bytes()
	return doc, nil
}

// fileName keeps a tenant id's letters, digits, - and _ for a file's
// name ("B1/02" → "B1_02"): the id is printed on the sticker, the file
// name need only tell them apart.
func fileName(id string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, id)
}
