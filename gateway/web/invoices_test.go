package web

import (
	"testing"
)

// TestAudit_TopUpWithInvoice: a top-up's audit record names the invoice
// asked for with it — in whose name, under which tax id.
func TestAudit_TopUpWithInvoice(t *testing.T) {
	rg := newRig(t)
	c := client(t)
	op := map[string]string{"Authorization": "Bearer operator-secret"}
	rg.do(t, c, "POST", "/api/v1/accounts/T-101/topups",
		`{"amount":"100.00","ref":"PAY-1","channel":"cash","invoice":{"title":"Acme Ltd","tax_id":"91310000MA1FL0XX0X"}}`, op, nil)
	recs := rg.audit.all()
	if len(recs) != 1 {
		t.Fatalf("audit = %+v; want the top-up", recs)
	}
	if want := `cash ref PAY-1 amount 100.00 invoice "Acme Ltd" tax id "91310000MA1FL0XX0X"`; recs[0].Reason != want {
		t.Errorf("top-up record's reason = %q; want %q", recs[0].Reason, want)
	}
}
