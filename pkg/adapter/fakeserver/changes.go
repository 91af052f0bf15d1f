// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"sync"
	"testing"
	"time"
)

// Changes lets a test wait for a fake's state to change instead of polling
// it. The fake calls Notify after every change it records (a request, an
// event, a connection opened or closed); Wait re-checks its condition after
// each. The zero value is ready to use. Notify may be called with the fake's
// own lock held: Changes has its own.
type Changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// Notify wakes everyone waiting for a change.
func (c *Changes) Notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
	}
	c.ch = make(chan struct{})
}

// C returns a channel closed by the next Notify. Take it before checking
// the state, so that a change in between is not missed.
func (c *Changes) C() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// Await waits until cond holds, re-checked after every Notify, and says
// whether it did within timeout (the fake fails its test when not). cond
// runs without any lock of Changes, so it may call the fake's accessors.
func (c *Changes) Await(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := c.C()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

// Wait is Await that fails t, naming what, when cond does not hold within
// timeout: the Wait method of a fake is this call.
func (c *Changes) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !c.Await(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
