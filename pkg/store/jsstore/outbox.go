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

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// outRec is the immutable record of a reply part, at out.<idempotency
// key>; the sequence that created it is its id.
type outRec struct {
	Inb     int64           `json:"i,omitempty"`
	SK      string          `json:"k"`
	Plat    string          `json:"p"`
	Msg     json.RawMessage `json:"m"`
	Created int64           `json:"c"`
}

// ostRec is the delivery state of reply part <id>, at ost.<id>, once a
// delivery attempt changed it.
type ostRec struct {
	St   store.OutboxState `json:"s"`
	Att  int               `json:"a,omitempty"`
	Next int64             `json:"n,omitempty"`
	Err  string            `json:"e,omitempty"`
	PMID string            `json:"p,omitempty"`
	Fin  int64             `json:"f,omitempty"`
}

// attRec marks a send attempt of unknown outcome, at att.<id>.
type attRec struct {
	At int64 `json:"t"`
}

// sendRec is a message given to the send API, at send.<key>; the
// sequence that created it is its id.
type sendRec struct {
	Plat    string   `json:"p"`
	Chat    string   `json:"c"`
	Created int64    `json:"t"`
	Parts   []string `json:"k"`
}

// outboxOps are the writes that add the reply parts whose idempotency key
// is not stored yet: two messages each (the record, then its pending
// mark), and for the parts of an inbound message a third, ipart.<id>.<key>,
// that lists them for TurnStatus. pos lists the indexes of the parts
// added, in order; the record of part pos[i] is message i*partOps(id).
// partOps is how many messages outboxOps writes per part.
func partOps(inboundID int64) int {
	if inboundID != 0 {
		return 3
	}
	return 2
}

func (s *Store) outboxOps(ctx context.Context, inboundID int64, sessionKey string, parts []message.Outbound, now int64) (ops []op, pos []int, err error) {
	seen := map[string]bool{}
	for i := range parts {
		k := tok(parts[i].IdempotencyKey)
		if seen[k] {
			continue
		}
		seen[k] = true
		_, rev, ok, err := s.get(ctx, "out."+k)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			continue
		}
		body, err := json.Marshal(&parts[i])
		if err != nil {
			return nil, nil, fmt.Errorf("jsstore: encode reply: %w", err)
		}
		ops = append(ops,
			putAt("out."+k, mustJSON(outRec{Inb: inboundID, SK: sessionKey, Plat: parts[i].Platform, Msg: body, Created: now}), rev),
			put("opend."+k, mustJSON(pendRec{At: now})))
		if inboundID != 0 {
			ops = append(ops, put("ipart."+num(inboundID)+"."+k, nil))
		}
		pos = append(pos, i)
	}
	return ops, pos, nil
}

// AddSend stores a message given to the send API: parts become outbox
// records of session sessionKey. When key is already stored it returns
// the existing send's id and dup=true, and stores nothing.
func (s *Store) AddSend(ctx context.Context, key, sessionKey, platform, chatID string, parts []message.Outbound) (id int64, recs []store.OutboxRecord, dup bool, err error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, nil, false, err
	}
	defer cancel()
	skey := "send." + tok(key)
	now := ms(s.now())
	for try := 0; try < maxTries; try++ {
		_, rev, ok, err := s.get(ctx, skey)
		if err != nil {
			return 0, nil, false, err
		}
		if ok {
			return int64(rev), nil, true, nil
		}
		ops, pos, err := s.outboxOps(ctx, 0, sessionKey, parts, now)
		if err != nil {
			return 0, nil, false, err
		}
		if len(pos) != len(parts) {
			return 0, nil, false, fmt.Errorf("jsstore: insert send part: an idempotency key of %q is already in the outbox", key)
		}
		rec := sendRec{Plat: platform, Chat: chatID, Created: now}
		for i := range parts {
			rec.Parts = append(rec.Parts, parts[i].IdempotencyKey)
		}
		ops = append(ops, putAt(skey, mustJSON(rec), rev))
		last, err := s.commit(ctx, "", ops...)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return 0, nil, false, err
		}
		return int64(last), s.newRecords(last, len(ops), 0, pos, 0, sessionKey, parts), false, nil
	}
	return 0, nil, false, fmt.Errorf("jsstore: add send: %w after %d tries", errConflict, maxTries)
}

// outbox reads reply part id: its idempotency key token, record, state
// and the revision of its state key.
func (s *Store) outbox(ctx context.Context, id int64) (k string, rec outRec, st ostRec, stRev uint64, ok bool, err error) {
	key, val, ok, err := s.bySeq(ctx, id)
	if err != nil || !ok {
		return "", rec, st, 0, false, err
	}
	k, found := strings.CutPrefix(key, "out.")
	if !found {
		return "", rec, st, 0, false, nil
	}
	if err := json.Unmarshal(val, &rec); err != nil {
		return "", rec, st, 0, false, fmt.Errorf("%w: outbox %d: %v", store.ErrCorrupt, id, err)
	}
	stRev, _, err = s.getJSON(ctx, "ost."+num(id), &st)
	if err != nil {
		return "", rec, st, 0, false, err
	}
	return k, rec, st, stRev, true, nil
}

// PendingOutbox returns every undelivered reply part in creation order.
func (s *Store) PendingOutbox(ctx context.Context) ([]store.OutboxRecord, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return s.pendingOutbox(ctx)
}

func (s *Store) pendingOutbox(ctx context.Context) ([]store.OutboxRecord, error) {
	marks, err := s.scan(ctx, "opend.*")
	if err != nil {
		return nil, err
	}
	var out []store.OutboxRecord
	for _, e := range marks {
		var rec outRec
		rev, ok, err := s.getJSON(ctx, "out."+strings.TrimPrefix(e.key, "opend."), &rec)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		id := int64(rev)
		var st ostRec
		if _, _, err := s.getJSON(ctx, "ost."+num(id), &st); err != nil {
			return nil, err
		}
		if st.St != store.OutboxPending {
			continue
		}
		r := store.OutboxRecord{ID: id, InboundID: rec.Inb, SessionKey: rec.SK, Attempts: st.Att, NextAt: fromMS(st.Next)}
		if err := json.Unmarshal(rec.Msg, &r.Msg); err != nil {
			return nil, fmt.Errorf("%w: outbox %d: %v", store.ErrCorrupt, id, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// transition changes the delivery state of reply part id with a
// revision-checked write: of two nodes changing it at once, one re-reads
// and sees the other's change. A part that left the pending state stays
// as it is (the first outcome recorded wins), and an unknown id is no
// error.
func (s *Store) transition(ctx context.Context, id int64, change func(*ostRec)) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	for try := 0; try < maxTries; try++ {
		k, _, st, stRev, ok, err := s.outbox(ctx, id)
		if err != nil || !ok || st.St != store.OutboxPending {
			return err
		}
		change(&st)
		ops := []op{putAt("ost."+num(id), mustJSON(st), stRev)}
		switch st.St {
		case store.OutboxFailed:
			ops = append(ops, del("opend."+k), del("att."+num(id)), put("ofail."+num(id), nil))
		case store.OutboxDelivered:
			ops = append(ops, del("opend."+k), del("att."+num(id)))
		}
		_, err = s.commit(ctx, "", ops...)
		if errors.Is(err, errConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("jsstore: outbox %d: %w after %d tries", id, errConflict, maxTries)
}

// Delivered marks a reply part delivered.
func (s *Store) Delivered(ctx context.Context, id int64, attempts int, platformMsgID string) error {
	now := ms(s.now())
	return s.transition(ctx, id, func(st *ostRec) {
		*st = ostRec{St: store.OutboxDelivered, Att: attempts, PMID: platformMsgID, Next: st.Next, Fin: now}
	})
}

// Retry records a failed attempt and when to try again.
func (s *Store) Retry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	return s.transition(ctx, id, func(st *ostRec) {
		st.Att, st.Next, st.Err = attempts, ms(next), lastErr
	})
}

// GiveUp marks a reply part failed for good.
func (s *Store) GiveUp(ctx context.Context, id int64, attempts int, lastErr string) error {
	now := ms(s.now())
	return s.transition(ctx, id, func(st *ostRec) {
		st.St, st.Att, st.Err, st.Fin = store.OutboxFailed, attempts, lastErr, now
	})
}

// AttemptStarted records that a send of reply part id begins at at. A
// mark already there is kept with its time.
func (s *Store) AttemptStarted(ctx context.Context, id int64, at time.Time) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	key := "att." + num(id)
	_, rev, ok, err := s.get(ctx, key)
	if err != nil || ok {
		return err
	}
	_, err = s.commit(ctx, "", putAt(key, mustJSON(attRec{At: ms(at)}), rev))
	if errors.Is(err, errConflict) {
		return nil // another writer's mark came first; it is kept
	}
	return err
}

// AttemptFailed removes the mark of reply part id.
func (s *Store) AttemptFailed(ctx context.Context, id int64) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.commit(ctx, "", del("att."+num(id)))
	return err
}

// StartedAttempts returns, for every pending reply part with a send
// attempt of unknown outcome, when the earliest such attempt started.
func (s *Store) StartedAttempts(ctx context.Context) (map[int64]time.Time, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	es, err := s.scan(ctx, "att.*")
	if err != nil {
		return nil, err
	}
	out := map[int64]time.Time{}
	for _, e := range es {
		id, err := strconv.ParseInt(strings.TrimPrefix(e.key, "att."), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", store.ErrCorrupt, e.key)
		}
		_, _, st, _, ok, err := s.outbox(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok || st.St != store.OutboxPending {
			continue
		}
		var a attRec
		if err := json.Unmarshal(e.val, &a); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		out[id] = time.UnixMilli(a.At)
	}
	return out, nil
}
