package uplink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Limits of a command from the group's platform.
const (
	// MaxCommandBytes bounds one message of the downlink: a command is a
	// few hundred bytes; anything near this is not one, and is refused
	// before it is decoded.
	MaxCommandBytes = 16 << 10
	// MaxClockSkew is how far ahead of the gateway's clock a command's
	// issued_at may be: the platform's and the gateway's clocks differ a
	// little; a command from the future is forged or its signer's clock
	// is wrong.
	MaxClockSkew = 5 * time.Minute
	// MaxCommandLifetime bounds how far ahead of the gateway's clock a
	// command's expires_at may be. A command is refused once expired, so
	// its id needs keeping (against a replay) only until then: the bound
	// keeps the record of seen ids small. A top-up paid by a tenant comes
	// down in seconds; a week covers any outage of the link.
	MaxCommandLifetime = 7 * 24 * time.Hour
	// keepSeen is how long after its expiry a command's record is kept:
	// a clock set back by less than this still finds a replay.
	keepSeen = 24 * time.Hour
	// pruneEvery spaces the pruning of expired records.
	pruneEvery = time.Hour
	// pruneBatch bounds the records deleted in one transaction.
	pruneBatch = 1000
)

// Command kinds.
const (
	KindTopUp         = "topup"
	KindInvoiceStatus = "invoice_status"
)

// Reasons a command is refused, in its result's "reason". The first six
// are the downlink's own (docs/UPLINK.md); the others are the ledger's
// answer to a command that was trusted.
const (
	ReasonUnknownKey    = "unknown_key"   // key_id names no key of uplink.keys
	ReasonBadSignature  = "bad_signature" // the signature is not the key's over the payload bytes
	ReasonBadCommand    = "bad_command"   // the envelope or command cannot be read, or breaks a rule
	ReasonOtherSite     = "other_site"    // the command is for another site
	ReasonExpired       = "expired"       // expires_at has passed
	ReasonReplayed      = "replayed"      // the id was handled before, with other bytes
	ReasonUnknownTenant = "unknown_tenant"
	ReasonInvalid       = "invalid"      // amount, ref, channel or invoice the ledger refuses
	ReasonRefConflict   = "ref_conflict" // the ref was credited for another tenant or amount
	ReasonUnknownRef    = "unknown_ref"  // invoice_status for a ref with no invoice request
	ReasonInvoiceIssued = "invoice_issued"
)

// KindCommandRefused is the event stored for every refused command, so
// the control room sees forged, stale and refused commands. Args: command
// (its id), reason (the code), detail, key (the envelope's key id),
// command_kind; form no_id when the message had no id fit to repeat.
const KindCommandRefused = "uplink_command_refused"

// InvoiceConflict is a top-up result's Invoice when the payment was
// credited before with another invoice request than the command's.
const InvoiceConflict = "conflict"

// Statuses of a result.
const (
	StatusOK      = "ok"
	StatusRefused = "refused"
)

// Result is the body of a command_result message: one per command
// handled, and the first one again (Duplicate) when the same command comes
// down again.
type Result struct {
	ID     string `json:"id"`
	Status string `json:"status"` // ok | refused
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// PayloadSHA256 (hex) names a message too broken to read an id from:
	// the SHA-256 of the whole message as it came down.
	PayloadSHA256 string `json:"payload_sha256,omitempty"`
	// A top-up credited: its entry, receipt number and the balance after
	// it; Existing when the ref was credited before (by an earlier
	// command or through the local API) and that entry is the answer.
	Entry    uint64 `json:"entry,omitempty"`
	Receipt  string `json:"receipt,omitempty"`
	Balance  string `json:"balance,omitempty"`
	Existing *bool  `json:"existing,omitempty"`
	// Invoice is InvoiceConflict when the top-up came with another invoice
	// request than the one its entry has: the money is the entry (ok,
	// existing), the first request stands, and this one was not kept.
	Invoice string `json:"invoice,omitempty"`
	// An invoice status recorded: the top-up's ref and where its invoice
	// now stands.
	Ref           string `json:"ref,omitempty"`
	InvoiceStatus string `json:"invoice_status,omitempty"`
	// Duplicate marks the first result sent again for the same command
	// delivered again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Ledger is what commands change: accounts.Ledger is one. Its errors
// wrapping web.ErrNotFound, web.ErrInvalid or web.ErrConflict refuse the
// command (and change nothing) — except a TopUp's wrapping
// store.ErrInvoiceConflict, which comes with the entry that credited the
// payment and answers it; any other error is the database's, and the
// command is to be delivered again.
type Ledger interface {
	// TopUp credits a payment once per reference, as the local API does.
	TopUp(ctx context.Context, tenant string, req web.TopUpRequest, actor string) (web.EntryView, bool, error)
	// InvoiceStatus records what became of a top-up's invoice request.
	InvoiceStatus(ctx context.Context, ref, status, number, url, reason string) (store.Invoice, error)
}

// Commands handles the signed commands of the group's platform, one
// message of mallgrid/<site_id>/down at a time: it checks each (envelope,
// key, signature, command, site, id, time), carries out the trusted ones
// through Ledger, and answers every one with a command_result in the
// uplink outbox; a refusal is also stored as an event and logged. Set its
// fields before it handles a message.
type Commands struct {
	DB     *store.DB
	SiteID string
	// Keys are the platform's public keys by key id (ParseKeys).
	Keys map[string]ed25519.PublicKey
	// Config names the tenants: a top-up for one not configured is
	// refused (unknown_tenant) before the ledger is asked.
	Config *config.Config
	Ledger Ledger
	Now    func() time.Time
	Log    zerolog.Logger
	// Events hears of the refusals once stored, so that the control
	// room's open pages show them at once (live.Hub); nil: no one listens.
	Events interface{ Publish([]store.Event) }

	// mu makes Handle one command at a time: looking an id up and
	// recording it must not interleave with the same id's.
	mu        sync.Mutex
	lastPrune time.Time
	// flood holds the last event of each untrusted refusal (floodGate).
	flood map[[2]string]*floodWindow
	// last is the last command answered, for the status (LastCommand).
	last lastCommand
}

// ParseKeys decodes the configured keys (uplink.keys): each id once, each
// key the standard base64 of a 32-byte Ed25519 public key. The
// configuration's check (gateway/config) refuses what it would.
func ParseKeys(keys []config.UplinkKey) (map[string]ed25519.PublicKey, error) {
	out := make(map[string]ed25519.PublicKey, len(keys))
	for i, k := range keys {
		if k.ID == "" {
			return nil, fmt.Errorf("uplink.keys[%d]: no id", i)
		}
		if _, dup := out[k.ID]; dup {
			return nil, fmt.Errorf("uplink.keys[%d]: id %q given twice", i, k.ID)
		}
		// As the configuration's check reads it (gateway/config), so a file
		// it passed starts.
		raw, err := base64.StdEncoding.DecodeString(k.Ed25519Public)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("uplink.keys[%d] (%s): ed25519_public: want the standard base64 of a %d-byte Ed25519 public key", i, k.ID, ed25519.PublicKeySize)
		}
		out[k.ID] = ed25519.PublicKey(raw)
	}
	return out, nil
}

// downEnvelope is a message of the downlink as it comes.
type downEnvelope struct {
	KeyID   string `json:"key_id"`
	Payload string `json:"payload"` // standard base64 of the command's JSON bytes
	Sig     string `json:"sig"`     // standard base64 of the Ed25519 signature of those bytes
}

// head is what every command carries.
type head struct {
	ID        string    `json:"id"`
	Site      string    `json:"site"`
	Kind      string    `json:"kind"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// topUpCommand is a payment made upstream, to credit.
type topUpCommand struct {
	head
	Tenant  string          `json:"tenant"`
	Amount  string          `json:"amount"`
	Ref     string          `json:"ref"`
	Channel string          `json:"channel"`
	Invoice *invoiceRequest `json:"invoice"`
}

type invoiceRequest struct {
	Title string `json:"title"`
	TaxID string `json:"tax_id"`
	Email string `json:"email"`
}

// invoiceStatusCommand is what became of a top-up's invoice request.
type invoiceStatusCommand struct {
	head
	Ref    string `json:"ref"`
	Status string `json:"status"`
	Number string `json:"number"`
	URL    string `json:"url"`
	Reason string `json:"reason"`
}

// refusal is a command refused: its result and what the control room is
// told.
type refusal struct {
	reason, detail string
}

// refuse is a refusal for reason. Its detail is bounded: it may quote
// what came down (a field's name in a decoder's error), and it goes into
// a result, an event and the log.
func refuse(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, detail: clipTo(fmt.Sprintf(format, args...), maxDetail)}
}

// maxDetail bounds a refusal's detail, in bytes.
const maxDetail = 300

// checked is a message read and verified as far as it got.
type checked struct {
	id      string   // the command's id, read even before it is trusted; "" when unreadable
	keyID   string   // as the envelope names it
	sum     [32]byte // SHA-256 of the command's bytes, once read
	trusted bool     // the signature is good
	head    head     // once trusted and decoded
	tenant  string   // a top-up's tenant, once decoded
	command any      // *topUpCommand or *invoiceStatusCommand, once decoded and for this site
}

// Handle handles one message of the downlink. It returns nil once the
// message is answered (a command_result queued in the outbox): carried
// out, refused, or recognized as delivered before; the link then
// acknowledges it to the broker. An error means nothing durable came of
// the message (the database could not write) and the broker should
// deliver it again. A bad command is never an error.
func (c *Commands) Handle(ctx context.Context, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Now()
	msg, ref := c.read(payload)
	seen := false
	if ref == nil {
		// The id is looked up before the command's times, so that a
		// command delivered again after it expired still gets its first
		// answer, not a refusal of what was carried out.
		rec, found, err := c.DB.UplinkCommand(msg.id)
		if err != nil {
			return fmt.Errorf("look up command %s: %w", msg.id, err)
		}
		seen = found
		switch {
		case seen && rec.PayloadSHA256 == hex.EncodeToString(msg.sum[:]):
			return c.answerAgain(msg, rec, now)
		case seen:
			ref = refuse(ReasonReplayed, "command %s was handled at %s; these are other bytes under its id", msg.id, rec.Handled.UTC().Format(time.RFC3339))
		default:
			ref = checkTimes(msg.head, now)
		}
	}
	if ref != nil {
		res, credited, err := c.creditedBefore(msg, ref)
		switch {
		case err != nil:
			return err
		case credited && seen:
			// Its id is another command's: answered, not recorded.
			return c.answerCredited(msg, res, now)
		case credited:
			return c.finish(msg, res, nil, now)
		}
		return c.report(msg, payload, now, ref)
	}
	res, ref, err := c.execute(ctx, msg)
	if err != nil {
		return err
	}
	if ref != nil {
		credited, ok, err := c.creditedBefore(msg, ref)
		if err != nil {
			return err
		}
		if ok {
			res, ref = credited, nil
		}
	}
	return c.finish(msg, res, ref, now)
}

// finish records a command with its result (res, or ref's refusal),
// queues the result and, for a refusal, stores and publishes its event.
func (c *Commands) finish(msg checked, res Result, ref *refusal, now time.Time) error {
	var events []store.Event
	if ref != nil {
		res = c.refusedResult(msg, nil, ref)
		events = append(events, c.event(msg, now, ref))
	}
	m, err := c.message(res, now)
	if err != nil {
		return err
	}
	rec := store.UplinkCommand{ID: msg.id, PayloadSHA256: hex.EncodeToString(msg.sum[:]), Expires: msg.head.ExpiresAt}
	if t, ok := msg.command.(*topUpCommand); ok {
		// The payment as the command named it, for verify to hold the
		// result against the entry it names.
		rec.Ref, rec.Tenant, rec.Amount = t.Ref, t.Tenant, t.Amount
		if a, err := billing.ParseMoney(t.Amount); err == nil {
			rec.Amount = a.String()
		}
	}
	_, stored, err := c.DB.FinishUplinkCommandRecord(rec, m, events...)
	if err != nil {
		return fmt.Errorf("record command %s: %w", msg.id, err)
	}
	if ref != nil {
		c.publish(stored)
		c.logRefusal(msg, ref)
	} else {
		c.Log.Info().Str("command", msg.id).Str("kind", msg.head.Kind).Str("key_id", msg.keyID).Str("tenant", msg.tenant).
			Uint64("entry", res.Entry).Msg("uplink command carried out")
	}
	c.prune(now)
	return nil
}

// read decodes and verifies a message as far as it can without the
// database: envelope, key, signature, the command's fields, its site. The
// refusal says where it failed; msg holds what was read before.
func (c *Commands) read(payload []byte) (msg checked, ref *refusal) {
	if len(payload) > MaxCommandBytes {
		return msg, refuse(ReasonBadCommand, "message of %d bytes: over the limit of %d", len(payload), MaxCommandBytes)
	}
	if !utf8.Valid(payload) {
		return msg, refuse(ReasonBadCommand, "envelope: not UTF-8")
	}
	var env downEnvelope
	if err := exactNames(payload, envelopeNames); err != nil {
		return msg, refuse(ReasonBadCommand, "envelope: %v", err)
	}
	if err := strictJSON(payload, &env); err != nil {
		return msg, refuse(ReasonBadCommand, "envelope: %v", err)
	}
	msg.keyID = clip(env.KeyID)
	body, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil || len(body) == 0 {
		return msg, refuse(ReasonBadCommand, "payload: want the standard base64 of the command's JSON bytes")
	}
	msg.sum = sha256.Sum256(body)
	// The id is read before the command is trusted, only to name the
	// command in its refusal: the platform matches results by id.
	msg.id = peekID(body)
	key, ok := c.Keys[env.KeyID]
	if !ok {
		return msg, refuse(ReasonUnknownKey, "key_id %q is not one of the keys configured (uplink.keys)", msg.keyID)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(env.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(key, body, sig) {
		return msg, refuse(ReasonBadSignature, "sig is not key %s's Ed25519 signature of the payload bytes", env.KeyID)
	}
	msg.trusted = true
	cmd, h, ref := decodeCommand(body)
	msg.head = h
	if ref != nil {
		return msg, ref
	}
	if h.Site != c.SiteID {
		return msg, refuse(ReasonOtherSite, "the command is for site %q; this is %q", clip(h.Site), c.SiteID)
	}
	if t, ok := cmd.(*topUpCommand); ok {
		msg.tenant = t.Tenant
	}
	msg.command = cmd
	return msg, nil
}

// decodeCommand reads a command's bytes strictly: valid UTF-8, its kind's
// fields and no others, each exactly as spelled and once, each of its
// type, those it needs present.
func decodeCommand(body []byte) (any, head, *refusal) {
	var h head
	if !utf8.Valid(body) {
		// encoding/json would read each invalid byte as U+FFFD: "P-\xff"
		// and "P-\xfe" would be one ref, and the second payment never
		// credited.
		return nil, h, refuse(ReasonBadCommand, "command: not UTF-8")
	}
	var probe struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, h, refuse(ReasonBadCommand, "command: %v", err)
	}
	var cmd any
	switch probe.Kind {
	case KindTopUp:
		var t topUpCommand
		if err := exactNames(body, topUpNames); err != nil {
			return nil, h, refuse(ReasonBadCommand, "command: %v", err)
		}
		if err := strictJSON(body, &t); err != nil {
			return nil, h, refuse(ReasonBadCommand, "command: %v", err)
		}
		h, cmd = t.head, &t
		if t.Tenant == "" || t.Amount == "" || t.Ref == "" || t.Channel == "" {
			return nil, h, refuse(ReasonBadCommand, "topup: want tenant, amount, ref and channel")
		}
	case KindInvoiceStatus:
		var s invoiceStatusCommand
		if err := exactNames(body, invoiceStatusNames); err != nil {
			return nil, h, refuse(ReasonBadCommand, "command: %v", err)
		}
		if err := strictJSON(body, &s); err != nil {
			return nil, h, refuse(ReasonBadCommand, "command: %v", err)
		}
		h, cmd = s.head, &s
		switch {
		case s.Ref == "":
			return nil, h, refuse(ReasonBadCommand, "invoice_status: want ref")
		case s.Status != store.InvoiceIssued && s.Status != store.InvoiceFailed:
			return nil, h, refuse(ReasonBadCommand, "invoice_status: status %q: want issued or failed", clip(s.Status))
		}
	default:
		return nil, h, refuse(ReasonBadCommand, "kind %q: want topup or invoice_status", clip(probe.Kind))
	}
	switch {
	case !goodID(h.ID):
		return nil, h, refuse(ReasonBadCommand, "id: want 1 to %d printable characters", store.MaxUplinkCommandID)
	case h.Site == "":
		return nil, h, refuse(ReasonBadCommand, "site: want the site's id")
	case h.IssuedAt.IsZero() || h.ExpiresAt.IsZero():
		return nil, h, refuse(ReasonBadCommand, "want issued_at and expires_at (RFC 3339)")
	}
	return cmd, h, nil
}

// checkTimes refuses a command from the future, expired, or living longer
// than MaxCommandLifetime.
func checkTimes(h head, now time.Time) *refusal {
	switch {
	case h.IssuedAt.After(now.Add(MaxClockSkew)):
		return refuse(ReasonBadCommand, "issued_at %s is more than %s ahead of the gateway's clock (%s)",
			h.IssuedAt.Format(time.RFC3339), MaxClockSkew, now.In(h.IssuedAt.Location()).Format(time.RFC3339))
	case !h.ExpiresAt.After(now):
		return refuse(ReasonExpired, "expired at %s; the gateway's clock says %s", h.ExpiresAt.Format(time.RFC3339), now.In(h.ExpiresAt.Location()).Format(time.RFC3339))
	case !h.ExpiresAt.After(h.IssuedAt):
		return refuse(ReasonBadCommand, "expires_at %s is not after issued_at %s", h.ExpiresAt.Format(time.RFC3339), h.IssuedAt.Format(time.RFC3339))
	case h.ExpiresAt.Sub(now) > MaxCommandLifetime:
		return refuse(ReasonBadCommand, "expires_at %s is more than %s ahead: a command lives at most that long",
			h.ExpiresAt.Format(time.RFC3339), MaxCommandLifetime)
	}
	return nil
}

// strictJSON decodes one JSON object into v: a field v does not have, a
// field of another type, or anything after the object is an error.
func strictJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// peekID reads a command's id, leniently, from bytes not yet trusted or
// not readable as a command; "" when there is none fit to repeat.
func peekID(body []byte) string {
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &p) != nil || !goodID(p.ID) {
		return ""
	}
	return p.ID
}

// goodID: 1 to store.MaxUplinkCommandID printable characters, no space.
func goodID(id string) bool {
	if id == "" || len(id) > store.MaxUplinkCommandID {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// clip shortens text from a message not trusted before it goes into a
// result, an event or a log line.
func clip(s string) string { return clipTo(s, 64) }

// clipTo keeps at most most bytes of s, cut on a rune's boundary, and
// marks a cut with "…".
func clipTo(s string, most int) string {
	if len(s) <= most {
		return s
	}
	cut := 0
	for i := range s {
		if i > most {
			break
		}
		cut = i
	}
	return s[:cut] + "…"
}

// NewCommands is Commands for the site's configuration: its uplink's
// site id and keys (ParseKeys), its tenants.
func NewCommands(db *store.DB, cfg *config.Config, up config.Uplink, ledger Ledger, now func() time.Time, log zerolog.Logger) (*Commands, error) {
	keys, err := ParseKeys(up.Keys)
	if err != nil {
		return nil, err
	}
	if up.SiteID == "" {
		return nil, errors.New("uplink.site_id: commands name the site they are for; want its id")
	}
	return &Commands{DB: db, SiteID: up.SiteID, Keys: keys, Config: cfg, Ledger: ledger, Now: now, Log: log}, nil
}
