// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/heraldgw/herald/pkg/paths"
)

// profileDropIn runs the profiling build of herald (internal/heraldprof:
// herald.Run plus runtime/pprof) in herald's own unit.
const profileDropIn = `[Service]
ExecStart=
ExecStart=/usr/bin/herald-prof run --config ` + paths.ConfigFile + `
Environment=HERALD_CPUPROFILE=` + stateGuest + `/cpu.pprof HERALD_HEAPPROFILE=` + stateGuest + `/heap.pprof
Environment=HERALD_BLOCKPROFILE=` + stateGuest + `/block.pprof HERALD_MUTEXPROFILE=` + stateGuest + `/mutex.pprof
`

// profile captures a CPU profile of herald under the throughput load and a
// heap profile with every session active, and adds pprof's top tables.
func (r *runner) profile(ctx context.Context) error {
	if err := r.e.dropIn(ctx, "herald.service", profileDropIn); err != nil {
		return err
	}
	defer func() {
		_ = r.e.dropIn(context.Background(), "herald.service", "")
	}()
	out := filepath.Join(r.e.tmp, "profiles")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	// CPU: the closed-loop throughput load, sync full.
	if err := r.e.configure(ctx, heraldConf{}.render(), true); err != nil {
		return err
	}
	if _, err := r.e.mgr.start(ctx, "herald.service"); err != nil {
		return err
	}
	r.e.trk.reset()
	snd := r.e.sender(heraldAddr, fmt.Sprintf("prof-%d", time.Now().UnixNano()))
	res := snd.run(ctx, loadSpec{Senders: 64, Convs: 16, WaitReply: true, Duration: r.plan.profile})
	if _, err := r.e.mgr.stop(ctx, "herald.service"); err != nil {
		return err
	}
	for _, name := range []string{"cpu", "block", "mutex"} {
		if err := copyFile(filepath.Join(r.e.state, name+".pprof"), filepath.Join(out, name+".pprof"), 0o644); err != nil {
			return fmt.Errorf("%s profile: %w", name, err)
		}
	}
	cpu := filepath.Join(out, "cpu.pprof")
	block, err := pprofTop(ctx, r.opts.Repo, filepath.Join(out, "block.pprof"), "-top", "-cum", "-nodecount=35")
	if err != nil {
		return err
	}
	mutex, err := pprofTop(ctx, r.opts.Repo, filepath.Join(out, "mutex.pprof"), "-top", "-nodecount=15")
	if err != nil {
		return err
	}
	flat, err := pprofTop(ctx, r.opts.Repo, cpu, "-top", "-nodecount=30")
	if err != nil {
		return err
	}
	cum, err := pprofTop(ctx, r.opts.Repo, cpu, "-top", "-cum", "-nodecount=40")
	if err != nil {
		return err
	}

	// Heap: every session active (slow echo), as in the memory measure.
	n := r.plan.sessions
	if err := r.e.configure(ctx, heraldConf{WordDelay: 30 * time.Second, DrainTimeout: time.Second}.render(), true); err != nil {
		return err
	}
	if _, err := r.e.mgr.start(ctx, "herald.service"); err != nil {
		return err
	}
	r.e.trk.reset()
	snd = r.e.sender(heraldAddr, fmt.Sprintf("profmem-%d", time.Now().UnixNano()))
	snd.run(ctx, loadSpec{Senders: 64, Convs: n, Count: n})
	if err := pause(ctx, 2*time.Second); err != nil {
		return err
	}
	heapFile := filepath.Join(r.e.state, "heap.pprof")
	if err := r.e.mgr.conn.KillUnitWithTarget(ctx, "herald.service", sddbus.Main, int32(syscall.SIGUSR1)); err != nil {
		return err
	}
	var heapTop string
	for deadline := time.Now().Add(15 * time.Second); ; {
		if fi, err := os.Stat(heapFile); err == nil && fi.Size() > 0 {
			if err := pause(ctx, 500*time.Millisecond); err != nil { // let it finish writing
				return err
			}
			heap := filepath.Join(out, "heap.pprof")
			if err := copyFile(heapFile, heap, 0o644); err != nil {
				return err
			}
			heapTop, err = pprofTop(ctx, r.opts.Repo, heap, "-sample_index=inuse_space", "-top", "-nodecount=25")
			if err != nil {
				return err
			}
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no heap profile 15 s after SIGUSR1")
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	if _, err := r.e.mgr.stop(ctx, "herald.service"); err != nil {
		return err
	}
	if err := r.e.configure(ctx, heraldConf{}.render(), true); err != nil {
		return err
	}
	if r.opts.Profiles != "" {
		if err := os.MkdirAll(r.opts.Profiles, 0o755); err != nil {
			return err
		}
		for _, name := range []string{"cpu.pprof", "block.pprof", "mutex.pprof", "heap.pprof"} {
			if err := copyFile(filepath.Join(out, name), filepath.Join(r.opts.Profiles, name), 0o644); err != nil {
				return err
			}
		}
		if err := copyFile(filepath.Join(r.e.tmp, "bin", "herald-prof"), filepath.Join(r.opts.Profiles, "herald-prof"), 0o755); err != nil {
			return err
		}
		r.logf("  profiles saved in %s", r.opts.Profiles)
	}

	r.profiles = append(r.profiles,
		Para(fmt.Sprintf(`CPU profile of herald (internal/heraldprof: the unchanged herald.Run with
runtime/pprof, run by herald.service through a drop-in) during %v of the closed-loop throughput
load (64 senders, sync full; %d replies, %s). The bench process (load and receiver) is not in
this profile but shares the cores.`, r.plan.profile, res.Completed, rate(float64(res.Completed)/res.Elapsed.Seconds()))),
		Para("Flat (where the CPU time is spent):"), Code(flat),
		Para("Cumulative (which call paths it is spent under):"), Code(cum),
		Para(`Block profile of the same run (time goroutines spent waiting on channels, selects and
locks, sampled every 100 µs of waiting; cumulative, so it shows which operations a message
waits in):`), Code(block),
		Para("Mutex profile (contended locks, time the holders made others wait):"), Code(mutex),
		Para(fmt.Sprintf(`Heap profile (in-use space, after a GC) with %d sessions active (64 turns
running, the rest queued), as in the memory measure:`, n)), Code(heapTop))
	return nil
}

// pprofTop runs `go tool pprof` and returns its table without the header
// lines that name temporary files.
func pprofTop(ctx context.Context, repo, file string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), file)...)
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("go tool pprof: %v: %s", err, stderr)
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n"), nil
}
