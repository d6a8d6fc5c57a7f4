package live

import (
	"sync"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Hub hands committed events to live subscribers (the status page's
// server-sent events). It never blocks the pipeline: a subscriber that
// falls behind is dropped, and its client reconnects with the last id it
// saw and reads what it missed from the store.
type Hub struct {
	db   *store.DB
	cfg  *config.Config // the site's zone, which events are shown in
	mu   sync.Mutex
	subs map[chan web.EventView]struct{}
}

const subscriberBuffer = 256

// NewHub returns the hub of db's events, which shows their times in cfg's
// site zone (UTC for a nil cfg).
func NewHub(db *store.DB, cfg *config.Config) *Hub {
	return &Hub{db: db, cfg: cfg, subs: make(map[chan web.EventView]struct{})}
}

// Subscribe implements web.Events.
func (h *Hub) Subscribe() (<-chan web.EventView, func()) {
	ch := make(chan web.EventView, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			if _, ok := h.subs[ch]; ok {
				delete(h.subs, ch)
				close(ch)
			}
			h.mu.Unlock()
		})
	}
}

// After implements web.Events: the stored events after id, oldest first.
func (h *Hub) After(id uint64, limit int) ([]web.EventView, error) {
	evs, err := h.db.EventsAfter(id, limit)
	return h.eventViews(evs), err
}

// Last implements web.Events: the newest n stored events, oldest first.
func (h *Hub) Last(n int) ([]web.EventView, error) {
	evs, err := h.db.LastEvents(n)
	return h.eventViews(evs), err
}

// Publish hands committed events to the subscribers.
func (h *Hub) Publish(evs []store.Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		for _, v := range h.eventViews(evs) {
			select {
			case ch <- v:
			default: // too slow: it will catch up from the store
				delete(h.subs, ch)
				close(ch)
			}
			if _, ok := h.subs[ch]; !ok {
				break
			}
		}
	}
}

func (h *Hub) eventViews(evs []store.Event) []web.EventView {
	out := make([]web.EventView, len(evs))
	for i, e := range evs {
		out[i] = web.EventView{ID: e.ID, Time: h.cfg.SiteTime(e.Time), Kind: e.Kind, Meter: e.Meter, Tenant: e.Tenant, Text: e.Text, Args: e.Args,
			Alarm: store.AlarmEffect(e)}
	}
	return out
}
