// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"testing"
	"time"
)

// TestMemReturner: memory is returned once no session has been active for
// memIdleAfter after a busy period; not while sessions are active, not
// when herald was idle all along, and not again until it was busy again.
func TestMemReturner(t *testing.T) {
	now := time.Unix(1000, 0)
	released := 0
	m := &memReturner{now: func() time.Time { return now }, release: func() { released++ }}
	steps := []struct {
		after    time.Duration
		sessions int
		want     bool
	}{
		{0, 0, false},                 // idle from the start: nothing to return
		{memIdleAfter, 0, false},      // still nothing
		{2 * time.Second, 500, false}, // burst
		{2 * time.Second, 20, false},  //
		{2 * time.Second, 0, false},   // the burst is over: idle from here
		{memIdleAfter / 2, 3, false},  // a few messages: not idle long enough
		{2 * time.Second, 0, false},   // idle again from here
		{memIdleAfter - time.Second, 0, false},
		{time.Second, 0, true},      // idle for memIdleAfter: returned
		{memIdleAfter, 0, false},    // not again while idle
		{2 * time.Second, 1, false}, // one message
		{2 * time.Second, 0, false},
		{memIdleAfter, 0, true},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if got := m.tick(s.sessions); got != s.want {
			t.Fatalf("step %d (%d sessions): released %v, want %v", i, s.sessions, got, s.want)
		}
	}
	if released != 2 {
		t.Fatalf("released %d times, want 2", released)
	}
}
