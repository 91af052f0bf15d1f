// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"math"
	"testing"
	"time"
)

// FuzzBoundWait: whatever number a platform sends, in whatever unit, the
// wait is within the bounds, and it is reported as clamped exactly when
// the number was outside them.
func FuzzBoundWait(f *testing.F) {
	for _, n := range []float64{0, 1, 0.25, -1, 41250, 9.3e9, 2592000, 1e300, -1e300, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64} {
		f.Add(n, true)
		f.Add(n, false)
	}
	f.Fuzz(func(t *testing.T, n float64, seconds bool) {
		unit, lo, hi := time.Millisecond, time.Millisecond, 10*time.Minute
		if seconds {
			unit, lo, hi = time.Second, 0, MaxRetryAfter
		}
		d, clamped := BoundWait(n, unit, lo, hi)
		if d < lo || d > hi {
			t.Fatalf("BoundWait(%v %v) = %v outside [%v, %v]", n, unit, d, lo, hi)
		}
		inside := n*float64(unit) >= float64(lo) && n*float64(unit) <= float64(hi)
		if clamped == inside {
			t.Fatalf("BoundWait(%v %v) = %v, clamped %v", n, unit, d, clamped)
		}
	})
}
