// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/store"
)

// The reads and the import the daemon uses besides dispatch.Store, with
// the SQLite store's meaning.

// part reads the delivery state of the reply part with idempotency key
// token k: its id and state. ok is false when it is gone.
func (s *Store) part(ctx context.Context, k string) (id int64, p store.SendPart, ok bool, err error) {
	_, rev, ok, err := s.get(ctx, "out."+k)
	if err != nil || !ok {
		return 0, p, false, err
	}
	var st ostRec
	if _, _, err := s.getJSON(ctx, "ost."+num(int64(rev)), &st); err != nil {
		return 0, p, false, err
	}
	return int64(rev), store.SendPart{State: st.St, Attempts: st.Att, LastError: st.Err, PlatformMsgID: st.PMID}, true, nil
}

// SendStatus reads send id and its parts; store.ErrNoSend when it was
// never stored or its parts were pruned.
func (s *Store) SendStatus(ctx context.Context, id int64) (store.SendRecord, error) {
	rec := store.SendRecord{ID: id}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return rec, err
	}
	defer cancel()
	key, val, ok, err := s.bySeq(ctx, id)
	if err != nil {
		return rec, err
	}
	tk, isSend := strings.CutPrefix(key, "send.")
	if !ok || !isSend {
		return rec, store.ErrNoSend
	}
	var r sendRec
	if err := json.Unmarshal(val, &r); err != nil {
		return rec, fmt.Errorf("%w: send %d: %v", store.ErrCorrupt, id, err)
	}
	if rec.Key, err = untok(tk); err != nil {
		return rec, err
	}
	rec.Platform, rec.ChatID, rec.CreatedAt = r.Plat, r.Chat, time.UnixMilli(r.Created)
	for _, k := range r.Parts {
		_, p, ok, err := s.part(ctx, tok(k))
		if err != nil {
			return rec, err
		}
		if ok {
			rec.Parts = append(rec.Parts, p)
		}
	}
	if len(rec.Parts) == 0 {
		return rec, store.ErrNoSend
	}
	return rec, nil
}

// TurnStatus reads inbound message id and its reply parts, in order;
// store.ErrNoInbound when it was never stored or was pruned.
func (s *Store) TurnStatus(ctx context.Context, id int64) (store.TurnRecord, error) {
	rec := store.TurnRecord{ID: id}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return rec, err
	}
	defer cancel()
	_, in, st, _, ok, err := s.inbound(ctx, id)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, store.ErrNoInbound
	}
	rec.State = st
	if err := json.Unmarshal(in.Msg, &rec.Msg); err != nil {
		return rec, fmt.Errorf("%w: inbound %d: %v", store.ErrCorrupt, id, err)
	}
	es, err := s.scan(ctx, "ipart."+num(id)+".*")
	if err != nil {
		return rec, err
	}
	type idPart struct {
		id int64
		p  store.SendPart
	}
	var parts []idPart
	for _, e := range es {
		pid, p, ok, err := s.part(ctx, e.key[strings.LastIndexByte(e.key, '.')+1:])
		if err != nil {
			return rec, err
		}
		if ok {
			parts = append(parts, idPart{pid, p})
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].id < parts[j].id })
	for _, p := range parts {
		rec.Replies = append(rec.Replies, p.p)
	}
	return rec, nil
}

// RunsInFlight counts pending messages whose turn has a recorded run.
func (s *Store) RunsInFlight(ctx context.Context) (int, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	es, err := s.scan(ctx, "run.*")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		id, err := strconv.ParseInt(strings.TrimPrefix(e.key, "run."), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s", store.ErrCorrupt, e.key)
		}
		if _, _, st, _, ok, err := s.inbound(ctx, id); err != nil {
			return 0, err
		} else if ok && st == store.Pending {
			n++
		}
	}
	return n, nil
}

// TopUsers returns the n users with the most messages to the agent today
// (UTC), most first.
func (s *Store) TopUsers(ctx context.Context, n int) ([]store.UserUsage, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	now := s.now().UTC()
	day := ms(time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC))
	minute := ms(now.Truncate(time.Minute))
	es, err := s.scan(ctx, "bud.>")
	if err != nil {
		return nil, err
	}
	users := map[[2]string]*store.UserUsage{}
	for _, e := range es {
		parts := strings.Split(e.key, ".")
		if len(parts) != 4 {
			return nil, fmt.Errorf("%w: key %s", store.ErrCorrupt, e.key)
		}
		var r budRec
		if err := json.Unmarshal(e.val, &r); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		plat, err := untok(parts[1])
		if err != nil {
			return nil, err
		}
		user, err := untok(parts[2])
		if err != nil {
			return nil, err
		}
		u := users[[2]string{plat, user}]
		if u == nil {
			u = &store.UserUsage{Platform: plat, UserID: user}
			users[[2]string{plat, user}] = u
		}
		switch {
		case parts[3] == "day" && r.Start == day:
			u.Today = int(r.Count)
		case parts[3] == "minute" && r.Start == minute:
			u.ThisMinute = int(r.Count)
		}
	}
	var out []store.UserUsage
	for _, u := range users {
		if u.Today > 0 {
			out = append(out, *u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Today != b.Today {
			return a.Today > b.Today
		}
		if a.Platform != b.Platform {
			return a.Platform < b.Platform
		}
		return a.UserID < b.UserID
	})
	if len(out) > n {
		out = out[:max(n, 0)]
	}
	return out, nil
}

// ImportPairingFile approves the users listed in the store.PairingImport
// file at path, once: the file's SHA-256 is recorded in the same atomic
// write, so a second start imports nothing, and a user revoked since stays
// revoked. Users approved already keep their approval. A missing file is
// no error. It returns the users added and whether the file was new.
func (s *Store) ImportPairingFile(ctx context.Context, path string) (added int, imported bool, err error) {
	in, digest, found, err := store.ReadPairingImport(path)
	if err != nil || !found {
		return 0, false, err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, false, err
	}
	defer cancel()
	key := "pimport." + digest
	now := ms(s.now())
	for try := 0; try < maxTries; try++ {
		_, rev, done, err := s.get(ctx, key)
		if err != nil || done {
			return 0, false, err
		}
		var ops []op
		seen := map[string]bool{}
		for p, users := range in.Approved {
			for _, u := range users {
				k := "pok." + tok(p) + "." + tok(u)
				if seen[k] {
					continue
				}
				seen[k] = true
				_, urev, ok, err := s.get(ctx, k)
				if err != nil {
					return 0, false, err
				}
				if !ok {
					ops = append(ops, putAt(k, mustJSON(pokRec{At: now}), urev))
				}
			}
		}
		ops = append(ops, putAt(key, mustJSON(pokRec{At: now}), rev))
		if len(ops) > maxBatch {
			return 0, false, fmt.Errorf("jsstore: pairing import %s: %d users, more than %d at once", path, len(ops)-1, maxBatch-1)
		}
		_, err = s.commit(ctx, "", ops...)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		return len(ops) - 1, true, nil
	}
	return 0, false, fmt.Errorf("jsstore: pairing import: %w after %d tries", errConflict, maxTries)
}
