// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// AdapterStates are the values of herald_adapter_state's state label: the
// adapter phases (pkg/adapter), a fixed set.
var AdapterStates = []string{"starting", "connected", "reconnecting", "fatal", "stopped", "standby"}

// ops holds the metrics the operations pack (alerts, dashboard) needs
// beyond the core ones: platform state as an enum, the start time, withheld
// watchdog pings, the age of the oldest undelivered reply, and the size of
// the store and its file system.
type ops struct {
	adapterState         *prometheus.GaugeVec
	startTime            prometheus.Gauge
	watchdogChecksFailed prometheus.Counter
	oldestReply          prometheus.Gauge
	lastReloadOK         prometheus.Gauge
	store                *storeCollector
}

func newOps(reg *prometheus.Registry, now time.Time) *ops {
	o := &ops{
		adapterState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_adapter_state",
			Help: "1 for the platform's current state (starting, connected, reconnecting, fatal, stopped, standby), 0 for the others. fatal: an error retrying cannot fix, most often rejected credentials. standby: cluster mode, another node receives for the platform.",
		}, []string{"platform", "type", "state"}),
		startTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_start_time_seconds",
			Help: "When this herald process started, in seconds since the Unix epoch (changes at every restart).",
		}),
		watchdogChecksFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_watchdog_checks_failed_total",
			Help: "Liveness checks that failed or overran, so that a WATCHDOG=1 keepalive was withheld (a watchdog near-miss; systemd aborts herald when this lasts WatchdogSec).",
		}),
		oldestReply: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_oldest_pending_reply_age_seconds",
			Help: "Age of the oldest reply part not yet delivered (0 if none).",
		}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_config_last_reload_successful",
			Help: "0 after a configuration reload was rejected (herald runs on the previous configuration and the file on disk would not start), 1 at start and after an accepted reload.",
		}),
		store: newStoreCollector(),
	}
	o.startTime.Set(float64(now.UnixNano()) / 1e9)
	o.lastReloadOK.Set(1)
	reg.MustRegister(o.adapterState, o.startTime, o.watchdogChecksFailed, o.oldestReply, o.lastReloadOK, o.store)
	return o
}

// AdapterState marks state as the platform's current one. An unknown state
// is recorded as is; callers pass the adapter phases.
func (m *Metrics) AdapterState(platform, typ, state string) {
	for _, s := range AdapterStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.ops.adapterState.WithLabelValues(platform, typ, s).Set(v)
	}
}

// ForgetAdapter removes a platform's state series (a reload removed it).
func (m *Metrics) ForgetAdapter(platform, typ string) {
	for _, s := range AdapterStates {
		m.ops.adapterState.DeleteLabelValues(platform, typ, s)
	}
}

// LastReload records whether the latest reload was accepted, in
// herald_config_last_reload_successful.
func (m *Metrics) LastReload(accepted bool) {
	v := 0.0
	if accepted {
		v = 1
	}
	m.ops.lastReloadOK.Set(v)
}

// WatchdogCheckFailed counts a withheld keepalive.
func (m *Metrics) WatchdogCheckFailed() { m.ops.watchdogChecksFailed.Inc() }

// OldestPendingReply sets the age of the oldest undelivered reply part.
func (m *Metrics) OldestPendingReply(d time.Duration) { m.ops.oldestReply.Set(d.Seconds()) }

// WatchStore makes every scrape report the size of the SQLite store at path
// (with its -wal and -shm files) and the space of the file system holding
// it. Before it is called those metrics are absent.
func (m *Metrics) WatchStore(path string) { m.ops.store.path.Store(&path) }

// storeCollector reads the store's size and its file system's space at
// scrape time (one stat per file and one statfs: cheap).
type storeCollector struct {
	path                 atomic.Pointer[string]
	size, avail, fsTotal *prometheus.Desc
}

func newStoreCollector() *storeCollector {
	return &storeCollector{
		size: prometheus.NewDesc("herald_store_size_bytes",
			"Size of the message store on disk: the SQLite database with its -wal and -shm files.", nil, nil),
		avail: prometheus.NewDesc("herald_store_filesystem_avail_bytes",
			"Bytes available to herald on the file system holding the message store.", nil, nil),
		fsTotal: prometheus.NewDesc("herald_store_filesystem_size_bytes",
			"Size of the file system holding the message store.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.avail
	ch <- c.fsTotal
}

func (c *storeCollector) descTypes() map[*prometheus.Desc]string {
	return map[*prometheus.Desc]string{c.size: "gauge", c.avail: "gauge", c.fsTotal: "gauge"}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.path.Load()
	if p == nil {
		return
	}
	var size int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(*p + suffix); err == nil {
			size += fi.Size()
		}
	}
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(size))
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(*p), &fs); err == nil {
		ch <- prometheus.MustNewConstMetric(c.avail, prometheus.GaugeValue, float64(fs.Bavail)*float64(fs.Bsize))
		ch <- prometheus.MustNewConstMetric(c.fsTotal, prometheus.GaugeValue, float64(fs.Blocks)*float64(fs.Bsize))
	}
}
