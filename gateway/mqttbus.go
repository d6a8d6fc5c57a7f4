package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/drivers/compere"
	"mallgrid/drivers/meter"
	"mallgrid/gateway/config"
	"mallgrid/gateway/health"
	"mallgrid/gateway/live"
	"mallgrid/gateway/mqttlink"
	"mallgrid/gateway/mqttmeters"
	"mallgrid/gateway/pipeline"
)

// runMQTTBus serves a compere-mqtt bus until ctx ends: its link (the
// embedded broker, or a client of the mall's) and the bus that turns its
// meters' messages into readings and drives their relays, with the same
// pipeline, enforcement and health tracking as a Modbus bus. A link that
// cannot start (its port taken) is retried with a capped backoff, as a
// serial port that cannot be opened is.
//
// A client whose link to the mall's broker has been down for downAfter has
// its bus reported down, as a serial port that fails is, until the link is
// back: its meters' silence would tell only three upload intervals later.
//
// The bus's messages, ticks and commits are beats of sv's loop, and so is
// each retry; the loop ends with runMQTTBus.
func runMQTTBus(ctx context.Context, cfg *config.Config, b config.Bus, pipe *pipeline.Pipeline, lv *live.Picture, watch *health.Tracker,
	log zerolog.Logger, now func() time.Time, downAfter time.Duration, sv busWatch) {
	defer sv.loop.Done()
	blog := log.With().Str("bus", b.Name).Logger()
	retry := time.Second
	for {
		meters, ids := mqttMeters(cfg, b, lv, blog)
		err := serveMQTTBus(ctx, cfg, b, meters, ids, cycleSink{pipe: pipe, lv: lv, health: watch, hold: sv.hold}, lv, watch, log, now, downAfter,
			sv.loop.Beat)
		if ctx.Err() != nil {
			return
		}
		watch.PortFailed(b.Name, err)
		blog.Debug().Err(err).Str("retry_in", retry.String()).Msg("cannot start the mqtt link")
		sv.loop.Beat() // retrying is progress, at most a minute apart
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, time.Minute)
	}
}

// mqttMeters are bus b's meters, each with its relay state as the picture
// knows it now (the last reading stored, or a command confirmed since).
func mqttMeters(cfg *config.Config, b config.Bus, lv *live.Picture, blog zerolog.Logger) (meters []mqttmeters.Meter, ids []string) {
	for _, m := range cfg.MetersOn(b.Name) {
		model, ok := compere.ModelByName(m.Model)
		if !ok { // config validation makes this unreachable
			blog.Error().Str("meter", m.ID).Str("model", m.Model).Msg("meter skipped: not a Compere MQTT model")
			continue
		}
		relay := meter.RelayUnknown
		switch lv.Relay(m.ID) {
		case meter.RelayClosed.String():
			relay = meter.RelayClosed
		case meter.RelayOpen.String():
			relay = meter.RelayOpen
		}
		meters = append(meters, mqttmeters.Meter{ID: m.ID, Device: m.DeviceID, Model: model, Output: m.Output(), Relay: relay})
		ids = append(ids, m.DeviceID)
	}
	return meters, ids
}

// serveMQTTBus runs the link and the bus until ctx ends (nil) or the link
// stops with an error.
func serveMQTTBus(ctx context.Context, cfg *config.Config, b config.Bus, meters []mqttmeters.Meter, ids []string, sink cycleSink,
	lv *live.Picture, watch *health.Tracker, log zerolog.Logger, now func() time.Time, downAfter time.Duration, progress func()) error {
	link, err := mqttlink.New(b, ids, log)
	if err != nil {
		return err
	}
	bus, err := mqttmeters.New(mqttmeters.Config{Bus: b.Name, Location: cfg.Location, Now: now, Log: log, Progress: progress}, link, meters, sink)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // deferred first, so it runs after stop: both goroutines end with runCtx
	defer stop()
	linkErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		linkErr <- link.Run(runCtx)
	}()
	go func() {
		defer wg.Done()
		if err := bus.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error().Str("bus", b.Name).Err(err).Msg("bus stopped")
		}
	}()
	lv.SetScheduler(b.Name, bus)
	// The bus is up once the broker listens (embedded) or the client is
	// connected, or has had 5 s to connect: a mall's broker that is down is
	// told by its meters' silence, as a dead converter's are.
	up := time.NewTicker(50 * time.Millisecond)
	defer up.Stop()
	var (
		opened   bool
		deadline = time.Now().Add(5 * time.Second)
		lost     time.Time // since when a client's link has been down; zero while up
		reported bool      // the loss has been reported
	)
	for {
		select {
		case err := <-linkErr:
			if err == nil {
				err = errors.New("the mqtt link stopped")
			}
			return err
		case <-ctx.Done():
			return nil
		case <-up.C:
			connected := link.Connected()
			if !opened {
				if connected || time.Now().After(deadline) {
					watch.PortOpened(b.Name)
					opened = true
				}
				continue
			}
			switch {
			case b.Embedded():
			case connected && reported:
				watch.PortOpened(b.Name)
				lost, reported = time.Time{}, false
			case connected:
				lost = time.Time{}
			case lost.IsZero():
				lost = time.Now()
			case !reported && time.Since(lost) >= downAfter:
				watch.PortFailed(b.Name, fmt.Errorf("not connected to the broker %s for %s", b.Broker, downAfter))
				reported = true
			}
		}
	}
}
