package mqttmeters

import (
	"context"
	"time"

	"mallgrid/drivers/compere"
)

// maxUpkeep bounds the upkeep commands in flight at once: after a start,
// 2,000 meters' first messages would otherwise send 2,000 at once. A meter
// whose turn does not come is tried again at its next message.
const maxUpkeep = 16

// upkeep sets st's upload intervals once a run and its clock when it is
// off (at most once an hour) or a day old, on a goroutine of its own: the
// reply comes through the loop that calls this. h is the message just
// received from st, whose clock is judged.
func (b *Bus) upkeep(ctx context.Context, st *meterState, h compere.Header, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st.upkeeping || b.inFlight >= maxUpkeep {
		return
	}
	var job func(context.Context) error
	switch {
	case !st.upload && now.Sub(st.uploadTry) >= clockEvery/4:
		st.uploadTry = now
		job = func(ctx context.Context) error { return b.setUpload(ctx, st) }
	case b.clockDue(st, h, now):
		st.clockTry = now
		job = func(ctx context.Context) error { return b.setClock(ctx, st) }
	default:
		return
	}
	st.upkeeping = true
	b.inFlight++
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		err := job(ctx)
		b.mu.Lock()
		st.upkeeping = false
		b.inFlight--
		b.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			b.note(st, "upkeep", err)
		}
	}()
}

// clockDue reports whether st's clock is to be set: it is off by more than
// ClockSlack (or cannot be right) and was not set within the hour, or it
// was last set a day ago. b.mu held.
func (b *Bus) clockDue(st *meterState, h compere.Header, now time.Time) bool {
	if now.Sub(st.clockTry) < clockEvery {
		return false
	}
	off := h.ClockErr != nil || h.Clock.IsZero()
	if !off {
		d := now.Sub(h.Clock)
		off = d > ClockSlack || d < -ClockSlack
	}
	return off || now.Sub(st.clockSet) >= clockDaily
}

// setUpload sets st's real-time and then its counters' upload interval,
// each confirmed by the meter.
func (b *Bus) setUpload(ctx context.Context, st *meterState) error {
	for _, l := range []struct {
		level compere.Level
		every time.Duration
		what  string
	}{
		{compere.LevelRealTime, b.cfg.Upload, "real-time upload interval"},
		{compere.LevelEnergy, b.cfg.EnergyUpload, "energy upload interval"},
	} {
		err := b.confirm(ctx, st, l.what, func(oprid string) (compere.Command, error) {
			return compere.SetUploadInterval(st.Device, l.level, l.every, oprid)
		})
		if err != nil {
			return err
		}
	}
	b.mu.Lock()
	st.upload = true
	b.mu.Unlock()
	return nil
}

func (b *Bus) setClock(ctx context.Context, st *meterState) error {
	now := b.cfg.Now()
	err := b.confirm(ctx, st, "clock", func(oprid string) (compere.Command, error) {
		return compere.SetTime(st.Device, now.In(b.cfg.Location), oprid)
	})
	if err == nil {
		b.mu.Lock()
		st.clockSet = now
		b.mu.Unlock()
		b.cfg.Log.Info().Str("bus", b.cfg.Bus).Str("meter", st.ID).Msg("meter clock set")
	}
	return err
}

// confirm sends st the command build makes under a new operation id and
// waits for the meter's reply: nil once it says done (01).
func (b *Bus) confirm(ctx context.Context, st *meterState, what string, build func(oprid string) (compere.Command, error)) error {
	oprid, err := compere.NewOprID(b.cfg.Rand)
	if err != nil {
		return err
	}
	cmd, err := build(oprid)
	if err != nil {
		return err
	}
	w := waiter{device: st.Device, ch: make(chan *compere.Reply, 1)}
	defer b.release([]string{oprid})
	r, err := b.send(ctx, w, cmd, oprid, b.cfg.RelayWait)
	if err != nil {
		return err
	}
	if !r.Done() {
		return &refused{what: what, code: r.Code, msg: r.Msg}
	}
	return nil
}

// refused is a meter's refusal of an upkeep command.
type refused struct{ what, code, msg string }

func (r *refused) Error() string {
	return "meter refused the " + r.what + " (code " + r.code + " " + r.msg + ")"
}
