// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestRunLink(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.AddInbound(ctx, "k", msg("e1", "c", "hi"), Pending)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := s.Run(ctx, id); ok || err != nil {
		t.Fatalf("run before SetRun: %v %v", ok, err)
	}
	if err := s.SetRun(ctx, id, "run_1", []byte(`{"input":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRun(ctx, id, "run_2", []byte(`{"input":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	// It survives a restart.
	s.Close()
	if s, err = Open(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runID, body, ok, err := s.Run(ctx, id)
	if !ok || err != nil || runID != "run_2" || string(body) != `{"input":"hi"}` {
		t.Fatalf("run %q %s %v %v", runID, body, ok, err)
	}
	if n, err := s.RunsInFlight(ctx); n != 1 || err != nil {
		t.Fatalf("in flight %d %v", n, err)
	}
	if _, err := s.Finish(ctx, id, Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RunsInFlight(ctx); n != 0 || err != nil {
		t.Fatalf("in flight after finish %d %v", n, err)
	}
	// Pruning the message removes its run.
	if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := s.Run(ctx, id); ok || err != nil {
		t.Fatalf("run after prune: %v %v", ok, err)
	}
}
