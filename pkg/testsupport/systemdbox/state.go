// SPDX-License-Identifier: Apache-2.0

package systemdbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StateRoot holds one directory per sandbox: state.json, the empty mount point
// root/ (its tmpfs exists only inside the sandbox's mount namespace) and, for
// detached sandboxes, console.log. The sandbox's cgroup is
// <cgroup2 mount>/herald-sandbox/<name>.
const StateRoot = "/run/herald-sandbox"

const cgroupParent = "herald-sandbox"

// proc identifies a process across PID reuse: PID plus start time in clock
// ticks since boot (field 22 of /proc/PID/stat).
type proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// state is state.json. Creation order is state dir, state.json, cgroup;
// removal order is the reverse, so a cgroup without a state dir is stale.
type state struct {
	Name     string    `json:"name"`
	Owner    proc      `json:"owner"`   // process that called Boot
	Unshare  proc      `json:"unshare"` // host-side unshare(1), parent of PID 1
	PID1     proc      `json:"pid1"`    // systemd, host PID
	Cgroup   string    `json:"cgroup"`  // host path
	Detached bool      `json:"detached"`
	Created  time.Time `json:"created"`
}

// procStat returns the state letter and start time of pid.
func procStat(pid int) (byte, uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may contain spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 { // fields 3..22
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return f[0][0], start, err
}

func procOf(pid int) (proc, error) {
	_, st, err := procStat(pid)
	return proc{PID: pid, Start: st}, err
}

// alive reports whether p still runs: same PID and start time (not a reused
// PID) and not a zombie (a detached sandbox's unshare is reaped by the host's
// init, whenever that gets to it).
func (p proc) alive() bool {
	if p.PID <= 0 {
		return false
	}
	state, st, err := procStat(p.PID)
	return err == nil && st == p.Start && state != 'Z' && state != 'X'
}

func stateDir(name string) string { return filepath.Join(StateRoot, name) }

func readState(name string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(stateDir(name), "state.json"))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(stateDir(name), "state.json"), err)
	}
	return &st, nil
}

func writeState(st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(stateDir(st.Name), "state.json")
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// removeState deletes what Boot created on the host: the cgroup tree first
// (after killing whatever still runs in it, waiting up to wait until it is
// empty), then the state directory. It never removes recursively with RemoveAll: the
// mount point is removed with rmdir, which fails instead of descending if a
// file system were (wrongly) mounted there.
func removeState(st *state, wait time.Duration) error {
	var errs []error
	if st.Cgroup != "" {
		if err := killCgroup(st.Cgroup, wait); err != nil {
			errs = append(errs, err)
		} else if err := removeCgroup(st.Cgroup, wait); err != nil {
			errs = append(errs, err)
		}
	}
	dir := stateDir(st.Name)
	for _, f := range []string{"state.json", "state.json.tmp", "console.log"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{filepath.Join(dir, "root"), dir} {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	// The shared parents go when the last sandbox goes (fails harmlessly
	// while others exist; mkdirRetry copes with the race).
	if st.Cgroup != "" {
		_ = syscall.Rmdir(filepath.Dir(st.Cgroup))
	}
	_ = syscall.Rmdir(StateRoot)
	return errors.Join(errs...)
}

// mkdirRetry creates parent (if needed) and then dir, retrying when a
// concurrent removeState removes the empty parent in between.
func mkdirRetry(parent, dir string, perm os.FileMode) error {
	var err error
	for range 5 {
		if err = os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		if err = os.Mkdir(dir, perm); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// Prune removes the host-side leftovers (state directories, cgroups) of
// sandboxes whose processes are all gone. Boot calls it; so does
// systemd-sandbox stop for a sandbox that is no longer running.
func Prune() error {
	h, err := probe()
	if err != nil {
		return fmt.Errorf("sandbox: not available: %w", err)
	}
	collectGarbage(h.cgroup2)
	return nil
}

// removeCgroup removes a cgroup directory tree depth-first with rmdir (the
// only way to delete cgroups). Cgroups still populated by exiting processes
// report EBUSY for a moment, so it retries until wait has passed.
func removeCgroup(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := rmdirTree(dir)
		if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(20 * time.Millisecond)
		<-t.C
	}
}

func rmdirTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rmdir %s: %w", dir, err)
	}
	return nil
}

// collectGarbage removes the host-side leftovers (state directory, cgroup) of
// sandboxes whose owner was killed before it could clean up (SIGKILL leaves
// no chance to run code; the namespaces and mounts die with the processes,
// these two directories do not). A sandbox is stale when neither its owner
// nor its unshare process is alive; whatever still runs in its cgroup is
// killed. Errors are ignored: the next Boot retries.
func collectGarbage(cgroup2 string) {
	ents, _ := os.ReadDir(StateRoot)
	for _, e := range ents {
		st, err := readState(e.Name())
		if err != nil {
			continue
		}
		if st.Owner.alive() || st.Unshare.alive() || st.PID1.alive() {
			continue
		}
		_ = removeState(st, 0)
	}
	// Cgroups whose state directory is gone.
	parent := filepath.Join(cgroup2, cgroupParent)
	cgs, _ := os.ReadDir(parent)
	for _, e := range cgs {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(stateDir(e.Name())); err == nil {
			continue
		}
		if killCgroup(filepath.Join(parent, e.Name()), 0) == nil {
			_ = rmdirTree(filepath.Join(parent, e.Name()))
		}
	}
	_ = syscall.Rmdir(parent)
	_ = syscall.Rmdir(StateRoot)
}
