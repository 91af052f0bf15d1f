// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/version"
)

type ctxKey int

const connKey ctxKey = 0

// serveAdmin serves the admin endpoint on its unix socket: health, readiness,
// metrics and status for anyone who can reach the socket; reload only for
// root and herald's own user (checked with SO_PEERCRED).
func (d *daemon) serveAdmin() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := d.alive(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		connected, total, detail := d.board.summary()
		if note := d.storeNote(); note != "" {
			http.Error(w, "not ready: "+note, http.StatusServiceUnavailable)
			return
		}
		if d.isStopping() || connected < total {
			msg := "not ready"
			if detail != "" {
				msg += ": " + detail
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.statusReport())
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if !d.peerMayControl(r) {
			http.Error(w, "reload is allowed for root and herald's own user only", http.StatusForbidden)
			return
		}
		req := reloadRequest{done: make(chan error, 1)}
		select {
		case d.reloads <- req:
		case <-d.stopping:
			http.Error(w, "herald is stopping", http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
		select {
		case err := <-req.done:
			if err != nil {
				writeJSON(w, http.StatusUnprocessableEntity, adminapi.ReloadAnswer{Error: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, adminapi.ReloadAnswer{OK: true, Status: d.statusLine()})
		case <-r.Context().Done():
		}
	})
	d.sendRoutes(mux, d.adminAuthorize)
	d.pairingRoutes(mux)
	d.adminSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey, c)
		},
		ErrorLog: newStdLogger(d.log.WithField("component", "admin")),
	}
	d.adminDone = make(chan struct{})
	go func() {
		defer close(d.adminDone)
		if err := d.adminSrv.Serve(d.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			d.log.WithError(err).Error("admin listener failed")
		}
	}()
}

func (d *daemon) stopAdmin() {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := d.adminSrv.Shutdown(ctx); err != nil {
		d.adminSrv.Close()
	}
	<-d.adminDone
}

// peerMayControl reports whether the client on the other end of the admin
// socket is root or runs as herald's user.
func (d *daemon) peerMayControl(r *http.Request) bool {
	c, ok := r.Context().Value(connKey).(net.Conn)
	if !ok {
		return false
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}

func (d *daemon) statusReport() adminapi.StatusReport {
	d.mu.Lock()
	cfgFile, lastReload := d.cfg.File, d.lastReloadErr
	d.mu.Unlock()
	if cfgFile == "" {
		cfgFile = "built-in default"
	}
	rep := adminapi.StatusReport{
		Version:         version.String(),
		PID:             os.Getpid(),
		StartedAt:       d.startedAt,
		Config:          cfgFile,
		State:           "running",
		StatusLine:      d.statusLine(),
		LastReloadError: lastReload,
		Store:           d.storeReport(),
		Users:           d.usersReport(),
		Cluster:         d.clusterReport(),
	}
	if d.isStopping() {
		rep.State = "stopping"
	}
	for name, st := range d.board.snapshot() {
		pr := adminapi.PlatformReport{Name: name, Type: st.Type, Phase: string(st.Status.Phase), Since: st.Since, Alarm: st.Status.Alarm}
		if st.Status.Phase == adapter.PhaseReconnecting {
			pr.RetryAt = st.Status.RetryAt
		}
		if st.Status.Err != nil {
			pr.Error = st.Status.Err.Error()
		}
		rep.Platforms = append(rep.Platforms, pr)
	}
	sort.Slice(rep.Platforms, func(i, j int) bool { return rep.Platforms[i].Name < rep.Platforms[j].Name })
	rep.AgentMode, rep.AgentNote = d.disp.AgentMode()
	ds := d.disp.Stats()
	rep.TurnsInFlight, rep.QueueDepth, rep.Sessions, rep.RepliesPending = ds.TurnsInFlight, ds.Queued, ds.Sessions, ds.RepliesPending
	if !ds.OldestQueued.IsZero() {
		rep.OldestPendingAge = time.Since(ds.OldestQueued).Seconds()
	}
	return rep
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
