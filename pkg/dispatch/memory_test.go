// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"fmt"
	"runtime"
	"testing"
	"weak"

	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestBurstLeavesNoSession: once a burst of sessions has been answered,
// the dispatcher holds none of them, nor their queued messages and
// replies. The sessions waited in the ready queue (more sessions than turn
// slots), a slice used as a FIFO: each popped slot must be cleared, or the
// queue's backing array kept every session that ever waited in it (with
// its queue and its replies) reachable after the burst.
func TestBurstLeavesNoSession(t *testing.T) {
	e := newEnv(t, Options{MaxConcurrentTurns: 2}, allowAll)
	// The turns wait at the gate until every message is in, so all but
	// the two running sessions wait for a turn slot, however slow the
	// machine.
	e.agent.gate = make(chan struct{})
	const sessions = 60
	for i := range sessions {
		e.deliver(in(fmt.Sprint("b", i), fmt.Sprint("chat", i), "u", "hello"))
	}
	if !testwait.Until(testwait.Timeout, func() bool { return e.d.Stats().TurnsInFlight == 2 }) {
		t.Fatalf("%d turns running, want 2", e.d.Stats().TurnsInFlight)
	}
	// Take a weak pointer to each session.
	e.d.mu.Lock()
	var held []weak.Pointer[session]
	for _, s := range e.d.sessions {
		held = append(held, weak.Make(s))
	}
	waiting := len(e.d.ready)
	e.d.mu.Unlock()
	if waiting < 2 {
		t.Fatalf("only %d sessions waited for a turn slot: the test does not exercise the ready queue", waiting)
	}
	close(e.agent.gate)
	e.ad.waitSent(t, sessions)
	if !testwait.Until(testwait.Timeout, func() bool { return e.d.Stats().Sessions == 0 }) {
		t.Fatalf("%d sessions still active after every reply was sent", e.d.Stats().Sessions)
	}
	runtime.GC()
	runtime.GC()
	alive := 0
	for _, w := range held {
		if w.Value() != nil {
			alive++
		}
	}
	if alive > 0 {
		t.Fatalf("%d of %d answered sessions are still reachable after the burst", alive, len(held))
	}
}
