//go:build soak

package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
)

// TestSoakReload_Differential is TestReload_Differential's long form for
// make test-soak: 300 histories, each with about eight reloads.
func TestSoakReload_Differential(t *testing.T) {
	totals := map[string]int{}
	for seed := range 300 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			for k, v := range runReloadHistory(t, uint64(1000+seed)) {
				totals[k] += v
			}
		})
	}
	t.Logf("over 300 histories: %v", totals)
}

// TestSoakReload_HTTP reloads a gateway on simulated meters 200 times,
// adding and removing a meter, while four clients ask for the status and
// the meters without a pause: not one refused connection or 5xx, and the
// meters read at the end.
func TestSoakReload_HTTP(t *testing.T) {
	mall := newTestMall(t, 2)
	files := [2]string{reloadMallYAML(mall, false, ""), reloadMallYAML(mall, true, "")}
	var which atomic.Int32
	load := func() (*config.Config, error) { return config.Parse("reload.yaml", []byte(files[which.Load()%2]), nil) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	base, _ := runGateway(t, Options{Config: cfg, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Reload: reload, Load: load})
	waitFor(t, 15*time.Second, "every bus live", func() bool {
		var health web.HealthView
		return getJSON(t, base+"/healthz", &health) == http.StatusOK
	})
	var requests, failures atomic.Int64
	var first atomic.Pointer[string]
	loopCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 4)
	for i := range 4 {
		path := []string{"/api/v1/status", "/api/v1/meters"}[i%2]
		go func() {
			defer func() { done <- struct{}{} }()
			for loopCtx.Err() == nil {
				resp, err := viewerGet(base + path)
				requests.Add(1)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						err = fmt.Errorf("%s: %s", path, resp.Status)
					}
				}
				if err != nil {
					failures.Add(1)
					msg := err.Error()
					first.CompareAndSwap(nil, &msg)
				}
			}
		}()
	}
	began := time.Now()
	for i := range 200 {
		which.Store(int32(i + 1))
		reload <- struct{}{} // unbuffered: taken when the previous reload has ended
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(began)
	stop()
	for range 4 {
		<-done
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during 200 reloads; the first: %s", n, requests.Load(), *first.Load())
	}
	t.Logf("200 reloads in %v, %d requests answered", took, requests.Load())
	ended := time.Now()
	waitFor(t, 10*time.Second, "M-a1 read after the last reload", func() bool {
		var m web.MeterView
		return getJSON(t, base+"/api/v1/meters/M-a1", &m) == 200 && m.Online && m.ReadingTime != nil && m.ReadingTime.After(ended)
	})
}
