// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// budRec is a user's count in one period, at bud.<platform>.<user>.<period>.
type budRec struct {
	Start    int64 `json:"s"`
	Count    int64 `json:"c"`
	Notified int64 `json:"n,omitempty"`
}

// AddInboundBudget is AddInbound (state Pending) that also charges a new
// message to its sender's budget, in the same atomic write. Over the
// budget the message is stored Refused, without its text, and over says
// why.
func (s *Store) AddInboundBudget(ctx context.Context, sessionKey string, m *message.Inbound, b store.Budget) (id int64, dup bool, over *store.OverBudget, err error) {
	redacted := *m
	redacted.Text = ""
	rbody, err := json.Marshal(&redacted)
	if err != nil {
		return 0, false, nil, fmt.Errorf("jsstore: encode message: %w", err)
	}
	charge := func(ctx context.Context, rec *inRec) ([]op, *store.OverBudget, error) {
		now := s.now().UTC()
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		minute := now.Truncate(time.Minute)
		periods := []struct {
			name       string
			limit      int
			start, end time.Time
		}{{"day", b.PerDay, day, day.AddDate(0, 0, 1)}, {"minute", b.PerMinute, minute, minute.Add(time.Minute)}}
		var ops, charges []op
		var over *store.OverBudget
		for _, p := range periods {
			key := "bud." + tok(m.Platform) + "." + tok(m.SenderID) + "." + p.name
			var r budRec
			rev, _, err := s.getJSON(ctx, key, &r)
			if err != nil {
				return nil, nil, err
			}
			if r.Start != ms(p.start) {
				r = budRec{Start: ms(p.start)}
			}
			if p.limit > 0 && int(r.Count) >= p.limit && over == nil {
				over = &store.OverBudget{Period: p.name, Limit: p.limit, Until: p.end, Notify: r.Notified != ms(p.start)}
				r.Notified = ms(p.start)
				ops = append(ops, putAt(key, mustJSON(r), rev))
				continue
			}
			r.Count++
			charges = append(charges, putAt(key, mustJSON(r), rev))
		}
		if over != nil {
			rec.St, rec.Msg = store.Refused, rbody
			return ops, over, nil
		}
		return charges, nil, nil
	}
	return s.addInbound(ctx, sessionKey, m, store.Pending, charge)
}

// PruneBudgets deletes the counts of days before the current one.
func (s *Store) PruneBudgets(ctx context.Context) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	now := s.now().UTC()
	day := ms(time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC))
	es, err := s.scan(ctx, "bud.>")
	if err != nil {
		return err
	}
	var ops []op
	for _, e := range es {
		var r budRec
		if err := json.Unmarshal(e.val, &r); err != nil || r.Start < day {
			ops = append(ops, delAt(e.key, e.rev))
		}
	}
	return s.commitEach(ctx, ops)
}

// commitEach writes each op on its own; a revision conflict (the key
// changed since it was read) skips that op.
func (s *Store) commitEach(ctx context.Context, ops []op) error {
	for _, o := range ops {
		if _, err := s.commit(ctx, "", o); err != nil && !errors.Is(err, errConflict) {
			return err
		}
	}
	return nil
}

// Pairing: preq.<platform>.<user> is a pending request, pcode.<platform>.<code>
// reserves its code, pok.<platform>.<user> is an approved user.

type preqRec struct {
	Code    string `json:"c"`
	Chat    string `json:"h"`
	Name    string `json:"n,omitempty"`
	Created int64  `json:"t"`
	Expires int64  `json:"x"`
}

type pcodeRec struct {
	User string `json:"u"`
}

type pokRec struct {
	At int64 `json:"t"`
}

// RequestPairing returns the pending code of (platform, userID), or gives
// the user a new code (newCode makes one) valid for ttl. It drops the
// platform's expired requests first, and refuses a new one with
// store.ErrPairingFull when the platform has maxPending pending already.
func (s *Store) RequestPairing(ctx context.Context, req store.PairingRequest, ttl time.Duration, maxPending int, newCode func() string) (code string, created bool, err error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return "", false, err
	}
	defer cancel()
	plat := tok(req.Platform)
	ukey := "preq." + plat + "." + tok(req.UserID)
	for try := 0; try < maxTries; try++ {
		now := ms(s.now())
		es, err := s.scan(ctx, "preq."+plat+".*")
		if err != nil {
			return "", false, err
		}
		live := 0
		var expired []op
		for _, e := range es {
			var r preqRec
			if err := json.Unmarshal(e.val, &r); err != nil {
				return "", false, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
			}
			if r.Expires <= now {
				expired = append(expired, delAt(e.key, e.rev), del("pcode."+plat+"."+tok(r.Code)))
				continue
			}
			if e.key == ukey {
				return r.Code, false, nil
			}
			live++
		}
		for i := 0; i+1 < len(expired); i += 2 {
			if _, err := s.commit(ctx, "", expired[i], expired[i+1]); err != nil && !errors.Is(err, errConflict) {
				return "", false, err
			}
		}
		if live >= maxPending {
			return "", false, store.ErrPairingFull
		}
		_, urev, ok, err := s.get(ctx, ukey)
		if err != nil {
			return "", false, err
		}
		if ok {
			continue // another request came in meanwhile
		}
		for n := 0; n <= 10; n++ {
			c := newCode()
			ckey := "pcode." + plat + "." + tok(c)
			_, crev, taken, err := s.get(ctx, ckey)
			if err != nil {
				return "", false, err
			}
			if taken {
				continue
			}
			rec := preqRec{Code: c, Chat: req.ChatID, Name: req.UserName, Created: now, Expires: now + ttl.Milliseconds()}
			_, err = s.commit(ctx, "", putAt(ckey, mustJSON(pcodeRec{User: req.UserID}), crev), putAt(ukey, mustJSON(rec), urev))
			if errors.Is(err, errConflict) {
				break // re-read: the user's request or the code came in meanwhile
			}
			if err != nil {
				return "", false, err
			}
			return c, true, nil
		}
	}
	return "", false, errors.New("jsstore: add pairing request: no free code")
}

// ApprovePairing approves the pending, unexpired request with code on
// platform: the user is paired and the request removed, atomically.
func (s *Store) ApprovePairing(ctx context.Context, platform, code string) (store.PairingRequest, error) {
	r := store.PairingRequest{Platform: platform, Code: code}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return r, err
	}
	defer cancel()
	plat := tok(platform)
	ckey := "pcode." + plat + "." + tok(code)
	for try := 0; try < maxTries; try++ {
		var c pcodeRec
		crev, ok, err := s.getJSON(ctx, ckey, &c)
		if err != nil {
			return r, err
		}
		if !ok {
			return r, store.ErrNoPairingCode
		}
		ukey := "preq." + plat + "." + tok(c.User)
		var q preqRec
		urev, ok, err := s.getJSON(ctx, ukey, &q)
		if err != nil {
			return r, err
		}
		now := ms(s.now())
		if !ok || q.Code != code || q.Expires <= now {
			return r, store.ErrNoPairingCode
		}
		_, err = s.commit(ctx, "", delAt(ckey, crev), delAt(ukey, urev),
			put("pok."+plat+"."+tok(c.User), mustJSON(pokRec{At: now})))
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return r, err
		}
		r.UserID, r.UserName, r.ChatID = c.User, q.Name, q.Chat
		r.CreatedAt, r.ExpiresAt = time.UnixMilli(q.Created), time.UnixMilli(q.Expires)
		return r, nil
	}
	return r, fmt.Errorf("jsstore: approve pairing: %w after %d tries", errConflict, maxTries)
}

// RevokePairing removes the approval of (platform, userID), and any
// pending request of the user. It reports whether the user was approved.
func (s *Store) RevokePairing(ctx context.Context, platform, userID string) (bool, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	plat, user := tok(platform), tok(userID)
	_, _, found, err := s.get(ctx, "pok."+plat+"."+user)
	if err != nil {
		return false, err
	}
	ops := []op{del("pok." + plat + "." + user), del("preq." + plat + "." + user)}
	var q preqRec
	if _, ok, err := s.getJSON(ctx, "preq."+plat+"."+user, &q); err != nil {
		return false, err
	} else if ok {
		ops = append(ops, del("pcode."+plat+"."+tok(q.Code)))
	}
	if _, err := s.commit(ctx, "", ops...); err != nil {
		return false, err
	}
	return found, nil
}

// Pairings lists the pending, unexpired requests and the approved users,
// by platform and time.
func (s *Store) Pairings(ctx context.Context) ([]store.PairingRequest, []store.PairedUser, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	now := ms(s.now())
	es, err := s.scan(ctx, "preq.>")
	if err != nil {
		return nil, nil, err
	}
	// In creation order first, so that requests of the same time keep it.
	sort.Slice(es, func(i, j int) bool { return es[i].rev < es[j].rev })
	var reqs []store.PairingRequest
	for _, e := range es {
		plat, user, err := twoTokens(e.key)
		if err != nil {
			return nil, nil, err
		}
		var q preqRec
		if err := json.Unmarshal(e.val, &q); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		if q.Expires <= now {
			continue
		}
		reqs = append(reqs, store.PairingRequest{Platform: plat, UserID: user, UserName: q.Name, ChatID: q.Chat, Code: q.Code,
			CreatedAt: time.UnixMilli(q.Created), ExpiresAt: time.UnixMilli(q.Expires)})
	}
	sort.SliceStable(reqs, func(i, j int) bool {
		if reqs[i].Platform != reqs[j].Platform {
			return reqs[i].Platform < reqs[j].Platform
		}
		return reqs[i].CreatedAt.Before(reqs[j].CreatedAt)
	})
	es, err = s.scan(ctx, "pok.>")
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].rev < es[j].rev })
	var users []store.PairedUser
	for _, e := range es {
		plat, user, err := twoTokens(e.key)
		if err != nil {
			return nil, nil, err
		}
		var p pokRec
		if err := json.Unmarshal(e.val, &p); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		users = append(users, store.PairedUser{Platform: plat, UserID: user, ApprovedAt: time.UnixMilli(p.At)})
	}
	sort.SliceStable(users, func(i, j int) bool {
		if users[i].Platform != users[j].Platform {
			return users[i].Platform < users[j].Platform
		}
		return users[i].ApprovedAt.Before(users[j].ApprovedAt)
	})
	return reqs, users, nil
}

// twoTokens decodes the two tokens after the kind of key kind.<a>.<b>.
func twoTokens(key string) (string, string, error) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 {
		return "", "", fmt.Errorf("%w: key %s", store.ErrCorrupt, key)
	}
	a, err := untok(parts[1])
	if err != nil {
		return "", "", err
	}
	b, err := untok(parts[2])
	return a, b, err
}
