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
		c.Wait(t, 10*time.Second, "three changes", func() bool { return n.Load() >= 3 })
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
