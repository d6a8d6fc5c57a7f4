//go:build e2e

package gateway

import (
	"strings"
	"testing"
	"time"
)

// TestE2E_UplinkPanel: the dashboard says the uplink is connected, and
// when the group's broker stops the open page turns to disconnected
// without a reload (the status event), while the site goes on.
func TestE2E_UplinkPanel(t *testing.T) {
	addr := freeAddr(t)
	stopBroker := mallBroker(t, addr)
	mall := e2eMall(t, 1, uplinkYAML("tcp://"+addr, ""))
	base, _ := mall.start(t)
	p := browser(t, base)
	p.open("/")
	p.login("vic", "vic-pw")
	p.until("the uplink connected", `(() => { const e = document.querySelector("#uplink"); return !!e && e.textContent.startsWith("Uplink: connected"); })()`, 15*time.Second)
	if c := js[string](p, `document.querySelector("#uplink").className`); c != "uplink" {
		t.Errorf("connected: class %q; want uplink alone", c)
	}
	js[bool](p, `(window.__notReloaded = true)`) // gone if the page is loaded again
	stopBroker()
	p.until("the uplink disconnected", `(() => { const e = document.querySelector("#uplink"); return !!e && e.textContent.startsWith("Uplink: disconnected for "); })()`, 15*time.Second)
	if !js[bool](p, `window.__notReloaded === true`) {
		t.Error("the page was reloaded; want the line changed live")
	}
	if c := js[string](p, `document.querySelector("#uplink").className`); !strings.Contains(c, "down") || strings.Contains(c, "bad") {
		t.Errorf("disconnected a moment: class %q; want down, not highlighted (nothing waits 10 minutes)", c)
	}
}
