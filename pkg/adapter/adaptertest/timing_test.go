// SPDX-License-Identifier: Apache-2.0

package adaptertest

import (
	"testing"
	"time"
)

// recordingTB records whether a check failed.
type recordingTB struct {
	testing.TB
	failed bool
}

func (r *recordingTB) Fatalf(string, ...any) { r.failed = true }
func (r *recordingTB) Logf(string, ...any)   {}
func (r *recordingTB) Helper()               {}

// TestTimingCheck: an operation within its bound passes; one that sleeps
// a second past a 10 ms bound fails, since a sleeping thread waits on no
// run queue, so no load on the machine can excuse it.
func TestTimingCheck(t *testing.T) {
	if runDelay() <= 0 {
		t.Log("the kernel reports no run-queue delays here; Check forgives timer lateness only")
	}
	ok := &recordingTB{TB: t}
	StartTiming().Check(ok, "nothing", time.Minute)
	if ok.failed {
		t.Fatal("an operation within its bound failed")
	}
	slow := &recordingTB{TB: t}
	tm := StartTiming()
	time.Sleep(time.Second)
	tm.Check(slow, "a sleep", 10*time.Millisecond)
	if !slow.failed {
		t.Fatal("a second's sleep passed a 10 ms bound")
	}
}
