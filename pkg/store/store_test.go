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
