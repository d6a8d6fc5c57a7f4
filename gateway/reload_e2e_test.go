//go:build e2e

package gateway

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// TestE2E_ReloadKeepsPageLive: a dashboard open in a real browser through
// a reload stays logged in and live — its event stream, ended by the
// reload, reconnects by itself and shows the config_reloaded event
// without the page being loaded again.
func TestE2E_ReloadKeepsPageLive(t *testing.T) {
	mall := newTestMall(t, 2)
	var file atomic.Pointer[string]
	load := func() (*config.Config, error) { return config.Parse("reload.yaml", []byte(*file.Load()), nil) }
	src := reloadMallYAML(mall, false, "")
	file.Store(&src)
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{}, 1)
	base, _ := runGateway(t, Options{Config: cfg, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Reload: reload, Load: load})
	waitRead(t, base)

	p := browser(t, base)
	p.open("/")
	p.login("ann", "ann-pw")
	p.until("the dashboard", `location.pathname === "/" && !!document.querySelector("#events")`, 15*time.Second)
	js[bool](p, `window.notReloaded = true`) // gone if the tab loads a page again

	more := reloadMallYAML(mall, true, "")
	file.Store(&more)
	reload <- struct{}{}
	p.until("the config_reloaded event on the open dashboard",
		`window.notReloaded === true && document.querySelector("#events").textContent.includes("T-a2")`, 20*time.Second)
	if path := js[string](p, `location.pathname`); path != "/" {
		t.Errorf("after the reload the tab is at %s; want the dashboard still", path)
	}
}
