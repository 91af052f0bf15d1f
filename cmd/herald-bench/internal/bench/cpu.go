// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on every Linux
// architecture Go supports).
const clockTick = 100.0

// cpuSnap is CPU time used so far, in seconds: by a unit's main process, by
// the bench process, and by the whole machine (busy and total).
type cpuSnap struct {
	unit, bench, busy, total float64
	at                       time.Time
}

// cpuUsage is the difference of two snapshots.
type cpuUsage struct {
	Unit        float64 // CPU seconds of the unit's main process
	UnitCores   float64 // average cores used by it
	BenchCores  float64 // average cores used by the bench process
	MachineBusy float64 // fraction of all cores busy
}

func (e *env) cpuSnap(ctx context.Context, unit string) (cpuSnap, error) {
	s := cpuSnap{at: time.Now()}
	pid, err := e.mgr.uintProp(ctx, unit, "Service", "MainPID")
	if err != nil {
		return s, err
	}
	out, err := e.run(ctx, "cat", fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.unit, err = procStatCPU(out); err != nil {
		return s, err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.bench = tv(ru.Utime) + tv(ru.Stime)
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	s.busy, s.total, err = machineCPU(string(b))
	return s, err
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// procStatCPU returns utime+stime in seconds from a /proc/<pid>/stat line.
func procStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed stat %q", stat)
	}
	// After the command: state(3) ppid … utime(14) stime(15).
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: malformed stat %q", stat)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: malformed stat %q", stat)
	}
	return (u + s) / clockTick, nil
}

// machineCPU returns busy and total CPU seconds of all cores from /proc/stat
// (busy excludes idle and iowait).
func machineCPU(stat string) (busy, total float64, err error) {
	for _, l := range strings.Split(stat, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[0] != "cpu" {
			continue
		}
		for i, v := range f[1:] {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("bench: /proc/stat: %w", err)
			}
			if i >= 8 { // guest times are included in user and nice
				break
			}
			total += n
			if i != 3 && i != 4 {
				busy += n
			}
		}
		return busy / clockTick, total / clockTick, nil
	}
	return 0, 0, fmt.Errorf("bench: no cpu line in /proc/stat")
}

func (a cpuSnap) to(b cpuSnap) cpuUsage {
	u := cpuUsage{Unit: b.unit - a.unit}
	if t := b.total - a.total; t > 0 {
		u.MachineBusy = (b.busy - a.busy) / t
	}
	if w := b.at.Sub(a.at).Seconds(); w > 0 {
		u.UnitCores, u.BenchCores = u.Unit/w, (b.bench-a.bench)/w
	}
	return u
}
