// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"math"
	"testing"
	"time"
)

func TestBoundWait(t *testing.T) {
	tests := []struct {
		n           float64
		unit        time.Duration
		want        time.Duration
		wantClamped bool
	}{
		{2, time.Second, 2 * time.Second, false},
		{0.25, time.Second, 250 * time.Millisecond, false},
		{41250, time.Millisecond, 41250 * time.Millisecond, false},
		{3600, time.Second, time.Hour, false},
		{3601, time.Second, time.Hour, true},
		{30 * 24 * 3600, time.Second, time.Hour, true},
		{9.3e9, time.Second, time.Hour, true}, // overflows int64 nanoseconds
		{1e300, time.Second, time.Hour, true},
		{math.Inf(1), time.Second, time.Hour, true},
		{-1, time.Second, 0, true},
		{math.Inf(-1), time.Second, 0, true},
		{math.NaN(), time.Second, 0, true},
	}
	for _, tt := range tests {
		got, clamped := BoundWait(tt.n, tt.unit, 0, MaxRetryAfter)
		if got != tt.want || clamped != tt.wantClamped {
			t.Errorf("BoundWait(%v, %v) = %v, %v; want %v, %v", tt.n, tt.unit, got, clamped, tt.want, tt.wantClamped)
		}
	}
	if got, clamped := BoundWait(0, time.Second, time.Second, time.Minute); got != time.Second || !clamped {
		t.Errorf("BoundWait below lo = %v, %v", got, clamped)
	}
}
