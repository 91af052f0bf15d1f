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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldgw/herald/pkg/store"
)

// idAfter parses the id that follows prefix in key.
func idAfter(key, prefix string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, false
	}
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		rest = rest[:i]
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil
}

// states reads every state record under prefix ("ist." or "ost.") by id.
func (s *Store) states(ctx context.Context, prefix string, decode func(id int64, val []byte) error) error {
	es, err := s.scan(ctx, prefix+"*")
	if err != nil {
		return err
	}
	for _, e := range es {
		id, ok := idAfter(e.key, prefix)
		if !ok {
			return fmt.Errorf("%w: key %s", store.ErrCorrupt, e.key)
		}
		if err := decode(id, e.val); err != nil {
			return fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
	}
	return nil
}

// Prune deletes finished inbound messages and finished reply parts older
// than before, with what belongs to them (state, run, re-run, media
// records). Pending work is never pruned, nor a message whose reply parts
// are still stored. The dedupe window is therefore the retention time.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	cut := ms(before)
	ost := map[int64]ostRec{}
	if err := s.states(ctx, "ost.", func(id int64, v []byte) error {
		var r ostRec
		err := json.Unmarshal(v, &r)
		ost[id] = r
		return err
	}); err != nil {
		return 0, err
	}
	outs, err := s.scan(ctx, "out.*")
	if err != nil {
		return 0, err
	}
	var groups [][]op
	kept := map[int64]bool{}
	for _, e := range outs {
		var r outRec
		if err := json.Unmarshal(e.val, &r); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		id := int64(e.rev)
		st := ost[id]
		if st.St == store.OutboxPending || st.Fin >= cut {
			if r.Inb != 0 {
				kept[r.Inb] = true
			}
			continue
		}
		n := num(id)
		groups = append(groups, []op{delAt(e.key, e.rev), del("ost." + n), del("att." + n), del("ofail." + n)})
	}
	ist := map[int64]istRec{}
	if err := s.states(ctx, "ist.", func(id int64, v []byte) error {
		var r istRec
		err := json.Unmarshal(v, &r)
		ist[id] = r
		return err
	}); err != nil {
		return 0, err
	}
	media := map[int64][]string{} // keys going with inbound id: media records, part lists
	mfs, err := s.scan(ctx, "mf.>")
	if err != nil {
		return 0, err
	}
	for _, e := range mfs {
		if id, ok := idAfter(e.key, "mf."); ok {
			media[id] = append(media[id], e.key)
		}
	}
	iparts, err := s.scan(ctx, "ipart.>")
	if err != nil {
		return 0, err
	}
	for _, e := range iparts {
		if id, ok := idAfter(e.key, "ipart."); ok {
			media[id] = append(media[id], e.key)
		}
	}
	ins, err := s.scan(ctx, "in.>")
	if err != nil {
		return 0, err
	}
	for _, e := range ins {
		var r inRec
		if err := json.Unmarshal(e.val, &r); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		id := int64(e.rev)
		st, fin := r.St, r.Fin
		if cur, ok := ist[id]; ok {
			st, fin = cur.St, cur.Fin
		}
		if st == store.Pending || fin >= cut || kept[id] {
			continue
		}
		n := num(id)
		g := []op{delAt(e.key, e.rev), del("ist." + n), del("run." + n), del("rerun." + n)}
		for _, k := range media[id] {
			g = append(g, del(k))
		}
		groups = append(groups, g)
	}
	return s.commitGroups(ctx, groups)
}

// commitGroups writes groups of ops, each group atomically, several groups
// per batch. A group whose revision check fails (another node pruned it
// first) is skipped. It returns the number of groups written.
func (s *Store) commitGroups(ctx context.Context, groups [][]op) (int64, error) {
	var done int64
	for len(groups) > 0 {
		var batch []op
		n := 0
		for n < len(groups) && (n == 0 || len(batch)+len(groups[n]) <= maxBatch) {
			batch = append(batch, groups[n]...)
			n++
		}
		_, err := s.commit(ctx, "", batch...)
		switch {
		case err == nil:
			done += int64(n)
		case errors.Is(err, errConflict):
			for _, g := range groups[:n] {
				_, err := s.commit(ctx, "", g...)
				if err == nil {
					done++
				} else if !errors.Is(err, errConflict) {
					return done, err
				}
			}
		default:
			return done, err
		}
		groups = groups[n:]
	}
	return done, nil
}

// PruneHistory deletes session history that will not be sent to the agent
// again: entries older than before, entries of generations before the
// session's current one, and in every session all but its newest keep
// entries. It returns the number of entries deleted.
func (s *Store) PruneHistory(ctx context.Context, before time.Time, keep int) (int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	cut := ms(before)
	gens, err := s.scan(ctx, "gen.*")
	if err != nil {
		return 0, err
	}
	cur := map[string]int64{}
	for _, e := range gens {
		var g genRec
		if err := json.Unmarshal(e.val, &g); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		cur[strings.TrimPrefix(e.key, "gen.")] = g.Gen
	}
	es, err := s.scan(ctx, "h.>")
	if err != nil {
		return 0, err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].key < es[j].key })
	groups := map[string][]entry{}
	for _, e := range es {
		parts := strings.SplitN(e.key, ".", 4)
		if len(parts) != 4 {
			return 0, fmt.Errorf("%w: key %s", store.ErrCorrupt, e.key)
		}
		groups[parts[1]+"."+parts[2]] = append(groups[parts[1]+"."+parts[2]], e)
	}
	var ops [][]op
	for g, list := range groups {
		sess, genStr, _ := strings.Cut(g, ".")
		gen, _ := strconv.ParseInt(genStr, 10, 64)
		for i, e := range list {
			var h histRec
			if err := json.Unmarshal(e.val, &h); err != nil {
				return 0, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
			}
			if h.At < cut || gen < cur[sess] || i < len(list)-max(keep, 0) {
				ops = append(ops, []op{delAt(e.key, e.rev)})
			}
		}
	}
	return s.commitGroups(ctx, ops)
}

// PruneSends deletes sends older than before whose parts are all gone
// from the outbox.
func (s *Store) PruneSends(ctx context.Context, before time.Time) (int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	es, err := s.scan(ctx, "send.*")
	if err != nil {
		return 0, err
	}
	var groups [][]op
	for _, e := range es {
		var r sendRec
		if err := json.Unmarshal(e.val, &r); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
		}
		if r.Created >= ms(before) {
			continue
		}
		left := false
		for _, k := range r.Parts {
			_, _, ok, err := s.get(ctx, "out."+tok(k))
			if err != nil {
				return 0, err
			}
			left = left || ok
		}
		if !left {
			groups = append(groups, []op{delAt(e.key, e.rev)})
		}
	}
	return s.commitGroups(ctx, groups)
}

// Compact purges the delete markers older than Options.MarkerAge that
// deletes left
// in the bucket, each with the sequence bound of the marker itself: a key
// written again since keeps its new value. (The key-value client's own
// PurgeDeletes purges the whole key, a value written meanwhile included.)
// JetStream reclaims the space of removed messages itself; there is no
// page count to report, so it returns 0.
func (s *Store) Compact(ctx context.Context) (int64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	markers, err := s.scanMarkers(ctx, ">")
	if err != nil {
		return 0, err
	}
	// A marker is the revision later writes of its key are checked
	// against, and a key without any message does as well (revision 0),
	// so any age would do; the default hour keeps the latest prune's for
	// inspection.
	limit := time.Now().Add(-s.markers)
	for _, m := range markers {
		if m.created.After(limit) {
			continue
		}
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.subj+m.key), jetstream.WithPurgeSequence(m.rev+1)); err != nil {
			return 0, fmt.Errorf("jsstore: compact: %w", err)
		}
	}
	return 0, nil
}

// Stats reads the current counts.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	var st store.Stats
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return st, err
	}
	defer cancel()
	oldest := func(filter string) (int, time.Time, error) {
		es, err := s.scan(ctx, filter)
		if err != nil {
			return 0, time.Time{}, err
		}
		var first int64
		for _, e := range es {
			var p pendRec
			if err := json.Unmarshal(e.val, &p); err != nil {
				return 0, time.Time{}, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, e.key, err)
			}
			if first == 0 || p.At < first {
				first = p.At
			}
		}
		return len(es), fromMS(first), nil
	}
	if st.PendingInbound, st.OldestPending, err = oldest("ipend.>"); err != nil {
		return st, err
	}
	if st.PendingOutbox, st.OldestOutbox, err = oldest("opend.*"); err != nil {
		return st, err
	}
	failed, err := s.scan(ctx, "ofail.*")
	if err != nil {
		return st, err
	}
	st.FailedOutbox = len(failed)
	return st, nil
}
