package uplink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"mallgrid/gateway/upfeed"
	"mallgrid/store"
)

// readBatch is how many messages a lane reads from the outbox at once.
const readBatch = 100

// backlogWindow is how much of the window of inflight messages the
// backlog may hold: half, so that live messages always find room (with a
// window of 1 the two lanes share it).
func backlogWindow(inflight int) int { return max(1, inflight/2) }

// publisher publishes the outbox over one connection: the backlog (seqs up
// to boundary, the head when the connection came up) at the configured
// rate, and the live messages (above it) at once.
type publisher struct {
	l        *Link
	pc       paho.Client
	acks     *acker
	boundary uint64
	// window holds a token per message awaiting its PUBACK; backWindow
	// those of the backlog's.
	window, backWindow chan struct{}
	fail               chan error // the first PUBACK missed or refused
	wg                 sync.WaitGroup
}

// run publishes until ctx ends or a publish fails, and returns the
// failure; it waits for every goroutine it started.
func (p *publisher) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lanes := make(chan error, 2)
	go func() { lanes <- p.lane(ctx, 0, true) }()
	go func() { lanes <- p.lane(ctx, p.boundary, false) }()
	var first error
	for running := 2; running > 0; {
		select {
		case err := <-lanes:
			running--
			if err != nil && !errors.Is(err, context.Canceled) && first == nil {
				first = err
				cancel()
			}
		case err := <-p.fail:
			if first == nil {
				first = err
			}
			cancel()
		}
	}
	p.wg.Wait()
	return first
}

// lane publishes the messages above after in seq order: the backlog's
// up to the boundary, at the rate, and then returns nil; the live lane's
// for as long as ctx lasts.
func (p *publisher) lane(ctx context.Context, after uint64, backlog bool) error {
	interval := time.Second / time.Duration(p.l.cfg.BacklogRate)
	began, next, sent := time.Now(), time.Now(), 0
	for {
		msgs, err := p.l.out.UplinkAfter(after, readBatch)
		if err != nil {
			return fmt.Errorf("read the outbox: %w", err)
		}
		if backlog {
			n := 0
			for n < len(msgs) && msgs[n].Seq <= p.boundary {
				n++
			}
			if n == 0 {
				if sent > 0 {
					p.l.log.Info().Int("messages", sent).Str("took", time.Since(began).Round(time.Millisecond).String()).
						Msg("uplink backlog published")
				}
				return nil
			}
			msgs = msgs[:n]
		}
		if len(msgs) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(p.l.t.poll):
			}
			continue
		}
		for _, m := range msgs {
			// The backlog waits for its turn before it takes a slot of
			// the window: holding one while it sleeps would keep the
			// live lane to the backlog's rate (with inflight 1, a
			// single slot).
			if backlog {
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(d):
					}
				}
			}
			if err := p.take(ctx, backlog); err != nil {
				return err
			}
			if backlog {
				next = later(next, time.Now()).Add(interval)
			}
			if err := p.publish(ctx, m, backlog); err != nil {
				return err
			}
			after = m.Seq
			sent++
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// take waits for room in the window (and the backlog's share of it).
func (p *publisher) take(ctx context.Context, backlog bool) error {
	if backlog {
		select {
		case p.backWindow <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case p.window <- struct{}{}:
		return nil
	case <-ctx.Done():
		if backlog {
			<-p.backWindow
		}
		return ctx.Err()
	}
}

// give returns what take took.
func (p *publisher) give(backlog bool) {
	<-p.window
	if backlog {
		<-p.backWindow
	}
}

// publish sends m and waits for its PUBACK beside the lane: acknowledged,
// m is queued for AckUplink; refused or late, the connection is given up.
// A message whose payload cannot be made is left in the outbox, logged:
// the watermark stays there, for the status to show.
func (p *publisher) publish(ctx context.Context, m store.UplinkMessage, backlog bool) error {
	payload, err := p.l.encode(p.l.cfg.SiteID, m)
	if err != nil {
		p.give(backlog)
		p.l.log.Error().Err(err).Uint64("seq", m.Seq).Str("kind", m.Kind).Msg("uplink message cannot be encoded; left in the outbox")
		return nil
	}
	tok := p.pc.Publish(upfeed.Topic(p.l.cfg.SiteID, m), 1, false, payload)
	p.l.published.Add(1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.give(backlog)
		t := time.NewTimer(p.l.t.publish)
		defer t.Stop()
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				p.failed(fmt.Errorf("publish seq %d: %w", m.Seq, err))
				return
			}
			p.l.acked.Add(1)
			p.acks.add(m.Seq)
		case <-t.C:
			p.failed(fmt.Errorf("publish seq %d: no PUBACK in %s", m.Seq, p.l.t.publish))
		case <-ctx.Done():
		}
	}()
	return nil
}

func (p *publisher) failed(err error) {
	select {
	case p.fail <- err:
	default:
	}
}

// acker writes the broker's acknowledgements to the outbox, many in one
// transaction: one fsync per PUBACK would cap the link at a few thousand
// messages a second and slow every other writer.
type acker struct {
	l       *Link
	mu      sync.Mutex
	pending []uint64
}

// add queues seq's acknowledgement; it never blocks.
func (a *acker) add(seq uint64) {
	a.mu.Lock()
	a.pending = append(a.pending, seq)
	a.mu.Unlock()
}

// run flushes every ackEvery until ctx ends.
func (a *acker) run(ctx context.Context) {
	t := time.NewTicker(a.l.t.ackEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.flush(); err != nil {
				a.l.log.Error().Err(err).Msg("uplink: acknowledgements not written; retried")
			}
		}
	}
}

// flush writes what is queued; on an error it keeps it for the next.
func (a *acker) flush() error {
	a.mu.Lock()
	seqs := a.pending
	a.pending = nil
	a.mu.Unlock()
	if len(seqs) == 0 {
		return nil
	}
	if err := a.l.out.AckUplink(seqs...); err != nil {
		a.mu.Lock()
		a.pending = append(seqs, a.pending...)
		a.mu.Unlock()
		return fmt.Errorf("ack %d uplink messages: %w", len(seqs), err)
	}
	a.l.lastAck.Store(a.l.now().UnixNano())
	return nil
}
