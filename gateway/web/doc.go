// Package web serves the control room: the status page (html/template with
// embedded assets, nothing loaded from the internet), the JSON API under
// /api/v1 and /healthz.
//
// The package knows nothing of buses or databases: the gateway hands it a
// Source that returns ready-made views. Every handler only reads from the
// Source, so a slow browser can never hold up polling or billing.
//
// It imports store (to tell a full disk or a lost database apart from
// other failures) and nothing else of ours: what it serves and changes comes
// through the interfaces it defines (Source, Ledger, Operator, Relayer,
// Events), implemented above it.
package web
