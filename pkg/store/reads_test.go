// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestHotReads: the reads prepared at Open (a turn's run and re-run
// attempt, history, pending state) answer what was written, from more
// goroutines than the read pool has connections, and again after
// ShrinkMemory closed the pool's connections (the statements are prepared
// again on the new ones); a read of a row that is not there is still "not
// there", not an error.
func TestHotReads(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	id, _, err := s.AddInbound(ctx, "k", msg("e1", "c", "hi"), Pending)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRun(ctx, id, "run_1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRerun(ctx, id, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, 0, Done, "k", 0, nil, []HistoryEntry{{"user", "hi"}, {"assistant", "hello"}}); err != nil {
		t.Fatal(err)
	}
	check := func() error {
		if _, _, ok, err := s.Run(ctx, id); err != nil || ok {
			// SetRerun forgot the run of the earlier attempt.
			return fmt.Errorf("run after SetRerun: %v %v", ok, err)
		}
		if n, err := s.Rerun(ctx, id); err != nil || n != 2 {
			return fmt.Errorf("rerun %d %v", n, err)
		}
		if n, err := s.Rerun(ctx, id+1); err != nil || n != 0 {
			return fmt.Errorf("rerun of an unknown message %d %v", n, err)
		}
		if p, err := s.IsPending(ctx, id); err != nil || !p {
			return fmt.Errorf("pending %v %v", p, err)
		}
		if h, err := s.History(ctx, "k", 0, 10); err != nil || len(h) != 2 || h[1].Content != "hello" {
			return fmt.Errorf("history %+v %v", h, err)
		}
		return nil
	}
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, 3*readConns)
		for range 3 * readConns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- check()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if err := s.ShrinkMemory(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
