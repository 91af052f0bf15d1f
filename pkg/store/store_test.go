// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/message"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), Options{SyncFull: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func msg(event, chat, text string) *message.Inbound {
	return &message.Inbound{Platform: "p", EventID: event, ChatID: chat, ChatType: message.ChatDirect, SenderID: "u", Text: text, ReceivedAt: time.Now()}
}

func TestAddInboundDedupe(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	id1, dup, err := s.AddInbound(ctx, "k", msg("e1", "c", "hi"), Pending)
	if err != nil || dup {
		t.Fatalf("first add: id=%d dup=%v err=%v", id1, dup, err)
	}
	id2, dup, err := s.AddInbound(ctx, "k", msg("e1", "c", "hi again"), Pending)
	if err != nil || !dup || id2 != id1 {
		t.Fatalf("redelivery: id=%d dup=%v err=%v, want id=%d dup=true", id2, dup, err, id1)
	}
	other := msg("e1", "c", "x")
	other.Platform = "q"
	if _, dup, err := s.AddInbound(ctx, "k2", other, Pending); err != nil || dup {
		t.Fatalf("same event id on another platform: dup=%v err=%v", dup, err)
	}
	p, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || p[0].Msg.Text != "hi" {
		t.Fatalf("pending = %+v, want 2 with the first text kept", p)
	}
}

func TestFinishAtomicAndIdempotent(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	in := msg("e1", "c", "hi")
	id, _, err := s.AddInbound(ctx, "k", in, Pending)
	if err != nil {
		t.Fatal(err)
	}
	reply := in.ReplyTo()
	reply.Text = "hello"
	reply.IdempotencyKey = message.IdempotencyKey("p", "e1", 1)
	recs, err := s.Finish(ctx, id, Done, "k", 0, []message.Outbound{reply}, []HistoryEntry{{"user", "hi"}, {"assistant", "hello"}})
	if err != nil || len(recs) != 1 {
		t.Fatalf("finish: %v %v", recs, err)
	}
	// A second finish of the same turn (re-run after a crash, or retried
	// after an error although the first one committed) must not queue the
	// reply twice, nor append the exchange to the history twice.
	recs2, err := s.Finish(ctx, id, Done, "k", 0, []message.Outbound{reply}, []HistoryEntry{{"user", "hi"}, {"assistant", "hello"}})
	if err != nil || len(recs2) != 0 {
		t.Fatalf("second finish queued %d replies (err %v), want 0", len(recs2), err)
	}
	p, _ := s.Pending(ctx)
	if len(p) != 0 {
		t.Fatalf("pending after finish: %d", len(p))
	}
	ob, _ := s.PendingOutbox(ctx)
	if len(ob) != 1 || ob[0].Msg.Text != "hello" {
		t.Fatalf("outbox = %+v", ob)
	}
	h, _ := s.History(ctx, "k", 0, 10)
	if len(h) != 2 || h[1].Content != "hello" {
		t.Fatalf("history = %+v", h)
	}
	if err := s.Delivered(ctx, ob[0].ID, 1, "pm1"); err != nil {
		t.Fatal(err)
	}
	if ob, _ := s.PendingOutbox(ctx); len(ob) != 0 {
		t.Fatalf("outbox after delivery: %d", len(ob))
	}
}

func TestHistoryLimitAndReset(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := s.Finish(ctx, 0, Done, "k", 0, nil, []HistoryEntry{{"user", fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := s.History(ctx, "k", 0, 3)
	if len(h) != 3 || h[0].Content != "2" || h[2].Content != "4" {
		t.Fatalf("history limit 3 = %+v, want 2,3,4", h)
	}
	gen, err := s.ResetSession(ctx, "k")
	if err != nil || gen != 1 {
		t.Fatalf("reset: gen=%d err=%v", gen, err)
	}
	if gens, _ := s.Generations(ctx); gens["k"] != 1 || len(gens) != 1 {
		t.Fatalf("generations = %v, want k: 1", gens)
	}
	if h, _ := s.History(ctx, "k", gen, 10); len(h) != 0 {
		t.Fatalf("history after reset = %+v", h)
	}
}

func TestRetryGiveUpStats(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	in := msg("e1", "c", "hi")
	id, _, _ := s.AddInbound(ctx, "k", in, Pending)
	r := in.ReplyTo()
	r.Text, r.IdempotencyKey = "x", "k1"
	recs, _ := s.Finish(ctx, id, Done, "k", 0, []message.Outbound{r}, nil)
	next := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	if err := s.Retry(ctx, recs[0].ID, 1, next, "boom"); err != nil {
		t.Fatal(err)
	}
	ob, _ := s.PendingOutbox(ctx)
	if len(ob) != 1 || ob[0].Attempts != 1 || !ob[0].NextAt.Equal(next) {
		t.Fatalf("outbox after retry = %+v", ob)
	}
	if err := s.GiveUp(ctx, recs[0].ID, 2, "permanent"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.PendingOutbox != 0 || st.FailedOutbox != 1 || st.PendingInbound != 0 {
		t.Fatalf("stats = %+v err %v", st, err)
	}
}

func TestConcurrentGroupCommit(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, err := s.AddInbound(ctx, "k", msg(fmt.Sprint(i), "c", "t"), Pending)
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, _ := s.Pending(ctx)
	if len(p) != n {
		t.Fatalf("stored %d, want %d", len(p), n)
	}
}

func TestFailingRequestDoesNotUndoOthers(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	// Run a failing and a succeeding request in the same batch.
	var wg sync.WaitGroup
	var badErr, goodErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		badErr = s.write(ctx, func(tx sqlTx) error {
			_, err := tx.Exec(`INSERT INTO no_such_table VALUES(1)`)
			return err
		})
	}()
	go func() {
		defer wg.Done()
		_, _, goodErr = s.AddInbound(ctx, "k", msg("ok", "c", "t"), Pending)
	}()
	wg.Wait()
	if badErr == nil || goodErr != nil {
		t.Fatalf("bad=%v good=%v", badErr, goodErr)
	}
	if p, _ := s.Pending(ctx); len(p) != 1 {
		t.Fatalf("pending = %d, want 1", len(p))
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := context.Background()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddInbound(ctx, "k", msg("e", "c", "t"), Pending); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, _, err := s.AddInbound(ctx, "k", msg("e2", "c", "t"), Pending); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v, want ErrClosed", err)
	}
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p, _ := s.Pending(ctx); len(p) != 1 {
		t.Fatalf("pending after reopen = %d", len(p))
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte("this is not a database, just text that is long enough"), 0o600)
	truncated := filepath.Join(dir, "truncated.db")
	{
		s, err := Open(context.Background(), truncated, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			s.AddInbound(context.Background(), "k", msg(fmt.Sprint(i), "c", string(make([]byte, 500))), Pending)
		}
		s.Close()
		b, _ := os.ReadFile(truncated)
		// Keep the header, destroy the pages after it.
		for i := 4096; i < len(b); i++ {
			b[i] = 0xA5
		}
		os.WriteFile(truncated, b, 0o600)
		os.Remove(truncated + "-wal")
		os.Remove(truncated + "-shm")
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"not sqlite", garbage, ErrCorrupt},
		{"damaged pages", truncated, ErrCorrupt},
		{"directory is a file", "/dev/null/herald.db", ErrUnwritable},
		{"path is a directory", dir, ErrUnwritable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.path, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded, want %v", tt.path, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open(%s) = %v, want %v", tt.path, err, tt.want)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	id, _, _ := s.AddInbound(ctx, "k", msg("old", "c", "t"), Pending)
	s.Finish(ctx, id, Done, "k", 0, nil, nil)
	s.AddInbound(ctx, "k", msg("pending", "c", "t"), Pending)
	n, err := s.Prune(ctx, time.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want 1", n, err)
	}
	if p, _ := s.Pending(ctx); len(p) != 1 {
		t.Fatalf("pending after prune = %d", len(p))
	}
	// The pruned event is no longer deduplicated: that is the retention
	// window's meaning.
	if _, dup, _ := s.AddInbound(ctx, "k", msg("old", "c", "t"), Pending); dup {
		t.Fatal("pruned event still deduplicated")
	}
}

// TestFailingRequestInBatchIsolated puts a request that writes and then
// fails between two good ones in one batch: the batch runs first without
// savepoints, then again with one per request, so the failing request's
// write is undone and the others are committed, in one commit.
func TestFailingRequestInBatchIsolated(t *testing.T) {
	var sizes []int
	var mu sync.Mutex
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), Options{OnCommit: func(n, _ int) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Hold the writer in a request of its own until the three others are
	// queued, so that they form the next batch.
	release, running := make(chan struct{}), make(chan struct{})
	var releaseOnce, runningOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock() // before Close, if the test fails early
	held := make(chan error, 1)
	go func() {
		held <- s.write(ctx, func(tx sqlTx) error {
			runningOnce.Do(func() { close(running) })
			<-release
			return nil
		})
	}()
	<-running
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, event := range []string{"a", "bad", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if event != "bad" {
				_, _, errs[i] = s.AddInbound(ctx, "k", msg(event, "c", "t"), Pending)
				return
			}
			errs[i] = s.write(ctx, func(tx sqlTx) error {
				if _, err := tx.Exec(sqlInsertInbound, "p", "bad", "k", 0, []byte("{}"), 1, nil); err != nil {
					return err
				}
				_, err := tx.Exec(`INSERT INTO no_such_table VALUES(1)`)
				return err
			})
		}()
		// Queue them in order.
		for deadline := time.Now().Add(10 * time.Second); len(s.reqs) < i+1; {
			if time.Now().After(deadline) {
				t.Fatal("request not queued")
			}
			time.Sleep(time.Millisecond)
		}
	}
	unblock()
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("errors = %v, want only the middle one to fail", errs)
	}
	p, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, r := range p {
		events = append(events, r.Msg.EventID)
	}
	if fmt.Sprint(events) != "[a c]" {
		t.Fatalf("stored %v, want [a c]", events)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(sizes) != "[1 3]" {
		t.Fatalf("commit sizes %v, want [1 3] (the three requests in one batch)", sizes)
	}
}

// TestFinishedIndexesDropped: a database made by an earlier herald, with
// the indexes of finished rows that only the prune read, loses them at the
// next Open (they cost every message two index writes).
func TestFinishedIndexesDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := context.Background()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE INDEX inbound_finished ON inbound(finished_at) WHERE state <> 0`,
		`CREATE INDEX outbox_finished ON outbox(finished_at) WHERE state <> 0`,
	} {
		if err := s.write(ctx, func(tx sqlTx) error { _, err := tx.Exec(q); return err }); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('inbound_finished', 'outbox_finished')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d of the finished indexes still there", n)
	}
}

// TestStatsOldestOutbox: Stats reports when the oldest undelivered reply
// part was stored, and zero once every part is delivered.
func TestStatsOldestOutbox(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if st, err := s.Stats(ctx); err != nil || !st.OldestOutbox.IsZero() {
		t.Fatalf("empty store: %+v %v", st, err)
	}
	in := msg("e1", "c", "hi")
	id, _, _ := s.AddInbound(ctx, "k", in, Pending)
	r := in.ReplyTo()
	r.Text, r.IdempotencyKey = "x", "k1"
	before := time.Now().Truncate(time.Millisecond)
	recs, err := s.Finish(ctx, id, Done, "k", 0, []message.Outbound{r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.OldestOutbox.Before(before) || st.OldestOutbox.After(time.Now()) {
		t.Fatalf("stats = %+v err %v, want the oldest reply stored after %v", st, err, before)
	}
	if err := s.Delivered(ctx, recs[0].ID, 1, "m1"); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(ctx); err != nil || !st.OldestOutbox.IsZero() {
		t.Fatalf("after delivery: %+v %v", st, err)
	}
}
