// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/store"
)

// runReadsStore counts the reads of a turn's recorded run and re-run
// attempt.
type runReadsStore struct {
	*store.Store
	runs, reruns atomic.Int32
}

func (s *runReadsStore) Run(ctx context.Context, id int64) (string, []byte, bool, error) {
	s.runs.Add(1)
	return s.Store.Run(ctx, id)
}

func (s *runReadsStore) Rerun(ctx context.Context, id int64) (int, error) {
	s.reruns.Add(1)
	return s.Store.Rerun(ctx, id)
}

// failOnceRunAgent starts a backend run in its first turn and then fails
// as an unreachable backend does (the turn runs again later); later turns
// answer. It keeps the run each turn was given.
type failOnceRunAgent struct {
	mu    sync.Mutex
	given []*agent.Run
}

func (a *failOnceRunAgent) KeepsHistory() bool { return true }

func (a *failOnceRunAgent) Complete(_ context.Context, req agent.Request, ev agent.Events) (string, error) {
	a.mu.Lock()
	first := len(a.given) == 0
	a.given = append(a.given, req.Run)
	a.mu.Unlock()
	if first {
		if err := ev.RunStarted(agent.Run{ID: "run_1", Body: []byte(`{}`)}); err != nil {
			return "", err
		}
		return "", errors.New("connection reset by peer")
	}
	return "done", nil
}

// TestFreshMessageSkipsRunReads: the first turn of a message this
// dispatcher just stored reads no recorded run or re-run attempt (there
// cannot be one: those reads were a fifth of the core's CPU per message),
// and a second turn of the same message (the backend failed after the run
// began) does read them and re-attaches to the run the first one recorded.
func TestFreshMessageSkipsRunReads(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "herald.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs := &runReadsStore{Store: st}
	ag := &failOnceRunAgent{}
	ad := newFakeAdapter("p")
	d := New(rs, ag, map[string]Platform{"p": {Adapter: ad, Policy: allowAll, Idempotent: true}},
		Options{InitialBackoff: 10 * time.Millisecond, TurnRetryBackoff: 10 * time.Millisecond, TurnRetries: 1}, quietLog(), metrics.Nop())
	if _, _, err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup((&env{d: d, st: st}).close)
	if err := d.Deliver(ctx, in("1", "c", "u", "hi")); err != nil {
		t.Fatal(err)
	}
	if sent := ad.waitSent(t, 1); sent[0].Text != "done" {
		t.Fatalf("sent %+v", sent)
	}
	ag.mu.Lock()
	given := append([]*agent.Run(nil), ag.given...)
	ag.mu.Unlock()
	if len(given) != 2 || given[0] != nil || given[1] == nil || given[1].ID != "run_1" {
		t.Fatalf("runs given to the turns: %+v, want none, then run_1", given)
	}
	if r, rr := rs.runs.Load(), rs.reruns.Load(); r != 1 || rr != 1 {
		t.Fatalf("%d run reads and %d re-run reads for two turns, want 1 and 1 (the second turn only)", r, rr)
	}
}
