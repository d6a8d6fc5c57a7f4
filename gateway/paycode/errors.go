package paycode

import "errors"

var (
	// ErrNotConfigured is returned when uplink.qr.url is not set: there are
	// no stickers to make.
	ErrNotConfigured = errors.New("paycode: no stickers configured (uplink.qr.url is not set)")
	// ErrUnknownTenant is returned for a tenant the configuration does not
	// hold.
	ErrUnknownTenant = errors.New("paycode: unknown tenant")
	// ErrFormat is returned for a format a code or a sheet is not drawn in.
	ErrFormat = errors.New("paycode: unknown format")
)
