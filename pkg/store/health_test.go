// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fillUp makes the database full: SQLite fails the next growing write with
// SQLITE_FULL, as on a full disk (PRAGMA max_page_count on the writer's
// connection).
func fillUp(t *testing.T, s *Store) {
	t.Helper()
	var pages int
	if err := s.wdb.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.Exec("PRAGMA max_page_count = " + strconv.Itoa(pages+1)); err != nil {
		t.Fatal(err)
	}
}

func makeRoom(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.wdb.Exec("PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
}

// TestFullKeepsOriginalError: on SQLITE_FULL SQLite rolls back the whole
// transaction, so the writer's ROLLBACK TO failed with "no such savepoint",
// and that is what callers saw. They must see "database or disk is full",
// the store must report itself unwritable with the cause, and recover at
// the next commit that succeeds.
func TestFullKeepsOriginalError(t *testing.T) {
	var mu sync.Mutex
	var events []Health
	s, err := Open(context.Background(), t.TempDir()+"/herald.db", Options{OnHealth: func(h Health) {
		mu.Lock()
		events = append(events, h)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if h := s.Health(); !h.Writable {
		t.Fatalf("new store: %+v", h)
	}
	fillUp(t, s)
	big := strings.Repeat("x", 64<<10)
	for i := 0; i < 2; i++ {
		_, _, err := s.AddInbound(ctx, "k", msg("big"+strconv.Itoa(i), "c", big), Pending)
		if err == nil {
			t.Fatal("AddInbound succeeded on a full database")
		}
		if !strings.Contains(err.Error(), "database or disk is full") || strings.Contains(err.Error(), "savepoint") {
			t.Fatalf("error %q, want the original \"database or disk is full\"", err)
		}
		if c := Cause(err); c != "disk full" {
			t.Fatalf("Cause(%v) = %q, want disk full", err, c)
		}
	}
	h := s.Health()
	if h.Writable || h.Cause != "disk full" || h.Failures != 2 || h.Err == nil {
		t.Fatalf("health on a full database: %+v", h)
	}
	makeRoom(t, s)
	if _, _, err := s.AddInbound(ctx, "k", msg("after", "c", big), Pending); err != nil {
		t.Fatal(err)
	}
	if h := s.Health(); !h.Writable || h.Failures != 0 {
		t.Fatalf("health after room was made: %+v", h)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 3 || events[0].Writable || events[1].Failures != 2 || !events[2].Writable {
		t.Fatalf("OnHealth calls: %+v, want two failures then the recovery", events)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 8 << 20: "8 MiB", 15 << 30: "15 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	sp, err := FreeSpace(t.TempDir() + "/herald.db")
	if err != nil || sp.Total == 0 || sp.Free > sp.Total {
		t.Fatalf("FreeSpace = %+v, %v", sp, err)
	}
}
