// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every herald metric.
type Metrics struct {
	Registry *prometheus.Registry

	inbound         *prometheus.CounterVec
	rejected        *prometheus.CounterVec
	outbound        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	turnDuration    *prometheus.HistogramVec
	turnsInFlight   prometheus.Gauge
	queueDepth      prometheus.Gauge
	outboxPending   prometheus.Gauge
	reconnects      *prometheus.CounterVec
	adapterUp       *prometheus.GaugeVec
	drainDuration   prometheus.Histogram
	watchdogPings   prometheus.Counter
	reloads         *prometheus.CounterVec
	oldestPending   prometheus.Gauge
	agentRequests   *prometheus.CounterVec
	storeBatchSize  prometheus.Histogram
	storeStatements prometheus.Counter
	httpRefused     prometheus.Counter
	store           storeMetrics
	send            sendMetrics
	media           mediaMetrics
	cluster         clusterMetrics

	// ops: the metrics of the operations pack (ops.go).
	ops *ops
}

// New creates the metrics and registers them, with the Go runtime and
// process collectors, on a new registry.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_inbound_messages_total",
			Help: "Inbound messages handed to the core, by platform and result (stored, duplicate, refused, over_budget, invalid, stopping, unavailable, error).",
		}, []string{"platform", "result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_inbound_rejected_total",
			Help: "Inbound events rejected by an adapter before reaching the core, by platform and reason (bad_signature, malformed, too_large, ...).",
		}, []string{"platform", "reason"}),
		outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_outbound_messages_total",
			Help: "Reply parts whose delivery ended, by platform and result (delivered, failed, ambiguous).",
		}, []string{"platform", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_retries_total",
			Help: "Delivery attempts that failed and were scheduled again, by platform.",
		}, []string{"platform"}),
		turnDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_turn_duration_seconds",
			Help:    "Agent turn latency from dispatch to reply stored, by platform and result (done, failed, interrupted, dropped, cancelled).",
			Buckets: []float64{.005, .01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900},
		}, []string{"platform", "result"}),
		turnsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_turns_in_flight",
			Help: "Agent turns running now.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_queue_depth",
			Help: "Inbound messages waiting for their session's turn.",
		}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_outbox_pending",
			Help: "Reply parts not yet delivered.",
		}),
		oldestPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_oldest_pending_message_age_seconds",
			Help: "Age of the oldest inbound message whose turn has not finished (0 if none).",
		}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_adapter_reconnects_total",
			Help: "Reconnection attempts by platform.",
		}, []string{"platform"}),
		adapterUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_adapter_up",
			Help: "1 if the platform's intake is connected, else 0.",
		}, []string{"platform", "type"}),
		drainDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_drain_duration_seconds",
			Help:    "Time spent draining in-flight turns at stop.",
			Buckets: []float64{.01, .1, .5, 1, 2, 5, 10, 20, 30, 60, 120},
		}),
		watchdogPings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_watchdog_pings_total",
			Help: "WATCHDOG=1 keepalives sent to systemd.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_reloads_total",
			Help: "Configuration reloads by result (accepted, rejected).",
		}, []string{"result"}),
		agentRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_agent_turns_total",
			Help: "Agent calls by result (ok, error, timeout, cancelled).",
		}, []string{"result"}),
		storeBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_store_commit_batch_size",
			Help:    "Write requests committed per store transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		storeStatements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_store_statements_total",
			Help: "SQL statements run by committed store transactions, BEGIN and COMMIT included.",
		}),
		httpRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_http_connections_refused_total",
			Help: "Connections to the HTTP listener answered 503 and closed because listen.max_connections were open.",
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "herald_build_info",
		Help: "Always 1; the version label says which herald runs.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	reg.MustRegister(
		m.inbound, m.rejected, m.outbound, m.retries, m.turnDuration,
		m.turnsInFlight, m.queueDepth, m.outboxPending, m.oldestPending,
		m.reconnects, m.adapterUp, m.drainDuration, m.watchdogPings,
		m.reloads, m.agentRequests, m.storeBatchSize, m.storeStatements, m.httpRefused, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.store = newStoreMetrics(reg)
	m.send = newSendMetrics(reg)
	m.media = newMediaMetrics(reg)
	m.cluster = newClusterMetrics(reg)
	m.ops = newOps(reg, time.Now())
	return m
}

// Nop returns metrics registered on a private registry, for tests.
func Nop() *Metrics { return New("test") }

func (m *Metrics) Inbound(platform, result string) { m.inbound.WithLabelValues(platform, result).Inc() }
func (m *Metrics) Rejected(platform, reason string) {
	m.rejected.WithLabelValues(platform, reason).Inc()
}
func (m *Metrics) Outbound(platform, result string) {
	m.outbound.WithLabelValues(platform, result).Inc()
}
func (m *Metrics) DeliveryRetry(platform string) { m.retries.WithLabelValues(platform).Inc() }
func (m *Metrics) Turn(platform, result string, d time.Duration) {
	m.turnDuration.WithLabelValues(platform, result).Observe(d.Seconds())
}
func (m *Metrics) TurnsInFlight(n int)           { m.turnsInFlight.Set(float64(n)) }
func (m *Metrics) QueueDepth(n int)              { m.queueDepth.Set(float64(n)) }
func (m *Metrics) OutboxPending(n int)           { m.outboxPending.Set(float64(n)) }
func (m *Metrics) OldestPending(d time.Duration) { m.oldestPending.Set(d.Seconds()) }
func (m *Metrics) Reconnect(platform string)     { m.reconnects.WithLabelValues(platform).Inc() }
func (m *Metrics) AdapterUp(platform, typ string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.adapterUp.WithLabelValues(platform, typ).Set(v)
}
func (m *Metrics) Drain(d time.Duration)   { m.drainDuration.Observe(d.Seconds()) }
func (m *Metrics) WatchdogPing()           { m.watchdogPings.Inc() }
func (m *Metrics) Reload(result string)    { m.reloads.WithLabelValues(result).Inc() }
func (m *Metrics) AgentTurn(result string) { m.agentRequests.WithLabelValues(result).Inc() }

// StoreCommit records a store commit of requests write requests, which
// ran statements SQL statements.
func (m *Metrics) StoreCommit(requests, statements int) {
	m.storeBatchSize.Observe(float64(requests))
	m.storeStatements.Add(float64(statements))
}
func (m *Metrics) HTTPRefused() { m.httpRefused.Inc() }

// ForAdapter returns the adapter.Metrics view for one platform.
func (m *Metrics) ForAdapter(platform string) *AdapterMetrics {
	return &AdapterMetrics{m: m, platform: platform}
}

// AdapterMetrics implements adapter.Metrics for one platform.
type AdapterMetrics struct {
	m        *Metrics
	platform string
}

func (a *AdapterMetrics) Reconnect()             { a.m.Reconnect(a.platform) }
func (a *AdapterMetrics) Rejected(reason string) { a.m.Rejected(a.platform, reason) }
