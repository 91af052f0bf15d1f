// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves the registry at /metrics (GET and HEAD) and 404
// for everything else: the metrics listener is reachable over TCP, so it
// exposes nothing the admin socket keeps local (status, reload).
func metricsHandler(reg *prometheus.Registry) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A scrape storm queues at most this many in parallel; the rest get
		// 503 at once.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// obtainMetricsListener takes the "metrics" socket systemd passed
// (herald-metrics.socket), or binds listen.metrics if set. Without either
// there is no metrics listener, and d.metricsLn stays nil.
func (d *daemon) obtainMetricsListener() error {
	if !d.acts.Has("metrics") && d.cfg.Listen.Metrics == "" {
		return nil
	}
	ln, _, err := d.acts.Listen("metrics", "tcp", d.cfg.Listen.Metrics)
	if err != nil {
		return err
	}
	d.metricsLn = ln
	return nil
}

// serveMetrics serves the metrics listener, if there is one.
func (d *daemon) serveMetrics() {
	if d.metricsLn == nil {
		return
	}
	d.metricsSrv = &http.Server{
		Handler:           metricsHandler(d.metrics.Registry),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          newStdLogger(d.log.WithField("component", "metrics")),
	}
	d.metricsDone = make(chan struct{})
	go func() {
		defer close(d.metricsDone)
		if err := d.metricsSrv.Serve(d.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			d.log.WithError(err).Error("metrics listener failed")
		}
	}()
}

// stopMetrics stops the metrics listener: a scrape in progress gets a
// moment to finish, then connections are closed. systemd keeps the socket
// open, so scrapes during a restart wait in its backlog.
func (d *daemon) stopMetrics() {
	if d.metricsSrv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := d.metricsSrv.Shutdown(ctx); err != nil {
		d.metricsSrv.Close()
	}
	<-d.metricsDone
}

// metricsAddr is the metrics listener's address for the ready log line, ""
// if there is none.
func (d *daemon) metricsAddr() string {
	if d.metricsLn == nil {
		return ""
	}
	return d.metricsLn.Addr().String()
}
