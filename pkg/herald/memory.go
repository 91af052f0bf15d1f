// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
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
	turns     uint64    // the dispatcher's turn count at the last tick
	now       func() time.Time
	release   func()
}

func newMemReturner(shrink func()) *memReturner {
	return &memReturner{now: time.Now, release: func() {
		shrink()
		debug.FreeOSMemory()
	}}
}

// tick is called with the number of active sessions and the number of
// turns started so far. A burst that began and ended between two ticks
// (10,000 short turns take about two seconds) shows in the turn count, not
// in the sessions. It returns true when it released memory.
func (m *memReturner) tick(sessions int, turns uint64) bool {
	moved := turns != m.turns
	m.turns = turns
	if sessions > 0 || moved {
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
	if err := d.store.shrinkMemory(ctx); err != nil {
		d.log.WithError(err).Debug("store: shrink memory failed")
	}
}

// memLimitShare is the part of the unit's MemoryHigh= that the Go runtime
// takes as its soft memory limit: above MemoryHigh the kernel throttles
// the whole cgroup and reclaims its pages, so the collector works harder
// a little before, where it still can (SQLite's page cache, thread stacks
// and the binary's own pages are outside the Go heap).
const memLimitShare = 0.9

// memoryLimitFromCgroup sets the Go runtime's soft memory limit
// (debug.SetMemoryLimit) from the memory.high of the cgroup this process
// runs in (the unit's MemoryHigh=), unless GOMEMLIMIT is set (the runtime
// applied it already) or the cgroup has no such bound. cgroupRoot is where
// the cgroup v2 hierarchy is mounted (/sys/fs/cgroup), procCgroup the
// process's /proc/self/cgroup. It returns the limit set, 0 if none.
func memoryLimitFromCgroup(getenv func(string) string, cgroupRoot, procCgroup string) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	b, err := os.ReadFile(procCgroup)
	if err != nil {
		return 0, fmt.Errorf("memory limit: %w", err)
	}
	// cgroup v2: a single line "0::/system.slice/herald.service".
	var rel string
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			rel = p
		}
	}
	if rel == "" {
		return 0, nil // cgroup v1, or no cgroup: nothing to derive from
	}
	hb, err := os.ReadFile(filepath.Join(cgroupRoot, filepath.Clean("/"+rel), "memory.high"))
	if os.IsNotExist(err) {
		return 0, nil // no memory controller for this cgroup
	}
	if err != nil {
		return 0, fmt.Errorf("memory limit: %w", err)
	}
	v := strings.TrimSpace(string(hb))
	if v == "max" {
		return 0, nil
	}
	high, err := strconv.ParseInt(v, 10, 64)
	if err != nil || high <= 0 {
		return 0, fmt.Errorf("memory limit: memory.high %q: not a byte count", v)
	}
	limit := int64(math.Floor(float64(high) * memLimitShare))
	debug.SetMemoryLimit(limit)
	return limit, nil
}
