package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/live"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Alarms is the alarm endpoints over the store: web.Alarms. The store
// raises and clears alarms with the events it stores; Alarms lists them and
// records acknowledgements. Set its fields before it serves.
type Alarms struct {
	DB  *store.DB
	Now func() time.Time
	// Events hears of acknowledgements, so that open pages see them at
	// once; nil: no one listens.
	Events *live.Hub
	// Log records every acknowledgement with who made it.
	Log zerolog.Logger
}

// List returns up to limit alarms newest first, of every state when state
// is "", else in state (active, acknowledged or cleared); an unknown state
// is web.ErrInvalid.
func (a *Alarms) List(state string, limit int) ([]web.AlarmView, error) {
	switch state {
	case "", web.AlarmActive, web.AlarmAcknowledged, web.AlarmCleared:
	default:
		return nil, fmt.Errorf("%w: state %q: want active, acknowledged or cleared", web.ErrInvalid, state)
	}
	if limit < 1 {
		return nil, fmt.Errorf("%w: limit %d: want at least 1", web.ErrInvalid, limit)
	}
	list, err := a.DB.Alarms(state, limit)
	if err != nil {
		return nil, err
	}
	out := make([]web.AlarmView, len(list))
	for i, al := range list {
		out[i] = alarmView(al)
	}
	return out, nil
}

// Ack records that actor acknowledged alarm id with note, and streams the
// alarm_acknowledged event stored with it. An unknown id is
// web.ErrNotFound, an alarm acknowledged before web.ErrConflict (naming who
// did), an empty note web.ErrInvalid; each changes nothing.
func (a *Alarms) Ack(ctx context.Context, id uint64, note, actor string) (web.AlarmView, error) {
	if strings.TrimSpace(note) == "" {
		return web.AlarmView{}, fmt.Errorf("%w: note: say what was done or found; it is kept with the alarm", web.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return web.AlarmView{}, err // the client is gone: record nothing it will not hear of
	}
	al, ev, err := a.DB.AckAlarm(id, note, actor, a.Now())
	switch {
	case errors.Is(err, store.ErrNoAlarm):
		return web.AlarmView{}, fmt.Errorf("%w: no alarm %d", web.ErrNotFound, id)
	case errors.Is(err, store.ErrAlarmAcked):
		return web.AlarmView{}, fmt.Errorf("%w: %v", web.ErrConflict, err)
	case err != nil:
		return web.AlarmView{}, err
	}
	if a.Events != nil {
		a.Events.Publish([]store.Event{ev})
	}
	a.Log.Info().Uint64("alarm", id).Str("kind", al.Kind).Str("meter", al.Meter).Str("bus", al.Bus).Str("actor", actor).
		Str("state", al.State()).Msg(ev.Text)
	return alarmView(al), nil
}

func alarmView(a store.Alarm) web.AlarmView {
	v := web.AlarmView{ID: a.ID, Kind: a.Kind, Severity: a.Severity, State: a.State(), Meter: a.Meter, Tenant: a.Tenant, Bus: a.Bus,
		Text: a.Text, Args: a.Args, Raised: a.Raised, RaisedEvent: a.RaisedEvent, AckedBy: a.AckedBy, Note: a.Note, ClearedEvent: a.ClearedEvent}
	if slices.Contains(store.RuleAlarmKinds, a.Kind) {
		v.Values = measurements(a.Args)
	}
	if !a.Acked.IsZero() {
		at := a.Acked
		v.Acked = &at
	}
	if !a.Cleared.IsZero() || a.ClearedEvent != 0 {
		at := a.Cleared
		v.Cleared = &at
	}
	return v
}

// measurements are a rule alarm's values behind it (current_a, limit_a,
// voltage_v, …): its raising event's facts less who and what it is about.
func measurements(args map[string]string) map[string]string {
	out := make(map[string]string, len(args))
	for k, v := range args {
		switch k {
		case "meter", "severity", "form":
		default:
			out[k] = v
		}
	}
	return out
}

// EachAlarmBefore implements web.AlarmPager: the alarms below id (0: from
// the newest), newest first, until fn says stop.
func (a *Alarms) EachAlarmBefore(id uint64, fn func(web.AlarmView) bool) error {
	return a.DB.EachAlarmBefore(id, func(al store.Alarm) bool { return fn(alarmView(al)) })
}

// Kinds implements web.AlarmPager: every kind of alarm, for the filter.
func (a *Alarms) Kinds() []string { return store.AlarmKinds() }
