package live

import (
	"time"

	"mallgrid/gateway/config"
	"mallgrid/gateway/poll"
)

// carriedFor bounds how long a meter's state carried over a reload stands
// in for a poller that has not asked the meter yet: a bus whose loop has
// not moved for that long is hung (supervise.DefaultAllowance), and a meter
// that answered before the reload but not since is no longer taken for
// online on the strength of it.
const carriedFor = 2 * time.Minute

// carried is what a picture took over from the one a reload replaced.
type carried struct {
	status map[string]poll.MeterStatus // by meter id
	// until is, by meter id, when its carried state stops standing in for
	// its poller (on lv.monotonic): carriedFor after the reload, or sooner
	// when the state was itself carried over an earlier reload and no
	// poller has asked the meter since — reloads in a row do not keep a
	// meter online that nobody has asked.
	until map[string]time.Time
}

// Carry takes over from prev, the picture of the configuration a reload
// replaces (its buses stopped), what the new pollers cannot know until
// they have asked each meter: whether it was online and when it last
// answered, and when each bus last finished a cycle — so that a reload
// does not show every meter offline. Only the buses named are carried (those on the same link), and
// on them the meters at the same address.
//
// A carried state stands for a meter until its new poller has asked it,
// for carriedFor at most after the last poller that did (over reloads in
// a row, the earliest limit stands); its last answer stands until the
// poller has one. Call Carry before the picture is served.
func (lv *Picture) Carry(prev *Picture, buses []string) {
	kept := make(map[string]bool, len(buses))
	for _, b := range buses {
		kept[b] = true
	}
	was := make(map[string]config.Meter, len(prev.cfg.Meters))
	for _, m := range prev.cfg.Meters {
		was[m.ID] = m
	}
	own, earlier, then := prev.polled()
	ps := make(map[string]poll.MeterStatus, len(own))
	for id, st := range own {
		ps[id] = st
	}
	earlier.withCarried(ps, then) // what prev showed: over reloads in a row, carried in turn
	prev.mu.Lock()
	cycles := make(map[string]busState, len(buses))
	for _, b := range buses {
		if bs := prev.buses[b]; bs != nil {
			cycles[b] = busState{lastCycle: bs.lastCycle, cycleDur: bs.cycleDur}
		}
	}
	prev.mu.Unlock()

	limit := lv.monotonic().Add(carriedFor)
	c := carried{status: make(map[string]poll.MeterStatus), until: make(map[string]time.Time)}
	for _, m := range lv.cfg.Meters {
		w, ok := was[m.ID]
		st, polled := ps[m.ID]
		if !ok || !polled || !kept[m.Bus] || w.Bus != m.Bus || w.Address != m.Address {
			continue
		}
		c.status[m.ID] = poll.MeterStatus{ID: m.ID, Online: st.Online, Stats: poll.Stats{LastSeen: st.Stats.LastSeen}}
		c.until[m.ID] = limit
		// A state prev's poller never confirmed was carried over an earlier
		// reload: it keeps the limit it was given then.
		if e, ok := earlier.until[m.ID]; ok && !asked(own[m.ID]) && e.Before(limit) {
			c.until[m.ID] = e
		}
	}
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.carry = c
	for b, cy := range cycles {
		if bs := lv.buses[b]; bs != nil {
			bs.lastCycle, bs.cycleDur = cy.lastCycle, cy.cycleDur
		}
	}
}

// asked reports whether st, a poller's state of a meter, says the poller
// has asked it (or heard from it) since it started.
func asked(st poll.MeterStatus) bool {
	return st.Stats.Requests > 0 || !st.Stats.LastSeen.IsZero()
}

// withCarried completes the pollers' states ps with what was carried over
// a reload: a meter its poller has not asked yet keeps the state it had,
// until c.until; one that has not answered the poller yet keeps its last
// answer before.
func (c carried) withCarried(ps map[string]poll.MeterStatus, now time.Time) {
	for id, was := range c.status {
		st := ps[id]
		if !asked(st) {
			st.ID = id
			st.Online = was.Online && now.Before(c.until[id])
		}
		if st.Stats.LastSeen.IsZero() {
			st.Stats.LastSeen = was.Stats.LastSeen
		}
		ps[id] = st
	}
}
