// SPDX-License-Identifier: Apache-2.0

// Package testwait waits, in tests, for a condition that nothing announces
// (a counter, a log entry, a file, another process's state): it polls with a
// short, growing interval and fails the test after a generous bound. Tests
// wait on a channel or an event when there is one; this is for the rest.
//
// It is for tests only (it imports testing); pkg/internal/policy keeps it
// out of production code. It never asserts that something did not happen:
// a test that needs that waits for an event or a counter proving the code
// made its decision, and then checks what it decided.
package testwait

import (
	"testing"
	"time"
)

// Timeout is the default bound: generous, since a loaded machine is slow,
// and only ever paid by a test that fails.
const Timeout = 30 * time.Second

// For waits until cond returns true, failing t with what after Timeout.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Timeout, what, cond)
}

// Within is For with a bound of its own.
func Within(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Until waits until cond returns true or timeout passes and reports which,
// for a caller that fails with more detail itself (the last state seen).
// cond runs at least once, and once more after the deadline.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(interval)
		if interval < 50*time.Millisecond {
			interval *= 2
		}
	}
	return true
}
