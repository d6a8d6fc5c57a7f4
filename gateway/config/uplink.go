package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"

	"mallgrid/gateway/yamlcheck"
)

// Uplink is the gateway's link to the mall group's MQTT broker: the
// durable outbox published up (mallgrid/<site_id>/up/<kind>) and the
// signed commands taken down (mallgrid/<site_id>/down). Empty Broker: no
// uplink; the gateway works the same without one.
type Uplink struct {
	// Broker is tcp://host:port or ssl://host:port; "" for no uplink.
	Broker string `yaml:"broker"`
	// SiteID names the site in every topic and message: required with a
	// broker; lower-case letters, digits and -, at most 64.
	SiteID string `yaml:"site_id"`
	// ClientID names the persistent session on the broker (default
	// mallgrid-<site_id>): the commands sent while the link is down wait
	// there under it.
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	// Password may come from MALLGRID_UPLINK_PASSWORD instead.
	Password string `yaml:"password"`
	CAFile   string `yaml:"ca_file"`
	// ClientCert and ClientKey log in with a client certificate (ssl://).
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// Keys are the Ed25519 public keys a command may be signed with.
	Keys []UplinkKey `yaml:"keys"`
	// BacklogRate is how many messages a second of the backlog (what was
	// waiting when the link came up) are published, oldest first; newer
	// messages go at once beside it.
	BacklogRate int `yaml:"backlog_rate"`
	// Inflight is how many messages may be published and not yet
	// acknowledged (PUBACK) at once.
	Inflight int `yaml:"inflight"`
	// QR is the tenants' payment stickers (uplink_qr.go).
	QR UplinkQR `yaml:"qr"`
}

// UplinkKey is one key commands are signed with, by its id.
type UplinkKey struct {
	ID string `yaml:"id"`
	// Ed25519Public is the 32-byte public key in standard base64.
	Ed25519Public string `yaml:"ed25519_public"`
}

// PublicKey returns the key decoded; nil when it is not 32 bytes of
// standard base64, which Load rules out.
func (k UplinkKey) PublicKey() ed25519.PublicKey {
	b, err := base64.StdEncoding.DecodeString(k.Ed25519Public)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil
	}
	return ed25519.PublicKey(b)
}

// Defaults of the uplink's publisher. 50 messages a second sends a day's
// backlog of a 2,000-meter site (some 1,500 messages) in half a minute
// without crowding a shared broker; 20 in flight is mosquitto's own
// default window per client (max_inflight_messages).
const (
	DefaultUplinkBacklogRate = 50
	DefaultUplinkInflight    = 20
)

var (
	siteID = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	keyID  = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)
)

// publishedUplinkKeys are Ed25519 public keys whose private keys are
// published: the key of the seed 00 01 02 … 1f (once the example's) and
// RFC 8032's test 1 (docs/UPLINK.md's vectors). Anyone can sign a top-up
// with either; trusted, they would credit any tenant any amount.
var publishedUplinkKeys = []string{
	"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", // seed 00 01 02 … 1f
	"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", // RFC 8032 7.1 test 1
}

// published reports whether the 32-byte key b is one of
// publishedUplinkKeys, however it was written.
func published(b []byte) bool {
	return slices.ContainsFunc(publishedUplinkKeys, func(k string) bool {
		p, _ := base64.StdEncoding.DecodeString(k)
		return bytes.Equal(p, b)
	})
}

// uplinkLinkKeys are the keys that mean something only with a broker.
var uplinkLinkKeys = []string{"client_id", "username", "password", "ca_file", "client_cert", "client_key", "keys", "backlog_rate", "inflight"}

// validateUplink checks the uplink section and sets ClientID's default.
// It runs after validateBuses, whose client buses' ids it compares.
func validateUplink(cfg *Config, r *yamlcheck.Report) {
	u := &cfg.Uplink
	if u.SiteID != "" && !siteID.MatchString(u.SiteID) {
		r.Add("uplink.site_id", "want 1..64 lower-case letters, digits and - (it is a topic level), got %q", u.SiteID)
	}
	validateQR(r, u, cfg.Tenants)
	if u.Broker == "" {
		for _, k := range uplinkLinkKeys {
			if r.Given("uplink." + k) {
				r.Warn("uplink."+k, "ignored: there is no uplink without uplink.broker")
			}
		}
		if u.Password != "" && !r.Given("uplink.password") {
			// From the environment: the technician believes it used.
			r.Warn("uplink.password", "set and ignored: there is no uplink without uplink.broker")
		}
		return
	}
	scheme := checkBroker(r, "uplink.broker", u.Broker)
	r.Need("uplink.site_id", u.SiteID)
	if u.ClientID == "" {
		if siteID.MatchString(u.SiteID) {
			u.ClientID = "mallgrid-" + u.SiteID
		}
	} else if !clientIDs.MatchString(u.ClientID) {
		r.Add("uplink.client_id", "want 1..64 letters, digits, _ . and -, got %q", u.ClientID)
	}
	for i, b := range cfg.Buses {
		if b.IsMQTT() && !b.Embedded() && u.ClientID != "" && b.ClientID == u.ClientID && brokerKey(b.Broker) == brokerKey(u.Broker) {
			r.Add("uplink.client_id", "bus %s already connects to %s as %s (%s): the broker would throw one off for the other, again and again",
				b.Name, b.Broker, b.ClientID, r.Where(yamlcheck.Index("buses", i)))
		}
	}
	if u.Password != "" && u.Username == "" {
		r.Add("uplink.password", "a password needs a username")
	}
	// The example's placeholder: a broker that accepts it accepts anyone
	// who read the example.
	if placeholder(u.Password) {
		r.Add("uplink.password", "the example's placeholder: give the password the group's broker has for this site in %s", "MALLGRID_UPLINK_PASSWORD")
	}
	if u.Password != "" && scheme == "tcp" {
		r.Warn("uplink.password", "sent in clear over tcp://: anyone on the way to %s can read it; use ssl://", u.Broker)
	}
	checkCAFile(r, "uplink.ca_file", u.CAFile, scheme)
	checkClientCert(r, *u, scheme)
	checkUplinkKeys(r, u.Keys)
	if len(u.Keys) == 0 {
		// A warning, not a problem: an uplink that only publishes is
		// legal; one meant to take top-ups refuses every one.
		r.Warn("uplink.keys", "none: every command the group sends down is refused (unknown_key), paid top-ups too; give the signing platform's public keys")
	}
	r.IntIn("uplink.backlog_rate", u.BacklogRate, 1, 10_000)
	r.IntIn("uplink.inflight", u.Inflight, 1, 1_000)
}

// checkClientCert checks the client certificate and key: both or neither,
// absolute paths, a pair, on an ssl:// broker.
func checkClientCert(r *yamlcheck.Report, u Uplink, scheme string) {
	if u.ClientCert == "" && u.ClientKey == "" {
		return
	}
	if (u.ClientCert == "") != (u.ClientKey == "") {
		r.Add("uplink.client_key", "client_cert and client_key go together (one is missing)")
		return
	}
	if scheme == "tcp" {
		r.Add("uplink.client_cert", "applies to ssl:// brokers only")
		return
	}
	ok := true
	for _, f := range []struct{ key, path string }{{"uplink.client_cert", u.ClientCert}, {"uplink.client_key", u.ClientKey}} {
		if !strings.HasPrefix(f.path, "/") {
			r.Add(f.key, "want an absolute path, got %q", f.path)
			ok = false
		}
	}
	if !ok {
		return
	}
	if _, err := tls.LoadX509KeyPair(u.ClientCert, u.ClientKey); err != nil {
		r.Add("uplink.client_key", "the certificate and key are not a pair to log in with: %v", err)
	}
}

func checkUplinkKeys(r *yamlcheck.Report, keys []UplinkKey) {
	ids := unique(r, "key id")
	for i, k := range keys {
		p := yamlcheck.Index("uplink.keys", i)
		if r.Need(p+".id", k.ID) {
			if !keyID.MatchString(k.ID) {
				r.Add(p+".id", "want 1..64 letters, digits, _ . and -, got %q", k.ID)
			} else {
				ids.check(p+".id", k.ID)
			}
		}
		if !r.Need(p+".ed25519_public", k.Ed25519Public) {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(k.Ed25519Public)
		switch {
		case err != nil:
			r.Add(p+".ed25519_public", "want the public key in standard base64 (44 characters), got %q", k.Ed25519Public)
		case len(b) == ed25519.PrivateKeySize:
			// The signer's secret, which must never leave it: say so
			// rather than only that the length is wrong.
			r.Add(p+".ed25519_public", "this is a %d-byte Ed25519 private key; give its public key (32 bytes) and keep the private key with the signer", len(b))
		case len(b) != ed25519.PublicKeySize:
			r.Add(p+".ed25519_public", "want a %d-byte Ed25519 public key, got %d bytes", ed25519.PublicKeySize, len(b))
		case published(b):
			r.Add(p+".ed25519_public", "a published key (docs/UPLINK.md's test vectors, or the seed 00 01 … 1f): anyone has its private key and could sign top-ups; give the public key of the group's signing platform")
		}
	}
}
