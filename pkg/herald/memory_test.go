// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"
)

// TestMemReturner: memory is returned once no session has been active for
// memIdleAfter after a busy period; not while sessions are active, not
// when herald was idle all along, and not again until it was busy again.
func TestMemReturner(t *testing.T) {
	now := time.Unix(1000, 0)
	released := 0
	m := &memReturner{now: func() time.Time { return now }, release: func() { released++ }}
	var turns uint64
	steps := []struct {
		after    time.Duration
		sessions int
		turns    uint64 // turns started since the previous tick
		want     bool
	}{
		{0, 0, 0, false},                 // idle from the start: nothing to return
		{memIdleAfter, 0, 0, false},      // still nothing
		{2 * time.Second, 500, 0, false}, // burst
		{2 * time.Second, 20, 0, false},  //
		{2 * time.Second, 0, 0, false},   // the burst is over: idle from here
		{memIdleAfter / 2, 3, 0, false},  // a few messages: not idle long enough
		{2 * time.Second, 0, 0, false},   // idle again from here
		{memIdleAfter - time.Second, 0, 0, false},
		{time.Second, 0, 0, true},      // idle for memIdleAfter: returned
		{memIdleAfter, 0, 0, false},    // not again while idle
		{2 * time.Second, 1, 0, false}, // one message
		{2 * time.Second, 0, 0, false},
		{memIdleAfter, 0, 0, true},
		// A burst between two ticks: no session seen, but turns ran.
		{2 * time.Second, 0, 10000, false},
		{2 * time.Second, 0, 0, false}, // idle from here
		{memIdleAfter - time.Second, 0, 0, false},
		{time.Second, 0, 0, true},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		turns += s.turns
		if got := m.tick(s.sessions, turns); got != s.want {
			t.Fatalf("step %d (%d sessions): released %v, want %v", i, s.sessions, got, s.want)
		}
	}
	if released != 3 {
		t.Fatalf("released %d times, want 3", released)
	}
}

// TestMemoryLimitFromCgroup: the Go runtime's memory limit comes from the
// memory.high of the process's own cgroup (MemoryHigh=), 90% of it; not
// when GOMEMLIMIT is set, when memory.high is "max", when the cgroup has
// no memory controller or the system no unified hierarchy; a value that
// is not a byte count is an error, and no limit.
func TestMemoryLimitFromCgroup(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	root := t.TempDir()
	unit := filepath.Join(root, "system.slice", "herald.service")
	if err := os.MkdirAll(unit, 0o755); err != nil {
		t.Fatal(err)
	}
	procCgroup := filepath.Join(root, "proc-self-cgroup")
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noEnv := func(string) string { return "" }
	write(procCgroup, "0::/system.slice/herald.service\n")
	tests := []struct {
		name    string
		high    string // "" = no memory.high file
		getenv  func(string) string
		want    int64
		wantErr bool
	}{
		{"bounded", "67108864\n", noEnv, 60397977, false},
		{"GOMEMLIMIT set", "67108864\n", func(k string) string {
			if k == "GOMEMLIMIT" {
				return "100MiB"
			}
			return ""
		}, 0, false},
		{"unbounded", "max\n", noEnv, 0, false},
		{"no memory controller", "", noEnv, 0, false},
		{"garbage", "lots\n", noEnv, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			os.Remove(filepath.Join(unit, "memory.high"))
			if tt.high != "" {
				write(filepath.Join(unit, "memory.high"), tt.high)
			}
			got, err := memoryLimitFromCgroup(tt.getenv, root, procCgroup)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("limit %d, err %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
			want := tt.want
			if want == 0 {
				want = math.MaxInt64
			}
			if cur := debug.SetMemoryLimit(-1); cur != want {
				t.Fatalf("runtime memory limit %d, want %d", cur, want)
			}
		})
	}
	// cgroup v1 (no unified line): nothing to derive from.
	write(procCgroup, "4:memory:/system.slice/herald.service\n")
	if got, err := memoryLimitFromCgroup(noEnv, root, procCgroup); got != 0 || err != nil {
		t.Fatalf("cgroup v1: %d %v", got, err)
	}
}
