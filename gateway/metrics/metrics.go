package metrics

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"mallgrid/store"
)

// Options are what New needs.
type Options struct {
	// DB is the open database whose figures a scrape reads (alarms,
	// outboxes, ledger); nil: none.
	DB *store.DB
	// Version is the gateway's, for mallgrid_build_info.
	Version string
	// Now is the clock of the uplink outbox's age; nil means time.Now.
	Now func() time.Time
	// Log gets the scrapes' errors (a database that cannot be read).
	Log zerolog.Logger
}

// Metrics is the gateway's registry and the counters it keeps for the
// life of the process. A nil *Metrics takes every observation and does
// nothing, so parts may be wired without one (tests, tools).
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	cycles  *prometheus.HistogramVec
	commits prometheus.Histogram
	// commitErrors counts the commits that failed: they leave commits
	// no sample, so a disk that refuses every one would show as no
	// commit at all.
	commitErrors prometheus.Counter
	relays       *prometheus.CounterVec
	scrape       *collector
}

// Relay commands' labels.
const (
	actionCut     = "cut"
	actionRestore = "restore"
	resultOK      = "ok"
	resultFailed  = "failed"
)

// New returns the process's metrics. Their ledger counters start from the
// last entry in o.DB now: a scrape reads only entries posted since.
func New(o Options) *Metrics {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		// A cycle is one pass over a bus: tens of milliseconds for a few
		// meters on Modbus TCP, a minute for sixty on a slow RS-485 line.
		cycles: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mallgrid_bus_cycle_seconds",
			Help:    "Time of a whole pass over a bus's meters (its polling cycle).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120},
		}, []string{"bus"}),
		// One bbolt transaction with an fsync: about a millisecond on
		// ext4, far more on an SD card.
		commits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mallgrid_pipeline_commit_seconds",
			Help:    "Time to commit a bus cycle's readings and charges in one database transaction.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mallgrid_pipeline_commit_errors_total",
			Help: "Bus cycles whose commit failed (a failing or full disk, a lost database): nothing of the cycle was stored.",
		}),
		relays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mallgrid_relay_commands_total",
			Help: "Relay commands sent by enforcement: action cut or restore, result ok or failed.",
		}, []string{"action", "result"}),
		scrape: newCollector(o.DB, now, o.Log),
	}
	// Every series of a counter from the start: rate() misses the first
	// increase of a series that appears with it.
	for _, a := range []string{actionCut, actionRestore} {
		for _, r := range []string{resultOK, resultFailed} {
			m.relays.WithLabelValues(a, r)
		}
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mallgrid_build_info",
		Help:        "The gateway's version, as a label; always 1.",
		ConstLabels: prometheus.Labels{"version": o.Version},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.cycles, m.commits, m.commitErrors, m.relays, m.scrape, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A figure the database cannot give leaves its family out and is
		// logged; the others are still served.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      logAdapter{o.Log},
		// promhttp_metric_handler_errors_total counts such scrapes.
		Registry: m.reg,
		// Scrapes are serialised by the collector's lock: a third waiting
		// scrape would only pile up.
		MaxRequestsInFlight: 2,
		Timeout:             10 * time.Second,
	}))
	return m
}

// Handler serves the registry in Prometheus's text (or negotiated)
// format. It does not check who asks: gateway/web does. A nil *Metrics
// has none (nil).
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return nil
	}
	return m.handler
}

// Gatherer is the registry, for tests and lint.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// CycleDone observes a whole pass over bus that took d.
func (m *Metrics) CycleDone(bus string, d time.Duration) {
	if m == nil {
		return
	}
	m.cycles.WithLabelValues(bus).Observe(d.Seconds())
}

// Committed observes a bus cycle's commit that took d.
func (m *Metrics) Committed(d time.Duration) {
	if m == nil {
		return
	}
	m.commits.Observe(d.Seconds())
}

// CommitFailed counts a bus cycle's commit that failed with err.
func (m *Metrics) CommitFailed(err error) {
	if m == nil {
		return
	}
	m.commitErrors.Inc()
}

// RelayCommand counts a relay command of enforcement: closed restores
// power (restore), else cuts it (cut); err nil is ok, else failed.
func (m *Metrics) RelayCommand(closed bool, err error) {
	if m == nil {
		return
	}
	action, result := actionCut, resultOK
	if closed {
		action = actionRestore
	}
	if err != nil {
		result = resultFailed
	}
	m.relays.WithLabelValues(action, result).Inc()
}

// Attach makes s what scrapes read, in place of any attached before
// (which is detached first), and returns the function that detaches it:
// call it once the generation's buses have stopped, so that their last
// counts are folded into the counters. Detaching a source no longer
// attached does nothing.
func (m *Metrics) Attach(s Sources) (detach func()) {
	if m == nil {
		return func() {}
	}
	return m.scrape.attach(s)
}

// logAdapter hands promhttp's errors to the gateway's log.
type logAdapter struct{ log zerolog.Logger }

func (l logAdapter) Println(v ...any) {
	l.log.Warn().Msg("metrics: " + fmt.Sprint(v...))
}
