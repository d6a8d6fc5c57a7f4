package pipeline

import (
	"slices"
	"testing"

	"mallgrid/gateway/alarm"
	"mallgrid/store"
)

// TestRuleEventKind: every alarm kind the rules raise has its raising and
// clearing event kinds here, and the store keeps alarms of exactly those.
func TestRuleEventKind(t *testing.T) {
	for _, k := range alarm.Kinds() {
		if got := ruleEventKind(k, true); got != k {
			t.Errorf("%s raised: event kind %q", k, got)
		}
		if got := ruleEventKind(k, false); got != alarm.ClearedKind(k) {
			t.Errorf("%s cleared: event kind %q; want %q", k, got, alarm.ClearedKind(k))
		}
		if store.AlarmSeverity(k) == "" {
			t.Errorf("%s: the store keeps no alarm of it", k)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(alarm.Kinds())), slices.Sorted(slices.Values(store.RuleAlarmKinds))) {
		t.Errorf("the rules raise %v; the store keeps %v", alarm.Kinds(), store.RuleAlarmKinds)
	}
	if ruleEventKind("bogus", true) != "" {
		t.Error("an unknown kind has an event kind")
	}
}
