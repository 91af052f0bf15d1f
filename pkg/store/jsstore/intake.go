// SPDX-License-Identifier: Apache-2.0

package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// inRec is the immutable record of an inbound message, at key
// in.<platform>.<event>; the sequence that created it is its id.
type inRec struct {
	SK  string          `json:"k"`
	St  store.State     `json:"s"`
	Msg json.RawMessage `json:"m"`
	Rcv int64           `json:"r"`
	Fin int64           `json:"f,omitempty"`
}

// istRec is the current state of inbound message <id>, at ist.<id>, once
// it changed from the state it was stored with.
type istRec struct {
	St  store.State `json:"s"`
	Fin int64       `json:"f,omitempty"`
}

// pendRec marks a pending inbound message (ipend.<platform>.<event>) or
// an undelivered reply part (opend.<key>), with when it was stored.
type pendRec struct {
	At int64 `json:"t"`
}

func natural(platform, eventID string) string { return tok(platform) + "." + tok(eventID) }

// inbound reads inbound message id: its natural key (platform.event), its
// record, its current state and the revision of its state key.
func (s *Store) inbound(ctx context.Context, id int64) (nat string, rec inRec, cur store.State, stRev uint64, ok bool, err error) {
	key, val, ok, err := s.bySeq(ctx, id)
	if err != nil || !ok {
		return "", rec, 0, 0, false, err
	}
	nat, found := strings.CutPrefix(key, "in.")
	if !found {
		return "", rec, 0, 0, false, nil // an id of another kind of record
	}
	if err := json.Unmarshal(val, &rec); err != nil {
		return "", rec, 0, 0, false, fmt.Errorf("%w: inbound %d: %v", store.ErrCorrupt, id, err)
	}
	var st istRec
	stRev, has, err := s.getJSON(ctx, "ist."+num(id), &st)
	if err != nil {
		return "", rec, 0, 0, false, err
	}
	cur = rec.St
	if has {
		cur = st.St
	}
	return nat, rec, cur, stRev, true, nil
}

// AddInbound stores m with the given state unless (m.Platform, m.EventID)
// is already stored, in which case it returns the existing record's id and
// dup=true. It returns after JetStream acknowledged the write.
func (s *Store) AddInbound(ctx context.Context, sessionKey string, m *message.Inbound, state store.State) (id int64, dup bool, err error) {
	id, dup, _, err = s.addInbound(ctx, sessionKey, m, state, nil)
	return id, dup, err
}

// addInbound stores m; charge, if set, adds the budget writes (and may
// turn the record into a refused one) given the current time.
func (s *Store) addInbound(ctx context.Context, sessionKey string, m *message.Inbound, state store.State,
	charge func(ctx context.Context, rec *inRec) ([]op, *store.OverBudget, error)) (int64, bool, *store.OverBudget, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, false, nil, err
	}
	defer cancel()
	body, err := json.Marshal(m)
	if err != nil {
		return 0, false, nil, fmt.Errorf("jsstore: encode message: %w", err)
	}
	now := s.now()
	received := m.ReceivedAt
	if received.IsZero() {
		received = now
	}
	nat := natural(m.Platform, m.EventID)
	key := "in." + nat
	for try := 0; try < maxTries; try++ {
		_, rev, ok, err := s.get(ctx, key)
		if err != nil {
			return 0, false, nil, err
		}
		if ok {
			return int64(rev), true, nil, nil
		}
		rec := inRec{SK: sessionKey, St: state, Msg: body, Rcv: ms(received)}
		var ops []op
		var over *store.OverBudget
		if charge != nil {
			if ops, over, err = charge(ctx, &rec); err != nil {
				return 0, false, nil, err
			}
		}
		if rec.St != store.Pending {
			rec.Fin = ms(now)
		} else {
			ops = append(ops, put("ipend."+nat, mustJSON(pendRec{At: rec.Rcv})))
		}
		ops = append(ops, putAt(key, mustJSON(rec), rev))
		// The message id names this write: the key, the revision it
		// expects and the time this delivery was received (a
		// redelivery by the platform is received anew).
		seq, err := s.commit(ctx, fmt.Sprintf("in.%s.%d.%d", nat, rev, rec.Rcv), ops...)
		if err == nil {
			return int64(seq), false, over, nil
		}
		if errors.Is(err, errDuplicate) {
			// The same write, by this or another caller, is being
			// stored or was stored: read it once it is.
			if perr := pause(ctx, try); perr != nil {
				return 0, false, nil, err
			}
			continue
		}
		if !errors.Is(err, errConflict) {
			// The write may have been stored although the answer was
			// an error (a duplicate within the window, say): the next
			// read tells.
			if _, _, ok, rerr := s.get(ctx, key); rerr != nil || !ok {
				return 0, false, nil, err
			}
		}
	}
	return 0, false, nil, fmt.Errorf("jsstore: add inbound: %w after %d tries", errConflict, maxTries)
}

// InboundID returns the id of the inbound message (platform, eventID).
func (s *Store) InboundID(ctx context.Context, platform, eventID string) (int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	_, rev, ok, err := s.get(ctx, "in."+natural(platform, eventID))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, store.ErrNoInbound
	}
	return int64(rev), nil
}

// IsPending reports whether inbound message id still waits for its turn.
func (s *Store) IsPending(ctx context.Context, id int64) (bool, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	key, _, ok, err := s.bySeq(ctx, id)
	if err != nil || !ok {
		return false, err
	}
	nat, found := strings.CutPrefix(key, "in.")
	if !found {
		return false, nil
	}
	_, _, pending, err := s.get(ctx, "ipend."+nat)
	return pending, err
}

// Pending returns every pending inbound message in arrival order.
func (s *Store) Pending(ctx context.Context) ([]store.InboundRecord, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	marks, err := s.scan(ctx, "ipend.>")
	if err != nil {
		return nil, err
	}
	var out []store.InboundRecord
	for _, e := range marks {
		key := "in." + strings.TrimPrefix(e.key, "ipend.")
		var rec inRec
		rev, ok, err := s.getJSON(ctx, key, &rec)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // pruned between the two reads
		}
		r := store.InboundRecord{ID: int64(rev), SessionKey: rec.SK, State: store.Pending}
		if err := json.Unmarshal(rec.Msg, &r.Msg); err != nil {
			return nil, fmt.Errorf("%w: inbound %d: %v", store.ErrCorrupt, r.ID, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SetState changes the state of inbound messages (dropping queued messages
// on /stop, say), all in one atomic write.
func (s *Store) SetState(ctx context.Context, ids []int64, st store.State) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	fin := ms(s.now())
	for try := 0; try < maxTries; try++ {
		var ops []op
		for _, id := range ids {
			nat, rec, _, stRev, ok, err := s.inbound(ctx, id)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			ops = append(ops, s.stateOps(id, nat, rec, st, stRev, fin)...)
		}
		_, err := s.commit(ctx, "", ops...)
		if errors.Is(err, errConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("jsstore: set state: %w after %d tries", errConflict, maxTries)
}

// stateOps are the writes that move inbound message id to state st: the
// state, the pending mark, and (leaving pending) its approval.
func (s *Store) stateOps(id int64, nat string, rec inRec, st store.State, stRev uint64, fin int64) []op {
	r := istRec{St: st}
	if st != store.Pending {
		r.Fin = fin
	}
	ops := []op{putAt("ist."+num(id), mustJSON(r), stRev)}
	if st == store.Pending {
		return append(ops, put("ipend."+nat, mustJSON(pendRec{At: rec.Rcv})))
	}
	return append(ops, del("ipend."+nat), del(approvalKey(rec.SK, id)))
}
