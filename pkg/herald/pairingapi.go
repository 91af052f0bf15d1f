// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/store"
)

// Pairing on the admin socket (root and herald's own user only):
// GET /v1/pairing lists pending codes and approved users, POST
// /v1/pairing/approve and /v1/pairing/revoke change them.

func (d *daemon) pairingRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/pairing", func(w http.ResponseWriter, r *http.Request) {
		if !d.adminAuthorize(w, r) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		pending, approved, err := d.store.Pairings(ctx)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, adminapi.Error{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, adminapi.PairingList{Pending: pending, Approved: approved})
	})
	mux.HandleFunc("POST /v1/pairing/approve", func(w http.ResponseWriter, r *http.Request) {
		var req adminapi.PairingApprove
		if !d.adminAuthorize(w, r) || !d.readJSON(w, r, &req) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		notify := req.Notify == nil || *req.Notify
		pr, err := d.disp.ApprovePairing(ctx, req.Platform, req.Code, notify)
		var fe *dispatch.FieldError
		switch {
		case errors.Is(err, store.ErrNoPairingCode):
			writeJSON(w, http.StatusNotFound, adminapi.Error{Error: fmt.Sprintf("no pending pairing code %q on %s (codes expire after an hour)", req.Code, req.Platform), Field: "code"})
			return
		case errors.As(err, &fe):
			writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: fe.Error(), Field: fe.Field})
			return
		case err != nil && pr.UserID == "":
			writeJSON(w, http.StatusServiceUnavailable, adminapi.Error{Error: err.Error()})
			return
		}
		logging.Event(d.log, logging.MsgPairingApproved).WithFields(logrus.Fields{"platform": pr.Platform, "user": pr.UserID, "chat": pr.ChatID}).
			Infof("pairing approved: user %q may talk to the agent on %s", pr.UserID, pr.Platform)
		res := adminapi.PairingResult{Platform: pr.Platform, UserID: pr.UserID, ChatID: pr.ChatID, Notified: notify && err == nil}
		if err != nil {
			res.Error = err.Error()
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /v1/pairing/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req adminapi.PairingRevoke
		if !d.adminAuthorize(w, r) || !d.readJSON(w, r, &req) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		found, err := d.disp.RevokePairing(ctx, req.Platform, req.UserID)
		switch {
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, adminapi.Error{Error: err.Error()})
			return
		case !found:
			writeJSON(w, http.StatusNotFound, adminapi.Error{Error: fmt.Sprintf("user %q is not approved on %s", req.UserID, req.Platform), Field: "user_id"})
			return
		}
		logging.Event(d.log, logging.MsgPairingRevoked).WithFields(logrus.Fields{"platform": req.Platform, "user": req.UserID}).
			Infof("pairing revoked: user %q may no longer talk to the agent on %s", req.UserID, req.Platform)
		writeJSON(w, http.StatusOK, adminapi.PairingResult{Platform: req.Platform, UserID: req.UserID})
	})
}

// warnPolicy logs what is doubtful about platform name's access policy.
func (d *daemon) warnPolicy(cfg *config.Config, name string, pc *config.Platform) {
	log := d.log.WithField("platform", name)
	if pc.AllowAll && cfg.File != "" {
		log.Warnf("platforms.%s.allow_all is deprecated: write dm_policy: open instead", name)
	}
	if pc.Policy() == "allowlist" && len(pc.AllowedUsers) == 0 {
		log.Warn("platform allows nobody: every message is refused until allowed_users is set (or dm_policy is pairing or open)")
	}
}
