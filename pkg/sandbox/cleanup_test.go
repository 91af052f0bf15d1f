// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

const helperEnv = "HERALD_SANDBOX_TEST_HELPER"

// TestHelperProcess is not a test: TestCleanupAfterDeath runs the test binary
// with helperEnv set, and this function then boots a sandbox with New, prints
// "READY", and panics or waits to be killed.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process of TestCleanupAfterDeath")
	}
	s := New(t, Options{Name: os.Getenv(helperEnv + "_NAME")})
	fmt.Printf("READY %d\n", s.PID1())
	switch mode {
	case "panic":
		panic("helper: deliberate panic with a live sandbox")
	case "wait":
		io.Copy(io.Discard, os.Stdin) // until killed
	}
}

// TestCleanupAfterDeath kills or panics a test process that owns a sandbox
// and checks that no process, mount or namespace of the sandbox survives,
// and that Prune removes the state directory and cgroup it could not.
func TestCleanupAfterDeath(t *testing.T) {
	Require(t)
	for _, tc := range []struct {
		name string
		mode string
		sig  syscall.Signal // sent after READY; 0: let it panic
	}{
		{"SIGKILL", "wait", syscall.SIGKILL},
		// An unhandled signal, like ^C. Not SIGINT itself: background jobs
		// of non-interactive shells inherit it ignored.
		{"SIGTERM", "wait", syscall.SIGTERM},
		{"panic", "panic", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("death-%s-%d", strings.ToLower(tc.name), os.Getpid())
			mounts := hostMounts(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+tc.mode, helperEnv+"_NAME="+name)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			lines := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "READY ") {
						lines <- sc.Text()
					}
				}
				done <- cmd.Wait()
			}()
			var ready string
			select {
			case ready = <-lines:
			case err := <-done:
				t.Fatalf("helper exited before READY: %v\n%s", err, stderr.String())
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatalf("helper not READY after a minute\n%s", stderr.String())
			}
			st, err := readState(name)
			if err != nil {
				t.Fatalf("%s: %v", ready, err)
			}
			s := &Sandbox{st: *st}
			tr := traceOf(t, s, mounts)
			if tc.sig != 0 {
				if err := cmd.Process.Signal(tc.sig); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				t.Logf("helper ended: %v", err)
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatal("helper did not end")
			}
			// Processes, namespaces and mounts go with PID 1, whatever the
			// way the owner died.
			if !testwait.Until(testwait.Timeout, func() bool { return !tr.pid1.alive() && !tr.unshare.alive() }) {
				t.Fatalf("sandbox processes survive their owner: %v", leftovers(t, tr))
			}
			if tc.sig != 0 {
				// The signal gave the owner no chance to clean the host
				// directories: Prune (run by every Boot, maybe already by
				// a concurrent test process) does.
				if err := Prune(); err != nil {
					t.Fatal(err)
				}
			}
			waitNoTrace(t, tr, 10*time.Second)
			for _, l := range strings.Split(pgrepSandboxes(), "\n") {
				if strings.Contains(l, "herald-sandbox-init:"+name) {
					t.Errorf("pgrep -f herald-sandbox.target: %s", l)
				}
			}
		})
	}
}

// TestBootFailureCleansUp makes Boot give up at the end of each of its
// stages and checks that nothing is left behind: no process that ran in the
// sandbox's cgroup when Boot gave up, no cgroup, no state directory, no
// mount. From the "cgroup" stage on, the injected failure also starts a
// stray process in a child cgroup of the sandbox's. It stands for what a
// Boot that gave up under load once left running: a systemd (and its
// journald) whose PID Boot did not know yet and which did not die with
// unshare. Only killing by cgroup removes it.
func TestBootFailureCleansUp(t *testing.T) {
	Require(t)
	for i, stage := range bootStages {
		t.Run(stage, func(t *testing.T) {
			name := fmt.Sprintf("bootfail-%s-%d", stage, os.Getpid())
			mounts := hostMounts(t)
			injected := errors.New("injected failure")
			var reached []string
			var running []proc
			var stray chan *os.ProcessState
			opts := Options{Name: name, failAt: func(st string, s *Sandbox) error {
				reached = append(reached, st)
				if st != stage {
					return nil
				}
				if st != "state" {
					stray = startStray(t, filepath.Join(s.st.Cgroup, "stray"))
					running = cgroupProcs(t, s.st.Cgroup)
				}
				return injected
			}}
			s, err := Boot(ctxT(t, time.Minute), opts)
			if err == nil {
				s.Close()
				t.Fatal("Boot succeeded despite the injected failure")
			}
			if !errors.Is(err, injected) {
				t.Fatalf("Boot = %v, want the injected failure", err)
			}
			if want := bootStages[:i+1]; !slices.Equal(reached, want) {
				t.Errorf("stages reached %q, want %q", reached, want)
			}
			t.Logf("Boot: %v", err)
			if stray != nil {
				select {
				case ps := <-stray:
					if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
						t.Errorf("stray process ended with %v, want SIGKILL", ps)
					}
				case <-time.After(time.Minute):
					t.Fatal("stray process in the sandbox's cgroup survived the failed Boot")
				}
			}
			// Boot returns only once the cgroup is empty. The kernel takes a
			// task out of its cgroup a little before the end of its exit
			// (its memory, and so its command line, already gone), so a
			// process may still be finishing its exit: wait for that, bounded.
			for _, p := range running {
				deadline := time.Now().Add(5 * time.Second)
				for p.alive() && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if p.alive() {
					cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
					t.Errorf("process %d (%q) of the sandbox's cgroup survived the failed Boot", p.PID, cmd)
				}
			}
			if i >= slices.Index(bootStages, "pid1") && len(running) < 2 {
				t.Errorf("only %d processes in the cgroup at stage %s: the check above proved little", len(running), stage)
			}
			waitNoTrace(t, trace{name: name, mounts: mounts}, 10*time.Second)
		})
	}
}

// startStray starts a process in the (new) cgroup dir and returns a channel
// that receives its exit state.
func startStray(t *testing.T, dir string) chan *os.ProcessState {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan *os.ProcessState, 1)
	go func() {
		cmd.Wait()
		done <- cmd.ProcessState
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	if err := writeExisting(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	return done
}

// cgroupProcs lists the processes in the cgroup tree at dir.
func cgroupProcs(t *testing.T, dir string) []proc {
	t.Helper()
	var ps []proc
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		pids, err := readPIDs(filepath.Join(path, "cgroup.procs"))
		for _, pid := range pids {
			if p, err := procOf(pid); err == nil {
				ps = append(ps, p)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestKillCgroupProcs checks the fallback for kernels without cgroup.kill:
// it kills the processes of every cgroup of a tree, and killCgroup's rounds
// wait until the tree is empty.
func TestKillCgroupProcs(t *testing.T) {
	Require(t)
	h, _ := probe()
	// Outside herald-sandbox/, where a concurrent Boot's garbage collection
	// would take it for the cgroup of a dead sandbox.
	root := filepath.Join(h.cgroup2, fmt.Sprintf("herald-sandbox-killtest-%d", os.Getpid()))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := killCgroup(root, 10*time.Second); err != nil {
			t.Error(err)
		}
		if err := removeCgroup(root, 5*time.Second); err != nil {
			t.Error(err)
		}
	})
	if err := os.MkdirAll(filepath.Join(root, "y", "z"), 0o755); err != nil {
		t.Fatal(err)
	}
	var strays []chan *os.ProcessState
	for _, leaf := range []string{"x", "y/z/leaf", "y/w"} {
		strays = append(strays, startStray(t, filepath.Join(root, leaf)))
	}
	if populated, err := cgroupPopulated(root); err != nil || !populated {
		t.Fatalf("cgroupPopulated = %v, %v before the kill", populated, err)
	}
	if !testwait.Until(time.Minute, func() bool {
		if err := killCgroupProcs(root); err != nil {
			t.Fatal(err)
		}
		populated, err := cgroupPopulated(root)
		if err != nil {
			t.Fatal(err)
		}
		return !populated
	}) {
		t.Fatalf("cgroup still populated after a minute of killCgroupProcs: %v", cgroupProcs(t, root))
	}
	for i, c := range strays {
		ps := <-c
		if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("stray %d ended with %v, want SIGKILL", i, ps)
		}
	}
	if err := rmdirTree(root); err != nil {
		t.Fatalf("rmdir after the kill: %v", err)
	}
}

// TestTwoSandboxes boots two sandboxes at once: their roots and networks are
// separate (both bind the same port) and both shut down cleanly.
func TestTwoSandboxes(t *testing.T) {
	Require(t)
	bin := testBin(t)
	mounts := hostMounts(t)
	var sbs [2]*Sandbox
	errs := make(chan error, 2)
	for i := range sbs {
		go func() {
			var err error
			sbs[i], err = Boot(ctxT(t, time.Minute), Options{Shares: []Share{{Host: bin}}})
			errs <- err
		}()
	}
	for range sbs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	var traces []trace
	for _, s := range sbs {
		if s != nil {
			traces = append(traces, traceOf(t, s, mounts))
			t.Cleanup(func() { s.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	ctx := ctxT(t, time.Minute)
	for i, s := range sbs {
		if err := s.WriteFile("/etc/herald-sbx-id", []byte(s.Name()), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Systemctl(ctx, "start", "--wait"[:0]+"sbx-web.service"); err == nil {
			t.Fatalf("sandbox %d: sbx-web.service exists before it was created", i)
		}
		if _, stderr, code, err := s.Run(ctx, "systemd-run", "--unit=sbx-web", "-p", "Type=notify",
			DefaultSharePath+"/notifyhttp", "-addr", "127.0.0.1:8090"); err != nil || code != 0 {
			t.Fatalf("sandbox %d: systemd-run: exit %d, %v: %s", i, code, err, stderr)
		}
	}
	for _, s := range sbs {
		if out, _, _, _ := s.Run(ctx, "cat", "/etc/herald-sbx-id"); out != s.Name() {
			t.Errorf("%s sees /etc/herald-sbx-id = %q", s.Name(), out)
		}
		if body := get(t, s.HTTPClient(), "http://127.0.0.1:8090/"); !strings.Contains(body, "listener=bound") {
			t.Errorf("%s: %q", s.Name(), body)
		}
	}
	for _, s := range sbs {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
	for _, tr := range traces {
		waitNoTrace(t, tr, 5*time.Second)
	}
	if _, err := os.Stat(filepath.Join("/etc", "herald-sbx-id")); err == nil {
		t.Error("/etc/herald-sbx-id appeared on the host")
	}
}

// TestCloseKillsHungShutdown: a unit that never stops makes poweroff hang;
// Close must kill PID 1 after StopTimeout, say so, and leave nothing behind.
func TestCloseKillsHungShutdown(t *testing.T) {
	Require(t)
	mounts := hostMounts(t)
	s, err := Boot(ctxT(t, time.Minute), Options{StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tr := traceOf(t, s, mounts)
	if _, stderr, code, err := s.Run(ctxT(t, time.Minute), "systemd-run", "--unit=sbx-stubborn",
		"-p", "TimeoutStopSec=infinity", "-p", "KillMode=process",
		"/bin/sh", "-c", `trap "" TERM; while :; do sleep 0.1; done`); err != nil || code != 0 {
		t.Fatalf("systemd-run: exit %d, %v: %s", code, err, stderr)
	}
	start := time.Now()
	err = s.Close()
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "killed PID 1") {
		t.Errorf("Close = %v, want an error saying PID 1 was killed", err)
	}
	t.Logf("Close after %v: %v", took.Round(time.Millisecond), err)
	waitNoTrace(t, tr, 5*time.Second)
}

// TestCloseAfterPID1Died: when PID 1 dies on its own, methods return
// ErrClosed, Close says so and still cleans up.
func TestCloseAfterPID1Died(t *testing.T) {
	Require(t)
	mounts := hostMounts(t)
	s, err := Boot(ctxT(t, time.Minute), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tr := traceOf(t, s, mounts)
	if err := syscall.Kill(s.PID1(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !s.waitExit(10 * time.Second) {
		t.Fatal("unshare did not exit after PID 1 was killed")
	}
	if _, _, _, err := s.Run(ctxT(t, time.Minute), "true"); err != ErrClosed {
		t.Errorf("Run after PID 1 died: %v, want ErrClosed", err)
	}
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "exited before Close") {
		t.Errorf("Close = %v, want an error saying PID 1 had exited", err)
	}
	waitNoTrace(t, tr, 5*time.Second)
}
