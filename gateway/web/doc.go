// Package web serves the control room: the status page (html/template with
// embedded assets, nothing loaded from the internet), the login page, the
// JSON API under /api/v1 and /healthz.
//
// The package knows nothing of buses or databases: the gateway hands it a
// Source that returns ready-made views. Every handler only reads from the
// Source, so a slow browser can never hold up polling or billing.
//
// It imports store (to tell a full disk or a lost database apart from
// other failures, and for the events it stores) and nothing else of ours:
// what it serves and changes comes through the interfaces it defines
// (Source, Ledger and its optional Corrections, Operator, Relayer, Events,
// Auditor, Recorder, Reports), implemented above it.
//
// # Who may do what
//
// Every request passes one guard (Server.ServeHTTP), in this order:
//  1. Security headers on every answer: a Content-Security-Policy that
//     allows no inline script or style, nosniff, no framing, same-origin
//     referrers (and HSTS under TLS).
//  2. The Host check: a request must name the listen host, localhost or a
//     loopback address (with the port served on), or a name in http.hosts;
//     else 421. A page elsewhere whose name was pointed at the gateway
//     (DNS rebinding) reads nothing.
//  3. The endpoint's rule in accessRules (access.go), looked up by the
//     pattern the request matched: /healthz, /login and /static/ are open;
//     everything else needs a bearer token of http.tokens (machines) or a
//     login's session cookie (people). Without one a page redirects to
//     /login (303, with the path it wanted), the API answers 401. A role
//     the rule does not name gets 403 and changes nothing. An endpoint
//     without a rule is refused to everyone, and New fails on it.
//  4. A change made with a session cookie needs the session's CSRF token
//     (header X-CSRF-Token, or form field csrf; GET /api/v1/session gives
//     it to the pages): 403 without it. A bearer token needs none: no
//     browser sends it by itself.
//  5. Every change by a token or session, done or refused at 3 or 4, is
//     recorded once its answer is written (Auditor), with what the handler
//     noted of it (target, before, after, reason).
//
// # Logins
//
// POST /login checks http.users with bcrypt; bcrypt runs for an unknown
// name too, and both are answered alike. A wrong password is answered
// after a delay, logged with address and name, stored as a login_failed
// event and audited; past 5 failures for a name or 20 from an address in
// 15 minutes, logins are refused with 429 and Retry-After. Sessions are
// kept in memory only: a restart of the gateway logs everyone out. A
// session ends after http.session_idle without a request, or at
// POST /logout.
//
// # Reloads
//
// A Server is built from one configuration. The gateway serves through a
// Front, which holds the listener for the process and hands each request
// to the Server in force; on a reload, Front.Hold makes new requests wait,
// ends the old Server's event streams (the pages' EventSources reconnect
// after the retry the stream announced) and waits for its other requests;
// Front.Set then serves the new Server. Logins live in a Sessions given to
// each Server (Options.Sessions), so a reload logs out only the users it
// removes from http.users or gives a new password (at their next request);
// a user's new role applies to the login at once. A Server once held is
// not served again.
package web
