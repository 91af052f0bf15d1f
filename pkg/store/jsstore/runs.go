// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/store"
)

// runRec is the backend run of inbound message <id>, at run.<id>.
type runRec struct {
	Run  string `json:"r"`
	Body []byte `json:"b"`
	At   int64  `json:"t"`
}

// rerunRec is the re-run attempt of inbound message <id>, at rerun.<id>.
type rerunRec struct {
	Attempt int `json:"n"`
}

// apprRec is a pending approval, at appr.<session>.<id>.
type apprRec struct {
	Run   string `json:"r"`
	Req   string `json:"q"`
	Asked int64  `json:"t"`
}

// mediaRec is the fetch outcome of an attachment, at mf.<id>.<index>.
type mediaRec struct {
	SHA   string `json:"h,omitempty"`
	Size  int64  `json:"s,omitempty"`
	MIME  string `json:"m,omitempty"`
	Error string `json:"e,omitempty"`
	At    int64  `json:"t"`
}

func approvalKey(sessionKey string, id int64) string {
	return "appr." + tok(sessionKey) + "." + num(id)
}

// simple runs a read-free write.
func (s *Store) simple(ctx context.Context, ops ...op) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.commit(ctx, "", ops...)
	return err
}

// SetRun records that the turn of inbound message id is carried by
// backend run runID, created with body. A later call replaces it.
func (s *Store) SetRun(ctx context.Context, id int64, runID string, body []byte) error {
	return s.simple(ctx, put("run."+num(id), mustJSON(runRec{Run: runID, Body: body, At: ms(time.Now())})))
}

// Run returns the backend run recorded for inbound message id.
func (s *Store) Run(ctx context.Context, id int64) (runID string, body []byte, ok bool, err error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return "", nil, false, err
	}
	defer cancel()
	var r runRec
	_, ok, err = s.getJSON(ctx, "run."+num(id), &r)
	if err != nil || !ok {
		return "", nil, false, err
	}
	return r.Run, r.Body, true, nil
}

// SetRerun records that the turn of inbound message id runs again as
// attempt, and forgets the run of the earlier attempt, atomically.
func (s *Store) SetRerun(ctx context.Context, id int64, attempt int) error {
	return s.simple(ctx, put("rerun."+num(id), mustJSON(rerunRec{Attempt: attempt})), del("run."+num(id)))
}

// Rerun returns the attempt recorded by SetRerun, 0 if none was.
func (s *Store) Rerun(ctx context.Context, id int64) (int, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	var r rerunRec
	_, _, err = s.getJSON(ctx, "rerun."+num(id), &r)
	return r.Attempt, err
}

// SetApproval records that the turn of inbound message a.InboundID waits
// for approval a, and returns when it was first asked: the same request
// recorded again keeps its original time. a.SessionKey must be the
// message's session key (the turn's end deletes the approval under it).
func (s *Store) SetApproval(ctx context.Context, a store.PendingApproval) (time.Time, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer cancel()
	key := approvalKey(a.SessionKey, a.InboundID)
	for try := 0; try < maxTries; try++ {
		var cur apprRec
		rev, ok, err := s.getJSON(ctx, key, &cur)
		if err != nil {
			return time.Time{}, err
		}
		rec := apprRec{Run: a.RunID, Req: a.RequestID, Asked: ms(a.AskedAt)}
		if ok && cur.Run == a.RunID && cur.Req == a.RequestID {
			rec.Asked = cur.Asked
		}
		_, err = s.commit(ctx, "", putAt(key, mustJSON(rec), rev))
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(rec.Asked), nil
	}
	return time.Time{}, fmt.Errorf("jsstore: set approval: %w after %d tries", errConflict, maxTries)
}

// Approval returns the pending approval of the session, if any (the
// latest asked when there are several).
func (s *Store) Approval(ctx context.Context, sessionKey string) (store.PendingApproval, bool, error) {
	a := store.PendingApproval{SessionKey: sessionKey}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return a, false, err
	}
	defer cancel()
	es, err := s.scan(ctx, "appr."+tok(sessionKey)+".*")
	if err != nil {
		return a, false, err
	}
	found := false
	for _, e := range es {
		var r apprRec
		if err := json.Unmarshal(e.val, &r); err != nil {
			return a, false, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		id, err := strconv.ParseInt(e.key[strings.LastIndexByte(e.key, '.')+1:], 10, 64)
		if err != nil {
			return a, false, fmt.Errorf("%w: %s", store.ErrCorrupt, e.key)
		}
		if !found || r.Asked > ms(a.AskedAt) {
			a.InboundID, a.RunID, a.RequestID, a.AskedAt = id, r.Run, r.Req, time.UnixMilli(r.Asked)
			found = true
		}
	}
	return a, found, nil
}

// DeleteApproval forgets the pending approval of inbound message id if it
// is request requestID (any request if requestID is "").
func (s *Store) DeleteApproval(ctx context.Context, id int64, requestID string) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	for try := 0; try < maxTries; try++ {
		_, rec, _, _, ok, err := s.inbound(ctx, id)
		if err != nil || !ok {
			return err
		}
		key := approvalKey(rec.SK, id)
		var cur apprRec
		rev, ok, err := s.getJSON(ctx, key, &cur)
		if err != nil || !ok || (requestID != "" && cur.Req != requestID) {
			return err
		}
		_, err = s.commit(ctx, "", delAt(key, rev))
		if errors.Is(err, errConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("jsstore: delete approval: %w after %d tries", errConflict, maxTries)
}

// RecordMediaFetch stores the outcome of one attachment's fetch; a second
// record for the same attachment replaces the first.
func (s *Store) RecordMediaFetch(ctx context.Context, inboundID int64, f store.MediaFetch) error {
	return s.simple(ctx, put("mf."+num(inboundID)+"."+strconv.Itoa(f.Index),
		mustJSON(mediaRec{SHA: f.SHA256, Size: f.Size, MIME: f.MIME, Error: f.Error, At: ms(f.At)})))
}

// MediaFetches returns the recorded fetch outcomes of inbound message
// inboundID by attachment index.
func (s *Store) MediaFetches(ctx context.Context, inboundID int64) (map[int]store.MediaFetch, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	es, err := s.scan(ctx, "mf."+num(inboundID)+".*")
	if err != nil {
		return nil, err
	}
	out := map[int]store.MediaFetch{}
	for _, e := range es {
		f, err := decodeMedia(e)
		if err != nil {
			return nil, err
		}
		out[f.Index] = f
	}
	return out, nil
}

func decodeMedia(e entry) (store.MediaFetch, error) {
	var r mediaRec
	if err := json.Unmarshal(e.val, &r); err != nil {
		return store.MediaFetch{}, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
	}
	idx, err := strconv.Atoi(e.key[strings.LastIndexByte(e.key, '.')+1:])
	if err != nil {
		return store.MediaFetch{}, fmt.Errorf("%w: %s", store.ErrCorrupt, e.key)
	}
	return store.MediaFetch{Index: idx, SHA256: r.SHA, Size: r.Size, MIME: r.MIME, Error: r.Error, At: time.UnixMilli(r.At)}, nil
}

// ReferencedMedia returns the SHA256 of every media file herald still
// needs: fetched attachments of stored messages, and the media of reply
// parts not yet delivered.
func (s *Store) ReferencedMedia(ctx context.Context) (map[string]bool, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	es, err := s.scan(ctx, "mf.>")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range es {
		f, err := decodeMedia(e)
		if err != nil {
			return nil, err
		}
		if f.SHA256 != "" {
			out[f.SHA256] = true
		}
	}
	pend, err := s.pendingOutbox(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range pend {
		if r.Msg.Media != nil && r.Msg.Media.SHA256 != "" {
			out[r.Msg.Media.SHA256] = true
		}
	}
	return out, nil
}
