// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/store"
)

// Pairing on the admin socket (root and herald's own user only):
// GET /v1/pairing lists pending codes and approved users, POST
// /v1/pairing/approve and /v1/pairing/revoke change them.

// PairingList is the answer to GET /v1/pairing.
type PairingList struct {
	Pending  []store.PairingRequest `json:"pending"`
	Approved []store.PairedUser     `json:"approved"`
}

// PairingApprove is the body of POST /v1/pairing/approve. Notify (default
// true) tells the user they can talk to the agent now.
type PairingApprove struct {
	Platform string `json:"platform"`
	Code     string `json:"code"`
	Notify   *bool  `json:"notify,omitempty"`
}

// PairingRevoke is the body of POST /v1/pairing/revoke.
type PairingRevoke struct {
	Platform string `json:"platform"`
	UserID   string `json:"user_id"`
}

// PairingResult is the answer to approve and revoke.
type PairingResult struct {
	Platform string `json:"platform"`
	UserID   string `json:"user_id"`
	ChatID   string `json:"chat_id,omitempty"`
	Notified bool   `json:"notified,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (d *daemon) pairingRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/pairing", func(w http.ResponseWriter, r *http.Request) {
		if !d.adminAuthorize(w, r) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		pending, approved, err := d.store.Pairings(ctx)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, PairingList{Pending: pending, Approved: approved})
	})
	mux.HandleFunc("POST /v1/pairing/approve", func(w http.ResponseWriter, r *http.Request) {
		var req PairingApprove
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
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("no pending pairing code %q on %s (codes expire after an hour)", req.Code, req.Platform), Field: "code"})
			return
		case errors.As(err, &fe):
			writeJSON(w, http.StatusBadRequest, apiError{Error: fe.Error(), Field: fe.Field})
			return
		case err != nil && pr.UserID == "":
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
			return
		}
		logging.Event(d.log, logging.MsgPairingApproved).WithFields(logrus.Fields{"platform": pr.Platform, "user": pr.UserID, "chat": pr.ChatID}).
			Infof("pairing approved: user %q may talk to the agent on %s", pr.UserID, pr.Platform)
		res := PairingResult{Platform: pr.Platform, UserID: pr.UserID, ChatID: pr.ChatID, Notified: notify && err == nil}
		if err != nil {
			res.Error = err.Error()
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /v1/pairing/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req PairingRevoke
		if !d.adminAuthorize(w, r) || !d.readJSON(w, r, &req) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		found, err := d.disp.RevokePairing(ctx, req.Platform, req.UserID)
		switch {
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
			return
		case !found:
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("user %q is not approved on %s", req.UserID, req.Platform), Field: "user_id"})
			return
		}
		logging.Event(d.log, logging.MsgPairingRevoked).WithFields(logrus.Fields{"platform": req.Platform, "user": req.UserID}).
			Infof("pairing revoked: user %q may no longer talk to the agent on %s", req.UserID, req.Platform)
		writeJSON(w, http.StatusOK, PairingResult{Platform: req.Platform, UserID: req.UserID})
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

// Pairings lists the pending codes and approved users of the running
// herald.
func (c *SendClient) Pairings(ctx context.Context) (PairingList, error) {
	var l PairingList
	_, err := c.do(ctx, http.MethodGet, "/v1/pairing", nil, &l)
	return l, err
}

// ApprovePairing approves code on platform.
func (c *SendClient) ApprovePairing(ctx context.Context, req PairingApprove) (PairingResult, error) {
	var res PairingResult
	_, err := c.do(ctx, http.MethodPost, "/v1/pairing/approve", req, &res)
	return res, err
}

// RevokePairing revokes user's approval on platform.
func (c *SendClient) RevokePairing(ctx context.Context, platform, user string) (PairingResult, error) {
	var res PairingResult
	_, err := c.do(ctx, http.MethodPost, "/v1/pairing/revoke", PairingRevoke{Platform: platform, UserID: user}, &res)
	return res, err
}

// PrintPairings writes l as two tables.
func PrintPairings(out io.Writer, l PairingList) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PENDING\tPLATFORM\tUSER\tNAME\tCHAT\tEXPIRES")
	for _, p := range l.Pending {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Code, p.Platform, p.UserID, p.UserName, p.ChatID, p.ExpiresAt.Local().Format(time.DateTime))
	}
	fmt.Fprintln(tw, "\nAPPROVED\tPLATFORM\tUSER\tSINCE")
	for _, u := range l.Approved {
		fmt.Fprintf(tw, "\t%s\t%s\t%s\n", u.Platform, u.UserID, u.ApprovedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
}
