package mqttlink

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// slogger bridges mochi-mqtt's slog lines into the gateway's zerolog log,
// one level down: the broker's info lines (a client connected…) are
// debug detail for the gateway.
func slogger(log zerolog.Logger) *slog.Logger {
	return slog.New(&zerologHandler{log: log.With().Str("component", "mqtt").Logger()})
}

type zerologHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
	group string
}

func (h *zerologHandler) level(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	default:
		return zerolog.DebugLevel
	}
}

func (h *zerologHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.level(l) >= h.log.GetLevel() && h.level(l) >= zerolog.GlobalLevel()
}

func (h *zerologHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.log.WithLevel(h.level(r.Level))
	add := func(a slog.Attr) bool {
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		ev = ev.Interface(key, a.Value.Resolve().Any())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	ev.Msg(r.Message)
	return nil
}

func (h *zerologHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *zerologHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}
