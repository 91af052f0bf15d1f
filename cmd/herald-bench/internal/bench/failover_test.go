// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"testing"
	"time"
)

// TestKillAt: the kill falls phase after a renewal of the holder, never at
// or before now, and never before its first renewal.
func TestKillAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const renew = 2 * time.Second
	tests := []struct {
		name  string
		now   time.Duration // after t0, the acquisition
		phase time.Duration
		want  time.Duration // after t0
	}{
		{"just acquired: after the first renewal", 10 * time.Millisecond, 500 * time.Millisecond, 2500 * time.Millisecond},
		{"phase 0", 0, 0, 2 * time.Second},
		{"settled late: the next renewal period", 3 * time.Second, 500 * time.Millisecond, 4500 * time.Millisecond},
		{"exactly at the candidate: one period later", 2500 * time.Millisecond, 500 * time.Millisecond, 4500 * time.Millisecond},
		{"several periods later", 9 * time.Second, 1999 * time.Millisecond, 9999 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := killAt(t0, t0.Add(tt.now), renew, tt.phase).Sub(t0); got != tt.want {
				t.Errorf("killAt = t0+%v, want t0+%v", got, tt.want)
			}
		})
	}
}

// TestGoalFailover: every failover must end within lease_ttl + 2 s: the
// slowest one is judged, not the median; no sample is no data.
func TestGoalFailover(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name string
		s    Summary
		want Verdict
	}{
		{"within", Summary{N: 5, Median: 9, Max: 10.3}, Pass},
		{"at the bound", Summary{N: 5, Median: 9, Max: 12}, Pass},
		{"one slow", Summary{N: 5, Median: 9, Max: 12.1}, Miss},
		{"no sample", Summary{}, Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := goalFailover(ttl, tt.s)
			if g.Verdict != tt.want {
				t.Errorf("verdict %s, want %s (%+v)", g.Verdict, tt.want, g)
			}
			if g.Target != "every failover ≤ lease_ttl + 2s (12000 ms)" {
				t.Errorf("target %q", g.Target)
			}
		})
	}
}

func TestFailoverRow(t *testing.T) {
	row := failoverRow(5*time.Second, Summarize([]float64{4.5, 5.2, 4.9}))
	want := []string{"5s", "3", "4900 ms", "4500–5200 ms", "+200 ms", "7000 ms"}
	for i := range want {
		if row[i] != want[i] {
			t.Errorf("row = %q, want %q", row, want)
			break
		}
	}
	if got := failoverRow(5*time.Second, Summary{}); got[1] != "0" || got[2] != "–" || got[5] != "7000 ms" {
		t.Errorf("empty row = %q", got)
	}
}
