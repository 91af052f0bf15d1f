// SPDX-License-Identifier: Apache-2.0

package metrics

import "github.com/prometheus/client_golang/prometheus"

// storeMetrics show whether the message store takes writes.
type storeMetrics struct {
	writable    prometheus.Gauge
	writeErrors *prometheus.CounterVec
}

func newStoreMetrics(reg prometheus.Registerer) storeMetrics {
	s := storeMetrics{
		writable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_store_writable",
			Help: "1 while the message store takes writes, 0 from a commit that failed for a storage reason (disk full, read-only, I/O error) until one succeeds.",
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_store_write_errors_total",
			Help: "Store commits that failed for a storage reason, by cause (disk full, disk quota exceeded, read-only file system, read-only database, I/O error, cannot open the database file).",
		}, []string{"cause"}),
	}
	s.writable.Set(1)
	reg.MustRegister(s.writable, s.writeErrors)
	return s
}

// StoreWritable sets herald_store_writable.
func (m *Metrics) StoreWritable(ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.store.writable.Set(v)
}

// StoreWriteError counts a store commit that failed for cause.
func (m *Metrics) StoreWriteError(cause string) { m.store.writeErrors.WithLabelValues(cause).Inc() }
