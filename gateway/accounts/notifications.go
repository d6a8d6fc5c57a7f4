package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/live"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Notifications is the notification endpoints over the store's outbox:
// web.Notifications. Set its fields before it serves.
type Notifications struct {
	DB  *store.DB
	Now func() time.Time
	// Events hears of resends, so that open pages see the dead letter's
	// alarm cleared at once; nil: no one listens.
	Events *live.Hub
	Log    zerolog.Logger
}

// List returns up to limit deliveries newest first, of every state when
// state is "", else in state, older than the one numbered before (0: from
// the newest); an unknown state is web.ErrInvalid.
func (n *Notifications) List(state string, before uint64, limit int) ([]web.NotificationView, error) {
	if limit < 1 {
		return nil, fmt.Errorf("%w: limit %d: want at least 1", web.ErrInvalid, limit)
	}
	list, err := n.DB.DeliveriesBefore(state, before, limit)
	if err != nil {
		if state != "" && state != store.DeliveryPending && state != store.DeliveryDelivered && state != store.DeliveryDead {
			return nil, fmt.Errorf("%w: %v", web.ErrInvalid, err)
		}
		return nil, err
	}
	out := make([]web.NotificationView, len(list))
	for i, d := range list {
		out[i] = notificationView(d)
	}
	return out, nil
}

// Resend queues delivery id again, recording actor (a dead one under its
// id, a delivered one as a new delivery: store.DB.Resend): an unknown id
// is web.ErrNotFound, one still pending web.ErrConflict; each changes
// nothing.
func (n *Notifications) Resend(ctx context.Context, id, actor string) (web.NotificationView, error) {
	if err := ctx.Err(); err != nil {
		return web.NotificationView{}, err
	}
	d, ev, err := n.DB.Resend(id, n.Now(), actor)
	switch {
	case errors.Is(err, store.ErrNoDelivery):
		return web.NotificationView{}, fmt.Errorf("%w: no notification %s", web.ErrNotFound, id)
	case errors.Is(err, store.ErrDeliveryPending):
		return web.NotificationView{}, fmt.Errorf("%w: notification %s is still pending", web.ErrConflict, id)
	case err != nil:
		return web.NotificationView{}, err
	}
	if n.Events != nil {
		n.Events.Publish([]store.Event{ev})
	}
	n.Log.Info().Str("delivery", id).Str("channel", d.Channel).Str("actor", actor).Msg(ev.Text)
	return notificationView(d), nil
}

func notificationView(d store.Delivery) web.NotificationView {
	v := web.NotificationView{ID: d.ID, Seq: d.Seq, Of: d.Of, Kind: d.Event.Kind, State: d.State, Channel: d.Channel, To: d.To, Tenant: d.Tenant,
		Recipient: d.Recipient.Name, Phone: d.Recipient.Phone, Email: d.Recipient.Email, Lang: d.Recipient.Lang,
		Attempts: d.Attempts, Created: d.Created, LastError: d.LastError, Resends: d.Resends,
		Event: d.Event.ID, Text: d.Event.Text, Args: d.Event.Args}
	if d.State == store.DeliveryPending {
		at := d.Due
		v.Due = &at
	}
	if !d.LastAttempt.IsZero() {
		at := d.LastAttempt
		v.LastAttempt = &at
	}
	if !d.Done.IsZero() {
		at := d.Done
		v.Done = &at
	}
	return v
}
