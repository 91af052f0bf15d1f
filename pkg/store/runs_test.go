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
	s, path, id := openWithInbound(t)
	var err error
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

func TestPendingApproval(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	id, _, err := s.AddInbound(ctx, "k", msg("e1", "c", "hi"), Pending)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	at, err := s.SetApproval(ctx, PendingApproval{InboundID: id, SessionKey: "k", RunID: "run_1", RequestID: "r1", AskedAt: first})
	if err != nil || !at.Equal(first) {
		t.Fatalf("asked at %v %v", at, err)
	}
	// Recorded again after a restart: the original time stays.
	if at, err = s.SetApproval(ctx, PendingApproval{InboundID: id, SessionKey: "k", RunID: "run_1", RequestID: "r1", AskedAt: time.Now()}); err != nil || !at.Equal(first) {
		t.Fatalf("asked again at %v %v, want %v", at, err, first)
	}
	a, ok, err := s.Approval(ctx, "k")
	if !ok || err != nil || a.RunID != "run_1" || a.RequestID != "r1" || a.InboundID != id {
		t.Fatalf("approval %+v %v %v", a, ok, err)
	}
	if err := s.DeleteApproval(ctx, id, "other"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Approval(ctx, "k"); !ok {
		t.Fatal("another request's deletion removed it")
	}
	// The turn's end removes it.
	if _, err := s.Finish(ctx, id, Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Approval(ctx, "k"); ok || err != nil {
		t.Fatalf("approval after the turn ended: %v %v", ok, err)
	}
}

// SetRerun records the attempt durably and forgets the interrupted run in
// the same transaction; pruning the message removes the attempt.
func TestRerunAttempt(t *testing.T) {
	ctx := context.Background()
	s, path, id := openWithInbound(t)
	var err error
	if n, err := s.Rerun(ctx, id); n != 0 || err != nil {
		t.Fatalf("attempt before SetRerun: %d %v", n, err)
	}
	if err := s.SetRun(ctx, id, "run_1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRerun(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Rerun(ctx, id); n != 1 || err != nil {
		t.Fatalf("attempt after restart: %d %v", n, err)
	}
	if _, _, ok, err := s.Run(ctx, id); ok || err != nil {
		t.Fatalf("interrupted run still recorded: %v %v", ok, err)
	}
	if _, err := s.Finish(ctx, id, Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Rerun(ctx, id); n != 0 || err != nil {
		t.Fatalf("attempt after prune: %d %v", n, err)
	}
}

// openWithInbound opens a new store with one pending inbound message.
func openWithInbound(t *testing.T) (*Store, string, int64) {
	t.Helper()
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
	return s, path, id
}
