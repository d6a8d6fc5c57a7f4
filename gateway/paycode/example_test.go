package paycode_test

import (
	"fmt"

	"mallgrid/gateway/config"
	"mallgrid/gateway/paycode"
)

// A tenant's sticker link, as docs/QR.md's first test vector.
func ExampleSigner_Link() {
	qr := config.UplinkQR{URL: "https://pay.example.com/mall/{site}/shop/{tenant}?k={key}&s={sig}", KeyID: "q1",
		Secret: "mallgrid-qr-test-secret-0123456789abcdef"}
	s, err := paycode.NewSigner("riverside-plaza", qr)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Link("B1-07"))
	// Output: https://pay.example.com/mall/riverside-plaza/shop/B1-07?k=q1&s=e301a2Nr1a8fNtHTsEvqhw
}

// What the payment page does with a link's tenant and signature.
func ExampleVerify() {
	secret := []byte("mallgrid-qr-test-secret-0123456789abcdef")
	fmt.Println(paycode.Verify(secret, "riverside-plaza", "B1-07", "e301a2Nr1a8fNtHTsEvqhw"))
	fmt.Println(paycode.Verify(secret, "riverside-plaza", "B1-08", "e301a2Nr1a8fNtHTsEvqhw"))
	// Output:
	// true
	// false
}
