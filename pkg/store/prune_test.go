// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// fakeClock is the store's clock in tests that simulate days.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// openClocked opens a store on a fake clock, at 2026-01-01.
func openClocked(t *testing.T) (*Store, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clock
}

// turn stores one message and its finished turn (one reply part and the
// exchange in the history) and delivers the reply, as herald does.
func turn(t *testing.T, s *Store, at time.Time, event, session, text string) {
	t.Helper()
	ctx := context.Background()
	m := msg(event, session, text)
	m.ReceivedAt = at
	id, _, err := s.AddInbound(ctx, session, m, Pending)
	if err != nil {
		t.Fatal(err)
	}
	reply := m.ReplyTo()
	reply.Text = "re: " + text
	reply.IdempotencyKey = message.IdempotencyKey("p", event, 1)
	recs, err := s.Finish(ctx, id, Done, session, 0, []message.Outbound{reply}, []HistoryEntry{{"user", text}, {"assistant", reply.Text}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, recs[0].ID, 1, "pm"); err != nil {
		t.Fatal(err)
	}
}

// housekeeping is the dispatcher's hourly pass.
func housekeeping(t *testing.T, s *Store, now time.Time, retention, historyRetention time.Duration, keep int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Prune(ctx, now.Add(-retention)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneHistory(ctx, now.Add(-historyRetention), keep); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
}

func (s *Store) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBoundedUnderSteadyLoad simulates 72 hours of steady traffic (a 5 KiB
// message every 10 minutes, spread over 500 sessions of an agent without
// history of its own) with the hourly housekeeping, on an injected clock.
// With a retention of 24h, the database (file and log) stops growing once
// the window is full: 7.2 MiB at 36h and still 7.2 MiB at 72h, with 24h
// of rows in each table. Without history pruning it kept growing: 7.7 MiB
// at 36h, 9.9 MiB at 72h, every exchange of the 72h kept.
func TestBoundedUnderSteadyLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 72 hours")
	}
	s, clock := openClocked(t)
	start := clock.Now()
	const (
		retention = 24 * time.Hour
		keep      = 20
		every     = 10 * time.Minute
	)
	text := strings.Repeat("steady load ", 427) // 5 KiB
	sizes := map[int]int64{}
	var err error
	i := 0
	for at := start; at.Before(start.Add(72 * time.Hour)); at = at.Add(every) {
		clock.Set(at)
		turn(t, s, at, fmt.Sprint("e", i), fmt.Sprint("s", i%500), text)
		i++
		if h := int(at.Sub(start) / time.Hour); at.Sub(start)%time.Hour == 0 && h > 0 {
			housekeeping(t, s, at, retention, retention, keep)
			if sizes[h], err = s.Size(); err != nil {
				t.Fatal(err)
			}
		}
	}
	end := start.Add(72 * time.Hour)
	clock.Set(end)
	housekeeping(t, s, end, retention, retention, keep)
	if sizes[72], err = s.Size(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages; store size at 12h %s, 24h %s, 36h %s, 48h %s, 72h %s; rows at 72h: inbound %d, outbox %d, history %d",
		i, FormatBytes(uint64(sizes[12])), FormatBytes(uint64(sizes[24])), FormatBytes(uint64(sizes[36])), FormatBytes(uint64(sizes[48])), FormatBytes(uint64(sizes[72])),
		s.count(t, "inbound"), s.count(t, "outbox"), s.count(t, "history"))
	if sizes[72] > sizes[36]*11/10 {
		t.Errorf("the store grew from %s at 36h to %s at 72h under a steady load: not bounded by the 24h retention", FormatBytes(uint64(sizes[36])), FormatBytes(uint64(sizes[72])))
	}
	perDay := int(retention / every)
	if n := s.count(t, "history"); n > 2*perDay+2 {
		t.Errorf("history holds %d entries, want at most %d (24h of exchanges)", n, 2*perDay+2)
	}
	if n := s.count(t, "inbound"); n > perDay+2 {
		t.Errorf("inbound holds %d messages, want at most %d (24h)", n, perDay+2)
	}
}

// TestCompactShrinksAfterBurst: after a burst has been pruned, the file
// gives its free pages back (incremental vacuum) instead of staying at its
// largest size.
func TestCompactShrinksAfterBurst(t *testing.T) {
	s, clock := openClocked(t)
	text := strings.Repeat("burst ", 1400) // 8 KiB
	for i := 0; i < 400; i++ {
		turn(t, s, clock.Now(), fmt.Sprint("b", i), fmt.Sprint("s", i), text)
	}
	housekeeping(t, s, clock.Now(), time.Hour, time.Hour, 20)
	peak, _ := s.Size()
	clock.Set(clock.Now().Add(2 * time.Hour))
	housekeeping(t, s, clock.Now(), time.Hour, time.Hour, 20)
	after, _ := s.Size()
	t.Logf("after a burst of 400 turns: %s; pruned and compacted: %s", FormatBytes(uint64(peak)), FormatBytes(uint64(after)))
	if after > peak/4 {
		t.Fatalf("store is %s after pruning everything, %s at its peak: free pages were not given back", FormatBytes(uint64(after)), FormatBytes(uint64(peak)))
	}
}

// TestExistingDatabaseConverted: a database made without incremental
// vacuum (by an earlier herald) is converted at open, data intact.
func TestExistingDatabaseConverted(t *testing.T) {
	s := open(t)
	path, ctx := s.Path(), context.Background()
	turn(t, s, time.Now(), "e", "k", "t")
	if _, err := s.wdb.Exec("PRAGMA auto_vacuum = NONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.Exec("VACUUM"); err != nil {
		t.Fatal(err)
	}
	var mode int
	s.wdb.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	s.Close()
	if mode != 0 {
		t.Fatalf("setup: auto_vacuum = %d, want 0", mode)
	}
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.wdb.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	if mode != 2 {
		t.Errorf("auto_vacuum after open = %d, want 2 (incremental)", mode)
	}
	if h, _ := s.History(ctx, "k", 0, 10); len(h) != 2 {
		t.Errorf("history after the conversion: %d entries, want 2", len(h))
	}
}

// TestShrinkMemory: the store's shrink works between writes, and the
// store reads and writes afterwards.
func TestShrinkMemory(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, _, err := s.AddInbound(ctx, "k", msg("e1", "c", "hi"), Pending); err != nil {
		t.Fatal(err)
	}
	if err := s.ShrinkMemory(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddInbound(ctx, "k", msg("e2", "c", "hi"), Pending); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Pending(ctx); err != nil || len(p) != 2 {
		t.Fatalf("pending after shrink: %d, %v", len(p), err)
	}
}
