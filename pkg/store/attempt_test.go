// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// queueReplies stores n reply parts for one inbound message and returns
// their outbox records.
func queueReplies(t *testing.T, s *Store, event string, n int) []OutboxRecord {
	t.Helper()
	ctx := context.Background()
	in := msg(event, "c", "hi")
	id, _, err := s.AddInbound(ctx, "k", in, Pending)
	if err != nil {
		t.Fatal(err)
	}
	var replies []message.Outbound
	for i := 0; i < n; i++ {
		r := in.ReplyTo()
		r.Text = fmt.Sprint("part ", i)
		r.Part = i
		r.IdempotencyKey = message.IdempotencyKey(in.Platform, in.EventID, i)
		replies = append(replies, r)
	}
	recs, err := s.Finish(ctx, id, Done, "k", 0, replies, nil)
	if err != nil || len(recs) != n {
		t.Fatalf("finish: %d records, %v", len(recs), err)
	}
	return recs
}

func startedAttempts(t *testing.T, s *Store) map[int64]time.Time {
	t.Helper()
	got, err := s.StartedAttempts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Every way an outcome becomes known removes the mark: delivered, given
// up, failed before reaching the platform, pruned. A retry that is
// scheduled while the outcome is still unknown keeps it.
func TestAttemptSettled(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	recs := queueReplies(t, s, "e1", 5)
	now := time.Now()
	for _, r := range recs {
		if err := s.AttemptStarted(ctx, r.ID, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := startedAttempts(t, s); len(got) != 5 {
		t.Fatalf("%d marks, want 5", len(got))
	}
	if err := s.Delivered(ctx, recs[0].ID, 1, "ts1"); err != nil {
		t.Fatal(err)
	}
	if err := s.GiveUp(ctx, recs[1].ID, 1, "outcome unknown"); err != nil {
		t.Fatal(err)
	}
	if err := s.AttemptFailed(ctx, recs[2].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Retry(ctx, recs[3].ID, 1, now.Add(time.Second), "outcome unknown"); err != nil {
		t.Fatal(err)
	}
	got := startedAttempts(t, s)
	if len(got) != 2 || got[recs[3].ID].IsZero() || got[recs[4].ID].IsZero() {
		t.Fatalf("marks = %v, want records %d (retry of an unknown outcome) and %d (untouched)", got, recs[3].ID, recs[4].ID)
	}
	var rows int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM outbox_attempt`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Fatalf("%d rows in outbox_attempt, want 2: settled marks must be deleted, not only hidden", rows)
	}
	// Pruning finished records leaves no mark behind either.
	if err := s.Delivered(ctx, recs[3].ID, 2, "ts3"); err != nil {
		t.Fatal(err)
	}
	if err := s.GiveUp(ctx, recs[4].ID, 1, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, recs[2].ID, 2, "ts2"); err != nil {
		t.Fatal(err)
	}
	if err := s.AttemptStarted(ctx, recs[4].ID, now); err != nil { // a stray mark on a finished record
		t.Fatal(err)
	}
	if got := startedAttempts(t, s); len(got) != 0 {
		t.Fatalf("marks of finished records reported: %v", got)
	}
	if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM outbox_attempt`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("%d rows in outbox_attempt after pruning every record", rows)
	}
}
