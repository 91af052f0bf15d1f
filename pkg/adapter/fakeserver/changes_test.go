// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestChangesWaitWakesOnNotify(t *testing.T) {
	var c Changes
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !c.Await(10*time.Second, func() bool { return n.Load() >= 3 }) {
			t.Error("Await: condition not seen")
		}
	}()
	for i := 0; i < 3; i++ {
		n.Add(1)
		c.Notify()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the condition held")
	}
}

func TestChangesAwaitTimesOut(t *testing.T) {
	var c Changes
	if c.Await(10*time.Millisecond, func() bool { return false }) {
		t.Fatal("Await reported a condition that never held")
	}
}

func TestChangesCClosedByNotify(t *testing.T) {
	var c Changes
	ch := c.C()
	select {
	case <-ch:
		t.Fatal("closed before Notify")
	default:
	}
	c.Notify()
	select {
	case <-ch:
	default:
		t.Fatal("not closed by Notify")
	}
}

func TestGetReadsUnderLock(t *testing.T) {
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	for Get(&mu, &n) < 100 {
		select {
		case <-done:
		default:
			continue
		}
	}
	if got := Get(&mu, &n); got != 100 {
		t.Fatalf("Get = %d, want 100", got)
	}
}

// TestCopySetLocked: Copy returns a copy, not the recorded slice; Set and
// Locked run under the lock; Wait returns once the condition holds.
func TestCopySetLocked(t *testing.T) {
	var mu sync.Mutex
	sent := []int{1, 2}
	got := Copy(&mu, &sent)
	got[0] = 9
	if sent[0] != 1 {
		t.Fatal("Copy shares the recorded slice")
	}
	on := false
	Set(&mu, &on, true)
	var c Changes
	c.Wait(t, 10*time.Second, "the switch", Locked(&mu, func() bool { return on }))
	if !mu.TryLock() {
		t.Fatal("Locked left the lock held")
	}
	mu.Unlock()
}
