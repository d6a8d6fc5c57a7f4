package config

// UplinkQR is the tenants' payment stickers: a QR code per tenant for the
// mall's payment page, signed so that the page can trust the tenant id.
type UplinkQR struct {
	// URL is the payment page's address template.
	URL string `yaml:"url"`
}
