package notify_test

import (
	"fmt"
	"time"

	"mallgrid/gateway/notify"
)

// A receiver checks a webhook before it believes it: the signature over
// the raw body, and the time, to refuse a replay.
func ExampleVerify() {
	body := []byte(`{"delivery":"d-42","kind":"overload"}`)
	sent := time.Unix(1700000000, 0)
	header := notify.Sign("shared-secret", sent, body) // what the gateway sent

	fmt.Println(notify.Verify("shared-secret", header, body, sent.Add(3*time.Second), 5*time.Minute))
	fmt.Println(notify.Verify("shared-secret", header, []byte(`{"delivery":"d-42","kind":"restored"}`), sent, 5*time.Minute))
	fmt.Println(notify.Verify("shared-secret", header, body, sent.Add(time.Hour), 5*time.Minute))
	// Output:
	// <nil>
	// notify: signature does not match
	// notify: signature timestamp outside tolerance
}
