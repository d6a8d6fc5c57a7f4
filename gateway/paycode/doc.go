// Package paycode makes the tenants' payment stickers: per tenant a QR
// code that opens the mall's payment page for exactly that tenant, signed
// so that the page can trust the tenant id — nobody can print a sticker
// that credits another shop's meter.
//
// # Use
//
// A Signer, made by NewSigner from the configuration's uplink.qr and
// uplink.site_id, gives each tenant's Link: the URL template with the
// site, the tenant, the key id and Sig filled in. Encode turns a link
// into a Code (error correction Q), drawn as a PNG or an SVG of its own;
// a Sheet lays stickers out on A4 (3 × 4 a page) as a PDF or one SVG.
// Service puts the three together for the web's admin page and its API
// (web.Paycodes) and for `mallgrid qr`. Nothing here reads the database
// or the clock: a sticker depends on the configuration alone.
//
// # Signature
//
//	sig = base64url(HMAC-SHA256(secret, "mallgrid-qr/1\n" + site + "\n" + tenant)[:16])
//
// without padding: 22 characters, 128 bits — small enough to keep the code
// easy to scan from a meter box, far beyond guessing. The payment page
// finds the secret by the link's key id (uplink.qr.key_id), so a new
// secret can be brought in beside the old while old stickers are
// replaced. docs/QR.md publishes a test vector and verification code; a
// test here reads the vector from that file.
package paycode
