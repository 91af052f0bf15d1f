// SPDX-License-Identifier: Apache-2.0

package systemdbox

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killCgroup kills every process in the cgroup tree at dir and waits, up to
// wait, until the kernel reports the tree empty ("populated 0" in
// cgroup.events). It signals again on every round, so a process that joins
// the tree after a round (the init script joins as its first step) is caught
// by the next one. A tree that does not exist is empty.
func killCgroup(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		populated, err := cgroupPopulated(dir)
		if errors.Is(err, fs.ErrNotExist) || err == nil && !populated {
			return nil
		}
		if err != nil {
			return err
		}
		if err := signalCgroup(dir); err != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("cgroup %s still populated %v after SIGKILL", dir, wait)
		}
		t := time.NewTimer(10 * time.Millisecond)
		<-t.C
	}
}

// cgroupPopulated reads the "populated" key of dir/cgroup.events: 1 while any
// process lives in dir or below.
func cgroupPopulated(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "populated "); ok {
			return strings.TrimSpace(v) != "0", nil
		}
	}
	return false, fmt.Errorf("%s: no populated key", filepath.Join(dir, "cgroup.events"))
}

// signalCgroup sends SIGKILL to every process of the tree at dir: through
// cgroup.kill (Linux ≥ 5.14), which covers the whole tree atomically, or else
// one process at a time.
func signalCgroup(dir string) error {
	err := writeExisting(filepath.Join(dir, "cgroup.kill"), "1")
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("kill cgroup %s: %w", dir, err)
	case !cgroupExists(dir):
		return nil // the tree is gone
	default: // no cgroup.kill
		return killCgroupProcs(dir)
	}
}

// writeExisting writes s to an existing file (cgroup files cannot be
// created: a missing one must read as fs.ErrNotExist).
func writeExisting(file, s string) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func cgroupExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.procs"))
	return err == nil
}

// killCgroupProcs is the fallback of signalCgroup for kernels without
// cgroup.kill: it walks the tree (children first) and kills each process
// listed in cgroup.procs. Each PID is pinned with a pidfd and then found in
// cgroup.procs again before the signal, so a PID that was reused in between
// by a process outside the tree is never signalled. Processes forked during
// the walk are left to the caller's next round.
func killCgroupProcs(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kill cgroup %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := killCgroupProcs(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	procsFile := filepath.Join(dir, "cgroup.procs")
	pids, err := readPIDs(procsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kill cgroup %s: %w", dir, err)
	}
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			continue // exited
		}
		if err != nil {
			// No pidfd (Linux < 5.3): signal by PID.
			_ = syscall.Kill(pid, syscall.SIGKILL)
			continue
		}
		if again, err := readPIDs(procsFile); err == nil && slices.Contains(again, pid) {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		unix.Close(fd)
	}
	return nil
}

func readPIDs(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
