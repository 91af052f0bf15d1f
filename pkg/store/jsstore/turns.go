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

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// histRec is one history entry, at h.<session>.<generation>.<seq>.<i>:
// seq (20 digits) orders the turns, i (4 digits) the entries of one turn.
type histRec struct {
	Role    string `json:"r"`
	Content string `json:"c"`
	At      int64  `json:"t"`
}

// genRec is a session's generation, at gen.<session>.
type genRec struct {
	Gen int64 `json:"g"`
}

func histPrefix(sessionKey string, gen int64) string {
	return "h." + tok(sessionKey) + "." + num(gen) + "."
}

// nextHistSeq hands out increasing history sequences: the wall clock in
// nanoseconds, bumped past the last one.
func (s *Store) nextHistSeq() int64 {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	n := s.now().UnixNano()
	if n <= s.hseq {
		n = s.hseq + 1
	}
	s.hseq = n
	return n
}

// Finish records the end of a turn (or of a command) in one atomic write:
// the inbound message gets state st (if it is still pending), replies
// whose idempotency key is not in the outbox yet are added to it, and
// history to the session at generation gen. Finishing a message that is
// finished already appends no history again (unless st is Refused, as
// for a message refused at intake). It returns the new outbox records.
func (s *Store) Finish(ctx context.Context, inboundID int64, st store.State, sessionKey string, gen int64, replies []message.Outbound, history []store.HistoryEntry) ([]store.OutboxRecord, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	now := ms(s.now())
	for try := 0; try < maxTries; try++ {
		var ops []op
		again := false
		if inboundID != 0 {
			nat, rec, cur, stRev, ok, err := s.inbound(ctx, inboundID)
			if err != nil {
				return nil, err
			}
			if ok && cur == store.Pending {
				ops = append(ops, s.stateOps(inboundID, nat, rec, st, stRev, now)...)
			} else {
				again = st != store.Refused
			}
		}
		parts, pos, err := s.outboxOps(ctx, inboundID, sessionKey, replies, now)
		if err != nil {
			return nil, err
		}
		base := len(ops)
		ops = append(ops, parts...)
		if !again && len(history) > 0 {
			seq := fmt.Sprintf("%020d", s.nextHistSeq())
			for i, h := range history {
				ops = append(ops, put(histPrefix(sessionKey, gen)+seq+"."+fmt.Sprintf("%04d", i),
					mustJSON(histRec{Role: h.Role, Content: h.Content, At: now})))
			}
		}
		last, err := s.commit(ctx, "", ops...)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return s.newRecords(last, len(ops), base, pos, inboundID, sessionKey, replies), nil
	}
	return nil, fmt.Errorf("jsstore: finish: %w after %d tries", errConflict, maxTries)
}

// newRecords builds the outbox records of a committed write of n
// messages ending at sequence last, whose reply part pos[i] (of replies)
// is message base+i*partOps(inboundID).
func (s *Store) newRecords(last uint64, n, base int, pos []int, inboundID int64, sessionKey string, replies []message.Outbound) []store.OutboxRecord {
	var out []store.OutboxRecord
	for i, p := range pos {
		id := int64(last) - int64(n-1) + int64(base+partOps(inboundID)*i)
		out = append(out, store.OutboxRecord{ID: id, InboundID: inboundID, SessionKey: sessionKey, Msg: replies[p]})
	}
	return out
}

// History returns up to limit of the latest entries of the session at its
// current generation, oldest first.
func (s *Store) History(ctx context.Context, sessionKey string, gen int64, limit int) ([]store.HistoryEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	es, err := s.scan(ctx, histPrefix(sessionKey, gen)+">")
	if err != nil {
		return nil, err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].key < es[j].key })
	if len(es) > limit {
		es = es[len(es)-limit:]
	}
	out := make([]store.HistoryEntry, 0, len(es))
	for _, e := range es {
		var h histRec
		if err := json.Unmarshal(e.val, &h); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		out = append(out, store.HistoryEntry{Role: h.Role, Content: h.Content})
	}
	return out, nil
}

// Generations returns the generation of every session that was ever reset.
func (s *Store) Generations(ctx context.Context) (map[string]int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	es, err := s.scan(ctx, "gen.*")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, e := range es {
		k, err := untok(strings.TrimPrefix(e.key, "gen."))
		if err != nil {
			return nil, err
		}
		var g genRec
		if err := json.Unmarshal(e.val, &g); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		out[k] = g.Gen
	}
	return out, nil
}

// ResetSession starts a new generation of the session (/new) and returns
// it. The history of earlier generations is deleted after the new
// generation is stored; what a failure leaves, PruneHistory deletes.
func (s *Store) ResetSession(ctx context.Context, sessionKey string) (int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	key := "gen." + tok(sessionKey)
	var gen int64
	for try := 0; ; try++ {
		if try == maxTries {
			return 0, fmt.Errorf("jsstore: reset session: %w after %d tries", errConflict, maxTries)
		}
		var g genRec
		rev, _, err := s.getJSON(ctx, key, &g)
		if err != nil {
			return 0, err
		}
		gen = g.Gen + 1
		_, err = s.commit(ctx, "", putAt(key, mustJSON(genRec{Gen: gen}), rev))
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return 0, err
		}
		break
	}
	es, err := s.scan(ctx, "h."+tok(sessionKey)+".>")
	if err != nil {
		return gen, nil
	}
	var ops []op
	for _, e := range es {
		if g, ok := histGen(e.key); ok && g < gen {
			ops = append(ops, del(e.key))
		}
	}
	_ = s.commitChunks(ctx, ops)
	return gen, nil
}

// histGen is the generation in a history key.
func histGen(key string) (int64, bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 5 {
		return 0, false
	}
	g, err := strconv.ParseInt(parts[2], 10, 64)
	return g, err == nil
}

// maxBatch bounds the messages of one atomic batch (the server's default
// limit is 1000).
const maxBatch = 500

// commitChunks writes independent ops in batches of at most maxBatch.
func (s *Store) commitChunks(ctx context.Context, ops []op) error {
	for len(ops) > 0 {
		n := min(len(ops), maxBatch)
		if _, err := s.commit(ctx, "", ops[:n]...); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}
