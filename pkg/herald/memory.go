// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"runtime/debug"
	"time"
)

// After a burst (thousands of sessions answered at once) the Go heap has
// grown, and the runtime gives the pages it no longer needs back to the
// kernel only slowly (its background scavenger keeps a margin above the
// heap goal for minutes), while SQLite keeps the cache pages of its
// connections: herald's RSS stayed about 20 MiB above idle a minute after
// 10,000 sessions had been answered. herald knows when a burst is over: no
// session has been active for memIdleAfter, long enough for the idle
// keep-alive connections of the burst to have closed (30 s on the webhook
// adapter's side). Then it lets SQLite drop its cache pages (PRAGMA
// shrink_memory) and returns the free heap at once (debug.FreeOSMemory: a
// collection, then the scavenge). A trickle of messages therefore costs at
// most one forced collection per memIdleAfter of silence.
const memIdleAfter = 40 * time.Second

// memReturner decides, at each status tick, whether a burst has ended.
type memReturner struct {
	busy      bool      // a session was active since the last return
	idleSince time.Time // first tick without a session after a busy one
	now       func() time.Time
	release   func()
}

func newMemReturner(shrink func()) *memReturner {
	return &memReturner{now: time.Now, release: func() {
		shrink()
		debug.FreeOSMemory()
	}}
}

// tick is called with the number of active sessions. It returns true when
// it released memory.
func (m *memReturner) tick(sessions int) bool {
	if sessions > 0 {
		m.busy, m.idleSince = true, time.Time{}
		return false
	}
	if !m.busy {
		return false
	}
	now := m.now()
	if m.idleSince.IsZero() {
		m.idleSince = now
	}
	if now.Sub(m.idleSince) < memIdleAfter {
		return false
	}
	m.busy, m.idleSince = false, time.Time{}
	m.release()
	return true
}

// shrinkStore asks the store to drop its cache pages, bounded by a short
// deadline (the store's writer may be busy).
func (d *daemon) shrinkStore() {
	if d.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.store.ShrinkMemory(ctx); err != nil {
		d.log.WithError(err).Debug("store: shrink memory failed")
	}
}
