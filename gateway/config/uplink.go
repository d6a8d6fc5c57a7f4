package config

// Uplink is the gateway's link to the mall group's MQTT broker: the
// durable outbox published up (mallgrid/<site_id>/up/<kind>) and the
// signed commands taken down (mallgrid/<site_id>/down). Empty Broker: no
// uplink; the gateway works the same without one.
type Uplink struct {
	Broker   string `yaml:"broker"`
	SiteID   string `yaml:"site_id"`
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	CAFile   string `yaml:"ca_file"`
	// ClientCert and ClientKey log in with a client certificate (ssl://).
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// Keys are the Ed25519 public keys a command may be signed with.
	Keys []UplinkKey `yaml:"keys"`
	// QR is the tenants' payment stickers (uplink_qr.go).
	QR UplinkQR `yaml:"qr"`
}

// UplinkKey is one key commands are signed with, by its id.
type UplinkKey struct {
	ID            string `yaml:"id"`
	Ed25519Public string `yaml:"ed25519_public"`
}
