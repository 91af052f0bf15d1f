// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/store"
)

// POST /v1/turns runs an agent turn as if the user had written the text in
// the chat, and delivers the reply there; GET /v1/turns/{id} reports it
// like GET /v1/messages/{id}.

// TurnMessage is the body of POST /v1/turns.
type TurnMessage struct {
	Platform       string `json:"platform"`
	ChatID         string `json:"chat_id,omitempty"`
	ChatType       string `json:"chat_type,omitempty"`
	ThreadID       string `json:"thread_id,omitempty"`
	UserID         string `json:"user_id,omitempty"`
	Text           string `json:"text"`
	IdempotencyKey string `json:"idempotency_key"`
}

func (d *daemon) postTurn(w http.ResponseWriter, r *http.Request) {
	var m TurnMessage
	if !d.readJSON(w, r, &m) {
		d.metrics.TurnRequest("", "invalid")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	id, err := d.disp.Turn(ctx, dispatch.TurnRequest{
		Platform: m.Platform, ChatID: m.ChatID, ChatType: m.ChatType, ThreadID: m.ThreadID,
		UserID: m.UserID, Text: m.Text, IdempotencyKey: m.IdempotencyKey,
	})
	if !d.apiFailed(w, m.Platform, err, d.metrics.TurnRequest) {
		d.metrics.TurnRequest(m.Platform, "accepted")
		status := "pending"
		if rec, err := d.store.TurnStatus(ctx, id); err == nil {
			status = turnStatus(rec).Status
		}
		writeJSON(w, http.StatusAccepted, SendAccepted{ID: strconv.FormatInt(id, 10), Status: status})
	}
}

func (d *daemon) getTurn(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var rec store.TurnRecord
	if err == nil {
		rec, err = d.store.TurnStatus(ctx, id)
	}
	switch {
	case err == nil && strings.HasPrefix(rec.Msg.EventID, dispatch.TurnEventID("")):
		writeJSON(w, http.StatusOK, turnStatus(rec))
	case err == nil, errors.Is(err, store.ErrNoInbound), errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange):
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such turn (never started, or finished longer ago than store.retention)", Field: "id"})
	default:
		d.log.WithError(err).Error("turn API: cannot read a turn's status")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "cannot read the turn's status"})
	}
}

// turnStatus reports a turn like a sent message: pending until the turn
// ended and its reply is delivered; failed when the turn did not run to a
// reply (refused, dropped, interrupted, the agent failed) or the delivery
// gave up.
func turnStatus(rec store.TurnRecord) SendStatus {
	st := partsStatus(rec.Replies)
	st.ID, st.Platform, st.ChatID = strconv.FormatInt(rec.ID, 10), rec.Msg.Platform, rec.Msg.ChatID
	switch rec.State {
	case store.Pending:
		st.Status = "pending"
	case store.Done:
	case store.Failed:
		st.Status, st.Reason = "failed", "the agent could not answer; the user was told"
	default:
		st.Status, st.Reason = "failed", "the turn did not run: "+rec.State.String()
	}
	return st
}
