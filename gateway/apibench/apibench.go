package apibench

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/bench"
	"mallgrid/gateway/live"
	"mallgrid/gateway/web"
)

// Targets of issue 11 item 8.
const (
	TargetP99  = 50 * time.Millisecond
	TargetGzip = 200_000 // bytes
)

// token is the benchmark's bearer token (a viewer's).
const token = "bench-viewer"

// Rig is a served mall: the picture of Mall(n) behind a web server on a
// loopback TCP port.
type Rig struct {
	URL     string
	Picture *live.Picture
	client  *http.Client
	stop    func() error
}

// Start serves a mall of n meters until Close.
func Start(n int) (*Rig, error) {
	cfg, err := Mall(n)
	if err != nil {
		return nil, err
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := live.New(cfg, "bench", "", time.Now)
	Fill(p, cfg, at, rand.New(rand.NewPCG(1, 2)))
	sum := sha256.Sum256([]byte(token))
	srv, err := web.New(p, web.Options{Log: zerolog.Nop(), Listen: "127.0.0.1:0",
		Tokens: []web.Token{{Name: "bench", Role: web.RoleViewer, SHA256: hex.EncodeToString(sum[:])}}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return &Rig{
		URL: "http://" + ln.Addr().String(), Picture: p,
		// Compression asked for by hand: the transport then hands the
		// compressed body over as it came, to be counted.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}},
		stop:   func() error { cancel(); return <-done },
	}, nil
}

// Close stops the server.
func (r *Rig) Close() error { return r.stop() }

// Get fetches path as a browser does (gzip accepted) and returns the
// bytes on the wire and the decompressed size.
func (r *Rig) Get(path string) (wire, plain int, err error) {
	req, err := http.NewRequest("GET", r.URL+path, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		return 0, 0, fmt.Errorf("GET %s = %d, Content-Encoding %q", path, resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, zr)
	return len(body), int(n), err
}

// latency GETs path n times in turn and returns p50 and p99 and the last
// answer's sizes.
func (r *Rig) latency(ctx context.Context, path string, n int) (p50, p99 time.Duration, wire, plain int, err error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		if ctx.Err() != nil {
			return 0, 0, 0, 0, ctx.Err()
		}
		start := time.Now()
		if wire, plain, err = r.Get(path); err != nil {
			return 0, 0, 0, 0, err
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[(n-1)*50/100], ds[(n-1)*99/100], wire, plain, nil
}

// DeltaSize is the meter stream's message when every meter of the rig
// changed: its data's bytes, and gzipped as the stream sends it (one
// message through a compressor that has seen the previous ones).
func (r *Rig) DeltaSize(cfgMeters int) (plain, zipped int, err error) {
	_, seq := r.Picture.MetersSince(0)
	cfg, err := Mall(cfgMeters)
	if err != nil {
		return 0, 0, err
	}
	Change(r.Picture, cfg, time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC), rand.New(rand.NewPCG(3, 4)))
	changed, _ := r.Picture.MetersSince(seq)
	if len(changed) != cfgMeters {
		return 0, 0, fmt.Errorf("%d meters in the delta; want %d", len(changed), cfgMeters)
	}
	var data bytes.Buffer
	data.WriteByte('[')
	for i, m := range changed {
		if i > 0 {
			data.WriteByte(',')
		}
		data.Write(m.Encoded)
	}
	data.WriteByte(']')
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, 6)
	if _, err := zw.Write(data.Bytes()); err != nil {
		return 0, 0, err
	}
	if err := zw.Flush(); err != nil {
		return 0, 0, err
	}
	return data.Len(), z.Len(), nil
}

// Options tune Run.
type Options struct {
	Meters   int // 0: 2,000
	Requests int // per row; 0: 500
}

// Run measures the list and the stream and returns the table's rows.
func Run(ctx context.Context, o Options) ([]bench.Result, error) {
	if o.Meters <= 0 {
		o.Meters = 2000
	}
	if o.Requests <= 0 {
		o.Requests = 500
	}
	rg, err := Start(o.Meters)
	if err != nil {
		return nil, err
	}
	defer rg.Close()
	var out []bench.Result
	for _, row := range []struct{ name, path string }{
		{fmt.Sprintf("(f) GET /api/v1/meters, %d meters, gzip: p50 / p99", o.Meters), "/api/v1/meters"},
		{"(f) the same, a page of 100 sorted by power: p50 / p99", "/api/v1/meters?sort=-power&limit=100"},
	} {
		p50, p99, wire, plain, err := rg.latency(ctx, row.path, o.Requests)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", row.path, err)
		}
		out = append(out, bench.Result{Name: row.name, Measured: fmt.Sprintf("%.1f ms / %.1f ms", ms(p50), ms(p99)),
			Target: fmt.Sprintf("p99 ≤ %.0f ms", ms(TargetP99)), OK: p99 <= TargetP99,
			Detail: fmt.Sprintf("%d requests one after another", o.Requests)})
		out = append(out, bench.Result{Name: "(f)   its size gzipped (plain)", Measured: fmt.Sprintf("%.1f KB (%.1f KB)", kb(wire), kb(plain)),
			Target: fmt.Sprintf("≤ %.0f KB", kb(TargetGzip)), OK: wire <= TargetGzip})
	}
	plain, zipped, err := rg.DeltaSize(o.Meters)
	if err != nil {
		return nil, err
	}
	out = append(out, bench.Result{Name: fmt.Sprintf("(f) SSE meters message, all %d changed, gzipped (plain)", o.Meters),
		Measured: fmt.Sprintf("%.1f KB (%.1f KB)", kb(zipped), kb(plain)), Target: "recorded", OK: true,
		Detail: "at most one a second; with ?ids= only a page's rows"})
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func kb(n int) float64           { return float64(n) / 1000 }
