// Package web serves the control room: the status page (html/template with
// embedded assets, nothing loaded from the internet), the JSON API under
// /api/v1 and /healthz.
//
// The package knows nothing of buses or databases: the gateway hands it a
// Source that returns ready-made views. Every handler only reads from the
// Source, so a slow browser can never hold up polling or billing.
package web
