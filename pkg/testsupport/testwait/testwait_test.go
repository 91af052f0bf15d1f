// SPDX-License-Identifier: Apache-2.0

package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	var n atomic.Int32
	if !Until(Timeout, func() bool { return n.Add(1) >= 5 }) {
		t.Fatal("a condition that becomes true was not waited for")
	}
	if n.Load() != 5 {
		t.Fatalf("cond ran %d times after it held, want 5 in all", n.Load())
	}
	n.Store(0)
	if Until(20*time.Millisecond, func() bool { n.Add(1); return false }) {
		t.Fatal("a condition that never holds was reported as reached")
	}
	if n.Load() < 2 {
		t.Fatalf("cond ran %d times, want the first and the last check at least", n.Load())
	}
}

// fakeTB records a failure instead of ending the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
}

func TestWithinFails(t *testing.T) {
	f := &fakeTB{TB: t}
	Within(f, 10*time.Millisecond, "never", func() bool { return false })
	if f.failed == "" {
		t.Fatal("Within did not fail the test")
	}
	f.failed = ""
	For(f, "at once", func() bool { return true })
	if f.failed != "" {
		t.Fatal("For failed on a condition that holds")
	}
}
