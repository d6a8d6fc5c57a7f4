package demo

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"mallgrid/gateway/config"
)

// withQRSecret is env with a sticker secret made at random for this run
// (config.QRSecretVar), unless env gives one: the demo's stickers
// (uplink.qr) are signed, and no secret is ever written in a file or
// reused — a sticker printed from a demo verifies nowhere.
func withQRSecret(env []string) ([]string, error) {
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, config.QRSecretVar+"=") }) {
		return env, nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("make the demo's sticker secret: %w", err)
	}
	return append(slices.Clip(env), config.QRSecretVar+"="+base64.StdEncoding.EncodeToString(raw)), nil
}

// groupBroker stands in for the mall group's broker: an MQTT broker in
// process on a free loopback port, that takes the site's uplink (no one
// reads it: the status page says connected, and the outbox drains as a
// real link's does). It accepts any client: it listens on 127.0.0.1 only.
type groupBroker struct {
	server *mqtt.Server
	addr   string
}

// startGroupBroker starts the demo's group broker.
func startGroupBroker() (*groupBroker, error) {
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SysTopicResendInterval: 0})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	ln := listeners.NewTCP(listeners.Config{ID: "group", Address: "127.0.0.1:0"})
	if err := s.AddListener(ln); err != nil {
		return nil, fmt.Errorf("demo group broker: %w", err)
	}
	if err := s.Serve(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("demo group broker: %w", err)
	}
	return &groupBroker{server: s, addr: ln.Address()}, nil
}

// URL is the broker's address for uplink.broker.
func (g *groupBroker) URL() string { return "tcp://" + g.addr }

// Close stops the broker and disconnects its clients.
func (g *groupBroker) Close() error { return g.server.Close() }
