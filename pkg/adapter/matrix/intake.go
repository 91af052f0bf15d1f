// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// syncer is the intake loop's state; only the intake goroutine touches it.
type syncer struct {
	a        *Adapter
	inbox    adapter.Inbox
	cls      classifier
	since    string
	direct   map[string]bool
	notified map[string]bool
	saves    adapter.SaveStreak // logs the first of consecutive failed saves
	// deliverBo spaces the retries of a batch the core could not store.
	deliverBo adapter.Backoff
}

func (a *Adapter) run(ctx context.Context, inbox adapter.Inbox) {
	s := &syncer{a: a, inbox: inbox, direct: map[string]bool{}, notified: map[string]bool{},
		cls:       classifier{platform: a.Name, requireMention: a.conf.RequireMention},
		deliverBo: a.backoff}
	adapter.Reconnect{Life: a.Life, Log: a.Log, Metrics: a.Metrics,
		Backoff: a.backoff}.
		Run(ctx, s.connect)
}

// restore loads the saved position of the account userID.
func (s *syncer) restore(userID string) {
	s.a.state.cleanTemp()
	saved, err := s.a.state.load()
	log := s.a.Log.WithField("file", s.a.state.where())
	switch {
	case err != nil:
		log.WithError(err).Warn("matrix: ignoring an unreadable saved sync position; starting from now")
	case saved == nil:
		log.Debug("matrix: no saved sync position; starting from now")
	case saved.UserID != userID:
		log.WithField("saved_user", saved.UserID).Warn("matrix: saved sync position belongs to another account; starting from now")
	default:
		s.since = saved.Since
		for _, r := range saved.Direct {
			s.direct[r] = true
		}
		for _, r := range saved.Notified {
			s.notified[r] = true
		}
		log.Info("matrix: resuming from the saved sync position")
	}
}

// connect is one attempt of the reconnect loop: whoami once, then /sync
// until a call fails.
func (s *syncer) connect(ctx context.Context) adapter.Attempt {
	a := s.a
	if s.cls.userID == "" {
		cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
		user, err := a.api.whoami(cctx)
		cancel()
		if err != nil {
			return attempt("whoami", err, false)
		}
		cctx, cancel = context.WithTimeout(ctx, a.conf.RequestTimeout)
		name, err := a.api.displayName(cctx, user)
		cancel()
		if err != nil {
			a.Log.WithError(err).Debug("matrix: no display name; room mentions must use the user id")
		}
		s.cls.userID, s.cls.displayName = user, name
		a.Log.WithField("user", user).Info("matrix: access token accepted")
		s.restore(user)
	}
	healthy := false
	for {
		timeout := a.conf.PollTimeout
		if !healthy || s.since == "" {
			// Answer at once: the first call shows the connection works,
			// and the initial sync only fixes the starting position.
			timeout = 0
		}
		cctx, cancel := context.WithTimeout(ctx, timeout+a.conf.RequestTimeout)
		resp, err := a.api.sync(cctx, s.since, timeout)
		cancel()
		if err != nil {
			return attempt("sync", err, healthy)
		}
		if !healthy {
			healthy = true
			a.Life.Report(adapter.Status{Phase: adapter.PhaseConnected})
		}
		if err := s.handle(ctx, resp); err != nil {
			if ctx.Err() != nil {
				return adapter.Attempt{Err: err, Healthy: true}
			}
			// The connection is fine: stay connected, and ask again from
			// the unchanged since token after a backoff.
			d := s.deliverBo.Next()
			entry := a.Log.WithError(err).WithField("retry_in", d.Round(time.Millisecond).String())
			if errors.Is(err, adapter.ErrStopping) {
				entry.Info("matrix: herald is stopping; batch left unacknowledged for the next instance")
			} else {
				entry.Error("matrix: batch not stored; not acknowledging it, syncing it again")
			}
			if !adapter.Sleep(ctx, d) {
				return adapter.Attempt{Err: err, Healthy: true}
			}
			continue
		}
		s.deliverBo.Reset()
	}
}

// attempt classifies a failed call for the reconnect loop.
func attempt(op string, err error, healthy bool) adapter.Attempt {
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae.unauthorized() || ae.Errcode == "M_USER_DEACTIVATED":
			return adapter.Attempt{Err: fmt.Errorf("matrix: %s: %w: %w (log in again for a new access token)", op, adapter.ErrUnauthorized, ae)}
		case ae.Status == http.StatusTooManyRequests || ae.Errcode == "M_LIMIT_EXCEEDED":
			return adapter.Attempt{Err: fmt.Errorf("matrix: %s: %w: %w", op, adapter.ErrRateLimited, ae), Healthy: healthy, Delay: ae.RetryAfter}
		}
	}
	return adapter.Attempt{Err: fmt.Errorf("matrix: %s: %w", op, err), Healthy: healthy}
}

// handle stores one /sync batch, then saves next_batch: the
// acknowledgement. It returns an error, and saves nothing, when an event
// could not be stored or an invite not answered: the next /sync, from the
// old position, returns the batch again.
func (s *syncer) handle(ctx context.Context, resp *syncResponse) error {
	initial := s.since == ""
	for _, room := range keys(resp.Rooms.Invite) {
		r := resp.Rooms.Invite[room]
		if err := s.invite(ctx, room, &r); err != nil {
			return err
		}
	}
	for _, room := range keys(resp.Rooms.Join) {
		r := resp.Rooms.Join[room]
		if err := s.room(ctx, room, &r, initial); err != nil {
			return err
		}
	}
	s.since = resp.NextBatch
	s.save()
	return nil
}

func (s *syncer) save() {
	err := s.a.state.save(&savedState{Version: stateVersion, UserID: s.cls.userID, Since: s.since,
		Direct: keys(s.direct), Notified: keys(s.notified)})
	s.saves.Done(s.a.Log.WithField("file", s.a.state.where()), err, "matrix", "the sync position", "a restart fetches stored events again (the store drops them)")
}

// invite joins a room the bot was invited to by a listed user, and
// declines the others.
func (s *syncer) invite(ctx context.Context, room string, r *invitedRoom) error {
	from, direct := inviter(r, s.cls.userID)
	log := s.a.Log.WithFields(logrus.Fields{"room": room, "inviter": from})
	cctx, cancel := context.WithTimeout(ctx, s.a.conf.RequestTimeout)
	defer cancel()
	if !s.a.invites[from] {
		s.a.Metrics.Rejected(reasonInvite)
		log.Warn("matrix: declining an invite from a user not in join_invites_from")
		if err := s.a.api.leave(cctx, room); err != nil {
			log.WithError(err).Info("matrix: declining the invite failed; it stays pending")
		}
		return nil
	}
	err := s.a.api.join(cctx, room)
	var ae *apiError
	switch {
	case err == nil:
		if direct {
			s.direct[room] = true
		}
		log.Info("matrix: joined on invite")
		return nil
	case errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests && !ae.unauthorized():
		log.WithError(err).Warn("matrix: cannot join the room the bot was invited to; skipping the invite")
		return nil
	}
	return fmt.Errorf("matrix: join %s: %w", room, err)
}

// room handles the events of one joined room.
func (s *syncer) room(ctx context.Context, room string, r *joinedRoom, initial bool) error {
	if n := r.Summary.JoinedMembers; n != nil {
		if *n <= 2 {
			s.direct[room] = true
		} else {
			delete(s.direct, room)
		}
	}
	for _, raw := range r.State.Events {
		var ev event
		if json.Unmarshal(raw, &ev) == nil && ev.Type == "m.room.encryption" {
			s.encrypted(ctx, room)
		}
	}
	if r.Timeline.Limited && !initial {
		s.a.Log.WithField("room", room).Warn("matrix: the room had more new events than one sync returns; the oldest were not fetched")
	}
	for _, raw := range r.Timeline.Events {
		var ev event
		if err := json.Unmarshal(raw, &ev); err != nil {
			s.skip(reasonMalformed, room, "", err.Error())
			continue
		}
		switch ev.Type {
		case "m.room.encryption":
			s.encrypted(ctx, room)
			continue
		case "m.room.encrypted":
			if !initial {
				s.skip(reasonEncrypted, room, ev.EventID, "encrypted event; herald cannot decrypt")
			}
			s.encrypted(ctx, room)
			continue
		case "m.room.message", "m.sticker":
		default:
			continue
		}
		if initial {
			// Messages sent before herald's first sync are history, not
			// requests: the starting position is now.
			continue
		}
		msg, reason := s.cls.inbound(room, &ev, s.direct[room], s.a.now())
		if msg == nil {
			s.skip(reason, room, ev.EventID, "")
			continue
		}
		if err := msg.Validate(); err != nil {
			s.skip(reasonInvalid, room, ev.EventID, err.Error())
			continue
		}
		err := s.inbox.Deliver(ctx, msg)
		switch {
		case err == nil:
		case errors.Is(err, message.ErrInvalid):
			s.skip(reasonInvalid, room, ev.EventID, err.Error())
		default:
			return fmt.Errorf("matrix: storing event %s: %w", ev.EventID, err)
		}
	}
	return nil
}

// encrypted tells an encrypted room, once, that herald cannot read it.
// The transaction id is derived from the room, so a repeat after a restart
// is deduplicated by the homeserver. A failure is retried at the room's
// next encrypted event.
func (s *syncer) encrypted(ctx context.Context, room string) {
	if s.notified[room] {
		return
	}
	sum := sha256.Sum256([]byte(room))
	txn := "herald-encrypted-" + hex.EncodeToString(sum[:12])
	cctx, cancel := context.WithTimeout(ctx, s.a.conf.RequestTimeout)
	defer cancel()
	content := map[string]any{"msgtype": "m.notice", "body": s.a.conf.EncryptedNotice, "m.mentions": map[string]any{}}
	if _, err := s.a.api.send(cctx, room, txn, content); err != nil {
		s.a.Log.WithError(err).WithField("room", room).Warn("matrix: cannot tell an encrypted room that herald cannot read it")
		return
	}
	s.notified[room] = true
	s.a.Log.WithField("room", room).Warn("matrix: room is encrypted; herald cannot read it and said so in the room")
}

func (s *syncer) skip(reason, room, id, detail string) {
	s.a.Metrics.Rejected(reason)
	level := logrus.DebugLevel
	if reason == reasonMalformed || reason == reasonInvalid || reason == reasonEncrypted {
		level = logrus.WarnLevel
	}
	s.a.Log.WithFields(logrus.Fields{"room": room, "event_id": id, "reason": reason}).Logf(level, "matrix: event skipped %s", detail)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
