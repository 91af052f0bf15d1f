// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The minute budget: the third message of a minute is over, stored
// refused without its text, and only the first over it notifies; the next
// minute starts again. Counts survive a reopen.
func TestBudgetWindows(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 10, 20, 30, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	path := filepath.Join(t.TempDir(), "h.db")
	ctx := context.Background()
	s, err := Open(ctx, path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	b := Budget{PerMinute: 2, PerDay: 3}
	add := func(ev string) (*OverBudget, int64) {
		t.Helper()
		m := msg(ev, "c", "text "+ev)
		id, dup, over, err := s.AddInboundBudget(ctx, "k", m, b)
		if err != nil || dup {
			t.Fatalf("AddInboundBudget(%s): %v dup=%v", ev, err, dup)
		}
		return over, id
	}
	for i := 1; i <= 2; i++ {
		if over, _ := add(fmt.Sprint(i)); over != nil {
			t.Fatalf("message %d over: %+v", i, over)
		}
	}
	over, id := add("3")
	if over == nil || over.Period != "minute" || !over.Notify || !over.Until.Equal(time.Date(2026, 3, 4, 10, 21, 0, 0, time.UTC)) {
		t.Fatalf("third message of the minute: %+v", over)
	}
	if pending, _ := s.IsPending(ctx, id); pending {
		t.Fatal("a message over budget is pending")
	}
	if over, _ := add("4"); over == nil || over.Notify {
		t.Fatalf("fourth message: %+v, want over without a second notice", over)
	}
	s.Close()
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	s, err = Open(ctx, path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if over, _ := add("5"); over != nil {
		t.Fatalf("next minute: %+v", over)
	}
	// The day's third message was the fifth: the sixth is over the day.
	if over, _ := add("6"); over == nil || over.Period != "day" || !over.Until.Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("over the day: %+v", over)
	}
	top, err := s.TopUsers(ctx, 5)
	if err != nil || len(top) != 1 || top[0].Today != 3 || top[0].ThisMinute != 1 {
		t.Fatalf("top users %+v %v", top, err)
	}
}
