package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mallgrid/gateway/config"
	"mallgrid/store"
)

// drainWait bounds how long a reload waits for the requests the old
// generation is answering (a report being built) before it stops it.
const drainWait = 10 * time.Second

// reload loads the configuration again and, when it is valid, replaces
// cur with a generation built from it; it returns the generation running
// afterwards. An invalid file changes nothing: every problem is logged
// with its FILE:LINE and cur keeps running; so does a valid one whose
// generation cannot be built (a file it names gone since it was checked).
// The error is for when no generation could be started at all (neither
// the new configuration's nor, again, the old one's: the database failed).
// A reload asked for as ctx ends is not done.
//
// The boundary is a restart's: cur stops as a clean shutdown stops (each
// bus finishes and commits its cycle), and the new generation loads the
// meters' baselines and accrued charges from the database as a start
// does. The energy between cur's last reading of a meter and the new
// generation's first is billed by the new generation, at its tariff — as
// a restart with the new file would bill it.
func (p *process) reload(ctx context.Context, cur *generation) (*generation, error) {
	sup := p.opts.Supervisor
	if p.opts.Load == nil || ctx.Err() != nil {
		return cur, nil
	}
	sup.Reloading()
	defer sup.Ready()
	// The reload is a watched loop of its own until it returns, with a beat
	// at each step: while cur stops, its buses and reconciler leave the
	// watch before the new generation's join it, and cur.stop also waits
	// for loops nobody watches (deliveries, the uplink, the pruner). A step
	// that never returned would leave the pings going with nothing polling.
	watch := sup.Loop("reload")
	defer watch.Done()
	log := p.log
	next, err := p.opts.Load()
	watch.Beat()
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, pr := range ps {
				log.Error().Msg("configuration reload refused: " + pr.Error())
			}
		} else {
			log.Error().Err(err).Msg("configuration reload refused")
		}
		log.Error().Msg("configuration not reloaded: the running configuration is kept")
		return cur, nil
	}
	for _, w := range next.Warnings {
		log.Warn().Msg("configuration warning: " + w.Error())
	}
	for _, k := range keepRestartOnly(cur.cfg, next) {
		log.Warn().Str("key", k).Msg("configuration: " + k + " changes only at a restart; the running value is kept")
	}
	changes := configChanges(cur.cfg, next)
	gen, err := p.build(next)
	watch.Beat()
	if err != nil {
		log.Error().Err(err).Msg("configuration not reloaded: the new configuration cannot start; the running configuration is kept")
		return cur, nil
	}

	began := time.Now() // the pause the web page and the buses see
	if !p.front.HoldContext(ctx, drainWait) {
		if ctx.Err() != nil {
			// Shutting down: cur stops with the rest, as without the reload.
			p.front.Set(cur.srv)
			return cur, nil
		}
		log.Warn().Str("waited", drainWait.String()).Msg("reload: requests still open on the old configuration")
	}
	watch.Beat()
	cur.stop()
	watch.Beat()
	p.setRoute(next)
	if err := p.launch(ctx, gen, cur); err != nil {
		watch.Beat()
		log.Error().Err(err).Msg("reload: the new configuration did not start; starting the old one again")
		p.setRoute(cur.cfg)
		old, err2 := p.build(cur.cfg)
		watch.Beat()
		if err2 == nil {
			err2 = p.launch(ctx, old, cur)
		}
		if err2 != nil {
			// Nothing serves: the requests held for the new Server are
			// answered rather than left waiting until the shutdown. The
			// reason, with the database's path, is for the log only.
			p.front.Refuse("the configuration could not be started again after a reload: the gateway is stopping (see its log)")
			return nil, fmt.Errorf("reload: %w; the old configuration did not start again: %w", err, err2)
		}
		// Said in the words the line before a reload's outcome is looked
		// for with (README: grep 'configuration \(not \)\?reloaded').
		log.Error().Msg("configuration not reloaded: the new configuration did not start; the running configuration was started again")
		return old, nil
	}
	watch.Beat()
	text := changes.String()
	ev := log.Info().Str("took", time.Since(began).Round(time.Millisecond).String())
	for _, c := range changes {
		if len(c.IDs) == 0 { // a section compared whole
			ev = ev.Bool(c.What+"_"+c.How, true)
			continue
		}
		ev = ev.Strs(c.What+"_"+c.How, c.IDs)
	}
	ev.Msg("configuration reloaded: " + text)
	stored, err := p.db.PostEvents(store.Event{Time: gen.now(), Kind: "config_reloaded",
		Text: "The configuration was reloaded: " + text + ".", Args: map[string]string{"changes": text}})
	if err != nil {
		log.Error().Err(err).Msg("store the config_reloaded event")
	} else {
		gen.events.Publish(stored)
	}
	return gen, nil
}
