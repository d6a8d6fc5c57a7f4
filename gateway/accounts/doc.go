// Package accounts is what the control room's API calls to read and change
// money and meters: accounts and their ledger pages (configured tenants,
// and archived ones whose tenant left the configuration), top-ups credited
// once per payment reference with their receipts (numbered by the store,
// with an optional note), finance's corrections — a reversal of one entry
// or an adjustment with a reason, each posted once per reference and
// waking enforcement as a top-up does — an operator's protection
// flag, and an operator's release of a held jump or record of a meter
// exchange; and the alarms the store raises, listed, and acknowledged once
// with who and a note (the acknowledgement streamed to open pages). Every
// refusal says why and changes nothing; the errors are web's (ErrInvalid,
// ErrNotFound, ErrConflict), so the HTTP layer maps them.
//
// It implements web.Ledger, web.Corrections, web.Operator and web.Alarms (importing
// gateway/web for them) over store, gateway/pipeline and gateway/enforce,
// and imports gateway/live (to publish receipts and acknowledgements),
// gateway/config, billing, billing/policy and drivers/meter (kWh as text).
package accounts
