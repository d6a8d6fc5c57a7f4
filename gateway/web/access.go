package web

import (
	"slices"
	"strings"
)

// Roles a user or token may have, as the configuration names them.
const (
	RoleViewer   = "viewer"   // reads
	RoleOperator = "operator" // alarms, relay overrides, protection, cash top-ups, meter counter records
	RoleFinance  = "finance"  // top-ups of any channel, reversals, reports
	RoleAdmin    = "admin"    // everything, and the audit log
)

// rule is who may call one endpoint.
type rule struct {
	public bool     // anyone who reaches the gateway by an allowed Host
	roles  []string // else: the roles allowed
	// quiet endpoints change nothing kept (logout): no audit record.
	quiet bool
}

func (r rule) allows(role string) bool { return slices.Contains(r.roles, role) }

// accessRules maps each endpoint, by its ServeMux pattern exactly, to who
// may call it. It is the one place access is decided: the guard looks the
// matched pattern up here for every request, and an endpoint registered
// without a rule is refused to everyone (and fails New and the tests that
// walk the routes). A new endpoint gets its line here.
func accessRules() map[string]rule {
	readers := []string{RoleViewer, RoleOperator, RoleFinance, RoleAdmin}
	// Operators act on the floor: relays, protection, a meter's counter.
	floor := []string{RoleOperator, RoleAdmin}
	// A top-up is money: operators take cash at the counter (the handler
	// refuses them any other channel), finance records any channel.
	money := []string{RoleOperator, RoleFinance, RoleAdmin}
	admin := []string{RoleAdmin}
	// The books: the finance office's reports and corrections.
	books := []string{RoleFinance, RoleAdmin}
	// A tenant's statement is their money, and its list hands out links
	// that open without a login: finance, and the operators who hand
	// statements to tenants at the counter; not a viewer's screen.
	statements := []string{RoleOperator, RoleFinance, RoleAdmin}
	return map[string]rule{
		"GET /static/": {public: true},
		// The catalogs of words: the login page's too, and no secret.
		"GET /words/{file}": {public: true},
		"GET /healthz":      {public: true},
		"GET /login":        {public: true},
		"POST /login":       {public: true},
		"POST /logout":      {roles: readers, quiet: true},
		"GET /{$}":          {roles: readers},
		"POST /lang":        {roles: readers, quiet: true},

		"GET /meters":                            {roles: readers},
		"GET /meters/{id}":                       {roles: readers},
		"GET /events":                            {roles: readers},
		"GET /alarms":                            {roles: readers},
		"GET /notifications":                     {roles: readers},
		"GET /tenants":                           {roles: readers},
		"GET /tenants/{tenant}":                  {roles: readers},
		"GET /tenants/{tenant}/receipts/{entry}": {roles: readers},
		"GET /audit":                             {roles: admin},
		"GET /finance":                           {roles: books},
		"GET /api/v1/session":                    {roles: readers},

		"GET /api/v1/status":                   {roles: readers},
		"GET /api/v1/meters":                   {roles: readers},
		"GET /api/v1/meters/{id}":              {roles: readers},
		"GET /api/v1/meters/stream":            {roles: readers},
		"GET /api/v1/meters/{id}/history":      {roles: readers},
		"GET /api/v1/events":                   {roles: readers},
		"GET /api/v1/accounts":                 {roles: readers},
		"GET /api/v1/accounts/{tenant}":        {roles: readers},
		"GET /api/v1/accounts/{tenant}/ledger": {roles: readers},
		"GET /api/v1/accounts/{tenant}/usage":  {roles: readers},
		"GET /api/v1/alarms":                   {roles: readers},
		"GET /api/v1/notifications":            {roles: readers},
		// Prometheus's scrape: what the status page shows, as numbers.
		"GET /metrics": {roles: readers},

		"POST /api/v1/accounts/{tenant}/topups":      {roles: money},
		"POST /api/v1/accounts/{tenant}/reversals":   {roles: books},
		"POST /api/v1/accounts/{tenant}/adjustments": {roles: books},
		"POST /api/v1/accounts/{tenant}/protection":  {roles: floor},
		"POST /api/v1/meters/{id}/relay":             {roles: floor},
		"POST /api/v1/meters/{id}/release":           {roles: floor},
		"POST /api/v1/meters/{id}/exchange":          {roles: floor},
		"POST /api/v1/alarms/{id}/ack":               {roles: floor},
		"POST /api/v1/notifications/{id}/resend":     {roles: floor},

		"GET /api/v1/audit": {roles: admin},

		"GET /api/v1/reports/finance": {roles: books},
		"GET /api/v1/reports/balance": {roles: books},

		// A tenant's invoice requests, with the buyer's e-mail: finance's
		// list to reconcile with the platform's invoices.
		"GET /api/v1/accounts/{tenant}/invoices": {roles: books},

		"GET /api/v1/accounts/{tenant}/statements":         {roles: statements},
		"GET /api/v1/accounts/{tenant}/statements/{month}": {roles: statements},
		// A tenant's signed link: the token (HMAC over tenant, month and
		// expiry) is the permission, for that one statement.
		"GET /s/{token}": {public: true},

		// The QR stickers: a code is printed once and stuck on a shop for
		// years; which link a shop gets is the admin's to hand out.
		"GET /paycodes":                             {roles: admin},
		"GET /api/v1/paycodes/sheet":                {roles: admin},
		"GET /api/v1/accounts/{tenant}/paycode.png": {roles: admin},
		"GET /api/v1/accounts/{tenant}/paycode.svg": {roles: admin},

		"GET /api/v1/allocations/preview":       {roles: books},
		"GET /api/v1/allocations":               {roles: books},
		"POST /api/v1/allocations":              {roles: books},
		"POST /api/v1/allocations/{id}/reverse": {roles: books},
	}
}

// allowedText lists roles for a refusal: "operator or admin".
func allowedText(roles []string) string {
	switch len(roles) {
	case 0:
		return "nobody"
	case 1:
		return roles[0]
	}
	return strings.Join(roles[:len(roles)-1], ", ") + " or " + roles[len(roles)-1]
}

// safeMethod reports whether method only reads: no CSRF token, no audit.
func safeMethod(method string) bool {
	return method == "GET" || method == "HEAD" || method == "OPTIONS"
}
