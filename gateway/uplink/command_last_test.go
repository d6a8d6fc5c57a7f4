package uplink

import (
	"context"
	"testing"
)

// The status's last command is the last one answered: a refusal names
// its reason, a delivery again is marked, and a command whose handling
// failed (to be delivered again) is not taken for handled.
func TestCommands_LastCommand(t *testing.T) {
	h := newHarness(t, t.TempDir())
	flaky := &flakyLedger{Ledger: h.ledger}
	h.cmds.Ledger = flaky
	link := noting{h.cmds}
	handle := func(msg []byte) error { return link.Handle(context.Background(), msg) }
	if _, ok := h.cmds.LastCommand(); ok {
		t.Fatal("a last command before any; want none")
	}
	ok := signed(vectorKey(t), "k1", topUpAt("c-1", "10.00", "P-1", vectorNow))
	if err := handle(ok); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.cmds.LastCommand(); got.ID != "c-1" || got.Status != StatusOK || got.Reason != "" || !got.Time.Equal(vectorNow) {
		t.Errorf("last %+v; want c-1 ok at %s", got, vectorNow)
	}
	if err := handle(ok); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.cmds.LastCommand(); got.ID != "c-1" || !got.Duplicate {
		t.Errorf("last %+v; want c-1 again, a duplicate", got)
	}
	if err := handle(signed(vectorKey(t), "k9", topUpAt("c-2", "10.00", "P-2", vectorNow))); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.cmds.LastCommand(); got.ID != "c-2" || got.Status != StatusRefused || got.Reason != ReasonUnknownKey {
		t.Errorf("last %+v; want c-2 refused unknown_key", got)
	}
	flaky.broken = true
	if err := handle(signed(vectorKey(t), "k1", topUpAt("c-3", "10.00", "P-3", vectorNow))); err == nil {
		t.Fatal("Handle with the ledger broken = nil; want its error")
	}
	if got, _ := h.cmds.LastCommand(); got.ID != "c-2" {
		t.Errorf("last %+v after a failure; want still c-2", got)
	}
}
