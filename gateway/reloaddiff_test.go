package gateway

import (
	"slices"
	"testing"

	"mallgrid/gateway/config"
)

// What a reload changed is named by section and id; the keys only a
// restart changes are named and put back to their running value, and are
// then no change of their section.
func TestConfigChanges(t *testing.T) {
	parse := func(src string) *config.Config {
		t.Helper()
		cfg, err := config.Parse("c.yaml", []byte(src), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	running := parse("site: {name: Mall}\nstorage: {path: /var/lib/mallgrid/a.db}\nhttp: {listen: '127.0.0.1:8080'}\nlog: {level: info}\n" +
		"buses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters:\n  - {id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}\n  - {id: M-2, bus: b, address: 2, model: kpm33b, tenant: T-2}\n" +
		"tenants:\n  - {id: T-1, name: One, tariff: std}\n  - {id: T-2, name: Two, tariff: std}\n" +
		"tariffs:\n  - {name: std, kind: flat, price: '1.00'}\n")
	next := parse("site: {name: Mall}\nstorage: {path: /var/lib/mallgrid/b.db}\nhttp: {listen: '127.0.0.1:9090'}\nlog: {level: debug}\n" +
		"buses: [{name: b, port: /dev/ttyUSB0}]\n" +
		"meters:\n  - {id: M-1, bus: b, address: 1, model: kpm33b, tenant: T-1}\n  - {id: M-3, bus: b, address: 3, model: kpm33b, tenant: T-3}\n" +
		"tenants:\n  - {id: T-1, name: One renamed, tariff: std}\n  - {id: T-3, name: Three, tariff: std}\n" +
		"tariffs:\n  - {name: std, kind: flat, price: '1.10'}\n" +
		"protected_hours: {weekends: true}\n")
	kept := keepRestartOnly(running, next)
	if want := []string{"storage.path", "http.listen", "log.level"}; !slices.Equal(kept, want) {
		t.Errorf("restart-only keys named %q; want %q", kept, want)
	}
	if next.Storage.Path != "/var/lib/mallgrid/a.db" || next.HTTP.Listen != "127.0.0.1:8080" || next.Log.Level != "info" {
		t.Errorf("restart-only keys not kept: storage.path %s, http.listen %s, log.level %s", next.Storage.Path, next.HTTP.Listen, next.Log.Level)
	}
	got := configChanges(running, next).String()
	want := "tenants added T-3; tenants changed T-1; tenants removed T-2; meters added M-3; meters removed M-2; tariffs changed std; protected_hours changed"
	if got != want {
		t.Errorf("changes:\n got %s\nwant %s", got, want)
	}
	if got := configChanges(running, running).String(); got != "no changes" {
		t.Errorf("a file reloaded unchanged: %s; want no changes", got)
	}
}
