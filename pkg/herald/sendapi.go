// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/store"
)

// The send API: POST /v1/messages stores a message in the outbox and
// answers 202 with its id; GET /v1/messages/{id} reports its delivery.
// POST /v1/turns (turnapi.go) runs an agent turn. The API is served on the admin socket (root and herald's own user only) and, with
// api.listen, on a TCP listener for callers with the bearer token.

// sendRoutes adds the send API's routes to mux. authorize decides who may
// call them; it writes the refusal itself.
func (d *daemon) sendRoutes(mux *http.ServeMux, authorize func(http.ResponseWriter, *http.Request) bool) {
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !authorize(w, r) {
				d.metrics.SendRequest("", "unauthorized")
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /v1/messages", guard(d.postMessage))
	mux.HandleFunc("GET /v1/messages/{id}", guard(d.getMessage))
	mux.HandleFunc("POST /v1/turns", guard(d.postTurn))
	mux.HandleFunc("GET /v1/turns/{id}", guard(d.getTurn))
}

// readJSON decodes a bounded request body into v, answering the error
// (413 past the bound, 400 otherwise) when it fails.
func (d *daemon) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, d.cfg.API.MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, adminapi.Error{Error: fmt.Sprintf("request body larger than api.max_body_bytes (%d)", tooBig.Limit)})
			return false
		}
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: "request body: " + err.Error()})
		return false
	}
	return true
}

func (d *daemon) postMessage(w http.ResponseWriter, r *http.Request) {
	var m adminapi.SendMessage
	if !d.readJSON(w, r, &m) {
		d.metrics.SendRequest("", "invalid")
		return
	}
	req := dispatch.SendRequest{
		Platform: m.Platform, ChatID: m.ChatID, ThreadID: m.ThreadID, Text: m.Text, IdempotencyKey: m.IdempotencyKey,
	}
	for i, f := range m.Media {
		if (f.URL == "") == (f.Path == "") {
			d.metrics.SendRequest(m.Platform, "invalid")
			writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: fmt.Sprintf("media[%d]: give either url or path", i), Field: "media"})
			return
		}
		req.Media = append(req.Media, dispatch.SendMedia{Source: f.URL + f.Path, Caption: f.Caption})
	}
	id, dup, err := d.disp.Send(r.Context(), req)
	if d.apiFailed(w, m.Platform, err, d.metrics.SendRequest) {
		return
	}
	result := "accepted"
	if dup {
		result = "duplicate"
	}
	d.metrics.SendRequest(m.Platform, result)
	status := "pending"
	if dup {
		if rec, err := d.store.SendStatus(r.Context(), id); err == nil {
			status = sendStatus(rec).Status
		}
	}
	writeJSON(w, http.StatusAccepted, adminapi.SendAccepted{ID: strconv.FormatInt(id, 10), Status: status, Duplicate: dup})
}

// apiFailed answers err of the dispatcher, if any, counting it with count,
// and reports whether it did: 400 naming the field of a request that can
// never succeed, 503 while herald stops or the store fails.
func (d *daemon) apiFailed(w http.ResponseWriter, platform string, err error, count func(platform, result string)) bool {
	var fe *dispatch.FieldError
	switch {
	case err == nil:
		return false
	case errors.As(err, &fe):
		count(platform, "invalid")
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: fe.Error(), Field: fe.Field})
	case errors.Is(err, dispatch.ErrNotAccepting):
		count(platform, "unavailable")
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, adminapi.Error{Error: "herald is stopping; send again with the same idempotency_key"})
	default:
		count(platform, "error")
		d.log.WithError(err).WithField("platform", platform).Error("API: cannot store a message")
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, adminapi.Error{Error: "cannot store the message; send again with the same idempotency_key"})
	}
	return true
}

func (d *daemon) getMessage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeJSON(w, http.StatusNotFound, adminapi.Error{Error: "no such message", Field: "id"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	rec, err := d.store.SendStatus(ctx, id)
	switch {
	case errors.Is(err, store.ErrNoSend):
		writeJSON(w, http.StatusNotFound, adminapi.Error{Error: "no such message (never sent, or finished longer ago than store.retention)", Field: "id"})
	case err != nil:
		d.log.WithError(err).Error("send API: cannot read a message's status")
		writeJSON(w, http.StatusServiceUnavailable, adminapi.Error{Error: "cannot read the message's status"})
	default:
		writeJSON(w, http.StatusOK, sendStatus(rec))
	}
}

// sendStatus summarises the parts of a send.
func sendStatus(rec store.SendRecord) adminapi.SendStatus {
	st := partsStatus(rec.Parts)
	st.ID, st.Platform, st.ChatID = strconv.FormatInt(rec.ID, 10), rec.Platform, rec.ChatID
	return st
}

// partsStatus summarises delivery parts: pending while any part is, else
// failed if the delivery gave up on any, else sent.
func partsStatus(parts []store.SendPart) adminapi.SendStatus {
	st := adminapi.SendStatus{Status: "sent", Parts: len(parts)}
	failed, pending := "", false
	for _, p := range parts {
		st.Attempts = max(st.Attempts, p.Attempts)
		switch p.State {
		case store.OutboxPending:
			pending = true
			if p.LastError != "" && st.Reason == "" {
				st.Reason = p.LastError
			}
		case store.OutboxFailed:
			if failed == "" {
				failed = p.LastError
			}
		case store.OutboxDelivered:
			st.PlatformMessageIDs = append(st.PlatformMessageIDs, p.PlatformMsgID)
		}
	}
	switch {
	case pending:
		st.Status = "pending"
	case failed != "":
		st.Status, st.Reason = "failed", failed
	}
	return st
}

// adminAuthorize lets root and herald's own user call the send API on the
// admin socket.
func (d *daemon) adminAuthorize(w http.ResponseWriter, r *http.Request) bool {
	if d.peerMayControl(r) {
		return true
	}
	writeJSON(w, http.StatusForbidden, adminapi.Error{Error: "the send API on the admin socket is allowed for root and herald's own user only"})
	return false
}

// bearerAuthorize checks the bearer token in constant time and answers
// 401 without detail.
func bearerAuthorize(token []byte) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), token) == 1 {
			return true
		}
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
}

// apiServer is the TCP listener of the send API (api.listen).
type apiServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// prepareAPI reads the token and binds api.listen; nothing is served until
// serveAPI. Without api.listen it returns nil. The exit code of an error is
// ExitConfig (unreadable token) or ExitListen.
func (d *daemon) prepareAPI() (*apiServer, error) {
	if d.cfg.API.Listen == "" {
		return nil, nil
	}
	tok, err := d.cfg.API.Token.Read()
	if err != nil {
		return nil, exitErr(ExitConfig, fmt.Errorf("%s: api.token: %w", d.cfg.File, err))
	}
	ln, err := net.Listen("tcp", d.cfg.API.Listen)
	if err != nil {
		return nil, exitErr(ExitListen, fmt.Errorf("api.listen: %w", err))
	}
	mux := http.NewServeMux()
	d.sendRoutes(mux, bearerAuthorize(tok.Bytes()))
	return &apiServer{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      45 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          newStdLogger(d.log.WithField("component", "api")),
		},
		done: make(chan struct{}),
	}, nil
}

// serveAPI serves the send API's TCP listener, if there is one.
func (d *daemon) serveAPI() {
	a := d.api
	if a == nil {
		return
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			d.log.WithError(err).Error("send API listener failed")
		}
	}()
	d.log.WithField("listen", a.ln.Addr().String()).Info("send API listening")
}

// stopAPI finishes the requests in progress within ctx, then closes the
// listener.
func (d *daemon) stopAPI(ctx context.Context) {
	a := d.api
	if a == nil {
		return
	}
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
	<-a.done
}

// closeAPI closes the listener of a send API that never served (a start
// that failed).
func (d *daemon) closeAPI() {
	if d.api != nil {
		d.api.ln.Close()
	}
}
