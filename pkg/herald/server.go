// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
)

// swapHandler lets a reload replace the routes of a running server, and
// marks every response Connection: close once the stop has begun.
type swapHandler struct {
	h       atomic.Pointer[http.Handler]
	closing atomic.Bool
}

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		w.Header().Set("Connection", "close")
	}
	(*s.h.Load()).ServeHTTP(w, r)
}

// connTracker counts open connections through http.Server.ConnState, so the
// stop can wait until every accepted connection was answered and closed.
type connTracker struct {
	mu      sync.Mutex
	open    map[net.Conn]http.ConnState
	changed chan struct{}
}

func newConnTracker() *connTracker {
	return &connTracker{open: map[net.Conn]http.ConnState{}, changed: make(chan struct{}, 1)}
}

func (c *connTracker) track(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(c.open, conn)
	default:
		c.open[conn] = st
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *connTracker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open)
}

// waitZero waits until no connection is open or ctx ends.
func (c *connTracker) waitZero(ctx context.Context) bool {
	for c.count() > 0 {
		select {
		case <-c.changed:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// httpRoutes builds the public listener's handler: adapter routes (the
// webhook) and a health endpoint.
func httpRoutes(ps map[string]*platform, mediaHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	if mediaHandler != nil {
		mux.Handle("GET "+media.PathPrefix, mediaHandler)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	for _, p := range ps {
		rp, ok := p.adapter.(adapter.RouteProvider)
		if !ok {
			continue
		}
		for _, rt := range rp.Routes() {
			mux.Handle(rt.Pattern, rt.Handler)
		}
	}
	return mux
}

// serveHTTP serves the public listener.
func (d *daemon) serveHTTP(ps map[string]*platform) {
	d.httpMux = &swapHandler{}
	d.httpMux.set(httpRoutes(ps, d.mediaHandler()))
	d.conns = newConnTracker()
	lc := d.cfg.Listen
	d.httpSrv = &http.Server{
		Handler:           d.httpMux,
		ReadHeaderTimeout: lc.ReadHeaderTimeout,
		ReadTimeout:       lc.RequestTimeout,
		WriteTimeout:      lc.RequestTimeout + time.Second,
		IdleTimeout:       lc.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         d.conns.track,
		ErrorLog:          newStdLogger(d.log.WithField("component", "http")),
	}
	d.httpDone = make(chan struct{})
	go func() {
		defer close(d.httpDone)
		ln := newLimitListener(d.httpLn, lc.MaxConnections, d.metrics.HTTPRefused, d.log.WithField("component", "http"))
		if err := d.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			d.log.WithError(err).Error("HTTP listener failed")
		}
	}()
}

// stopHTTP stops the public listener without dropping a request. Go's
// Server.Shutdown alone drops requests read after shutdown began (net/http's
// conn.serve returns without answering once shuttingDown() is true; a
// minimal socket-activated server lost 1–3 requests per restart under
// load), and closing an idle keep-alive connection fails a
// request its client is sending on it at that moment. So: answer everything
// from now on with Connection: close; close our copy of the listener
// (systemd keeps its own, and the kernel queues new connections for the next
// instance); wait for Serve to return; give clients in the middle of a
// keep-alive exchange a moment to come back and be told to close; only
// then close the connections still idle; wait until every accepted
// connection was answered and closed; Shutdown.
func (d *daemon) stopHTTP(ctx context.Context) {
	const keepAliveGrace = 250 * time.Millisecond
	d.httpMux.closing.Store(true)
	d.httpLn.Close()
	select {
	case <-d.httpDone:
	case <-ctx.Done():
	}
	gctx, cancel := context.WithTimeout(ctx, keepAliveGrace)
	d.conns.waitZero(gctx)
	cancel()
	d.httpSrv.SetKeepAlivesEnabled(false) // closes what is still idle
	if !d.conns.waitZero(ctx) {
		d.log.WithField("connections", d.conns.count()).Warn("HTTP connections still open at the drain deadline; closing them")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d.httpSrv.Shutdown(sctx); err != nil {
		d.httpSrv.Close()
	}
}

// mediaHandler serves signed media links, nil without media.
func (d *daemon) mediaHandler() http.Handler {
	if d.media == nil {
		return nil
	}
	return d.media.Signer.Handler()
}
