package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
)

// Until a runner serves compere-mqtt buses the daemon refuses to start with
// one rather than leave its meters silently unread.
func TestRun_RefusesCompereMQTTBus(t *testing.T) {
	yaml := "site: {name: M}\n" +
		"storage: {path: " + t.TempDir() + "/m.db}\n" +
		"buses: [{name: f3, type: compere-mqtt, listen: '127.0.0.1:0', username: kpm, " +
		"password_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8}]\n" +
		"meters: [{id: M-1, bus: f3, address: '33B1225950027', model: kpm33b, role: public}]\n"
	cfg, err := config.Parse("t.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	err = Run(context.Background(), Options{Config: cfg, Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "bus f3: type compere-mqtt is not yet served") {
		t.Fatalf("Run = %v; want the compere-mqtt bus refused", err)
	}
}
