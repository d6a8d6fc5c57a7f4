package live

import (
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// EachBefore implements web.EventPager: the stored events below id (0:
// from the newest), newest first, until fn says stop.
func (h *Hub) EachBefore(id uint64, fn func(web.EventView) bool) error {
	return h.db.EachEventBefore(id, func(e store.Event) bool {
		return fn(h.eventViews([]store.Event{e})[0])
	})
}
