// SPDX-License-Identifier: Apache-2.0

package systemdbox

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// GuestEnv is the environment of commands run in the sandbox (the host's is
// not passed in).
var GuestEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8",
	"HOME=/root",
	"USER=root",
	"LOGNAME=root",
	"SYSTEMD_PAGER=cat",
	"SYSTEMD_COLORS=0",
}

// ioTimeout bounds WriteFile and CopyIn, which take no context.
const ioTimeout = 2 * time.Minute

// ExitError is a command in the sandbox that exited non-zero.
type ExitError struct {
	Args   []string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("sandbox: %s: exit status %d: %s", strings.Join(e.Args, " "), e.Code, strings.TrimSpace(e.Stderr))
}

// Command returns a command that runs name with args in all of the sandbox's
// namespaces and its root (nsenter -t PID1 -a), with GuestEnv, working
// directory / and its own process group. The caller may set Stdin/Stdout/
// Stderr and append to Env before starting it. When ctx ends, the command
// and everything in its process group inside the sandbox get SIGKILL
// (nsenter does not forward signals; see cancelGroup), and Wait gives up on
// its pipes 2 s later.
//
// The process lives in the sandbox's PID namespace, so it dies with the
// sandbox, but not in a unit: for something systemd must account to a unit,
// run it through systemd-run.
func (s *Sandbox) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := s.command(ctx, name, args...)
	if s.closing.Load() || !s.running() {
		cmd.Err = ErrClosed
	}
	return cmd
}

func (s *Sandbox) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.h.nsenter,
		append([]string{"-t", strconv.Itoa(s.st.PID1.PID), "-a", "--", name}, args...)...)
	cmd.Env = append([]string(nil), GuestEnv...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cancelGroup(cmd.Process.Pid) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// cancelGroup kills the process group of an nsenter started by command,
// except nsenter itself, which then reaps its child and exits. Killing
// nsenter first would orphan the command to the host's init (orphans go to
// the reaper of the dying parent's PID namespace), and a zombie in the
// sandbox that its PID 1 cannot reap stalls systemd's final kill loop at
// poweroff for up to its timeout. If the group has no other member yet,
// nsenter is killed.
func cancelGroup(pid int) error {
	found := false
	for _, p := range groupMembers(pid) {
		if p != pid {
			_ = syscall.Kill(p, syscall.SIGKILL)
			found = true
		}
	}
	if !found {
		return syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// groupMembers lists the processes of process group pgid (host PIDs).
func groupMembers(pgid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		// Fields after the command: state, ppid, pgrp.
		if f := strings.Fields(string(b[i+1:])); len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Run runs a command in the sandbox and returns its output and exit code.
// err is non-nil only if the command could not run to completion (sandbox
// closed, ctx ended, killed by a signal); a non-zero exit is not an error.
func (s *Sandbox) Run(ctx context.Context, name string, args ...string) (stdout, stderr string, exitCode int, err error) {
	if s.closing.Load() {
		return "", "", -1, ErrClosed
	}
	return s.run(ctx, name, args...)
}

func (s *Sandbox) run(ctx context.Context, name string, args ...string) (string, string, int, error) {
	return s.runInput(ctx, nil, name, args...)
}

func (s *Sandbox) runInput(ctx context.Context, stdin io.Reader, name string, args ...string) (string, string, int, error) {
	if !s.running() {
		return "", "", -1, ErrClosed
	}
	cmd := s.command(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ctx.Err() == nil {
		return out.String(), errb.String(), ee.ExitCode(), nil
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return out.String(), errb.String(), -1, fmt.Errorf("sandbox: %s: %w", name, err)
	}
	return out.String(), errb.String(), 0, nil
}

// runOK runs a command and turns a non-zero exit into an *ExitError.
func (s *Sandbox) runOK(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
	if s.closing.Load() {
		return "", ErrClosed
	}
	out, stderr, code, err := s.runInput(ctx, stdin, name, args...)
	if err != nil {
		return out, err
	}
	if code != 0 {
		return out, &ExitError{Args: append([]string{name}, args...), Code: code, Stderr: stderr}
	}
	return out, nil
}

// Systemctl runs systemctl --no-pager with args and returns its stdout. A
// non-zero exit is an *ExitError (systemctl is-active and friends use the
// exit code as their answer).
func (s *Sandbox) Systemctl(ctx context.Context, args ...string) (string, error) {
	return s.runOK(ctx, nil, "systemctl", append([]string{"--no-pager"}, args...)...)
}

// Show returns `systemctl show` properties of unit (all of them if props is
// empty).
func (s *Sandbox) Show(ctx context.Context, unit string, props ...string) (map[string]string, error) {
	args := []string{"show"}
	if len(props) > 0 {
		args = append(args, "-p", strings.Join(props, ","))
	}
	out, err := s.Systemctl(ctx, append(args, "--", unit)...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Journal runs journalctl --no-pager -o json with args and returns one map
// per entry. Values are strings, or arrays for repeated and binary fields
// (journalctl(1), JSON output).
func (s *Sandbox) Journal(ctx context.Context, args ...string) ([]map[string]any, error) {
	out, err := s.runOK(ctx, nil, "journalctl", append([]string{"--no-pager", "-o", "json"}, args...)...)
	if err != nil {
		return nil, err
	}
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue // "-- No entries --"
		}
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			return entries, fmt.Errorf("sandbox: journal: %w", err)
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

// writeScript writes stdin to $1 (creating parent directories) and sets mode
// $2. It runs inside the sandbox, so every path component, symlinks included,
// resolves in the sandbox's root, never on the host's.
const writeScript = `set -e; mkdir -p -- "$(dirname -- "$1")"; cat >"$1"; chmod "$2" -- "$1"`

// WriteFile writes data to guestPath in the sandbox (parents are created,
// mode perm). It runs inside the sandbox, so symlinks resolve there.
func (s *Sandbox) WriteFile(guestPath string, data []byte, perm os.FileMode) error {
	return s.writeFile(guestPath, bytes.NewReader(data), perm)
}

func (s *Sandbox) writeFile(guestPath string, r io.Reader, perm os.FileMode) error {
	if !path.IsAbs(guestPath) {
		return fmt.Errorf("sandbox: write %s: path must be absolute", guestPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	_, err := s.runOK(ctx, r, "sh", "-c", writeScript, "sh", guestPath, fmt.Sprintf("%04o", perm.Perm()))
	return err
}

// CopyIn copies a host file or directory tree to guestPath in the sandbox.
// A file keeps its permission bits; a directory is copied as a tar stream
// (regular files, directories and symlinks) into guestPath, created if
// needed. For large or frequently rebuilt trees prefer a Share.
func (s *Sandbox) CopyIn(hostPath, guestPath string) error {
	fi, err := os.Stat(hostPath)
	if err != nil {
		return fmt.Errorf("sandbox: copy: %w", err)
	}
	if !fi.IsDir() {
		f, err := os.Open(hostPath)
		if err != nil {
			return fmt.Errorf("sandbox: copy: %w", err)
		}
		defer f.Close()
		return s.writeFile(guestPath, f, fi.Mode())
	}
	if !path.IsAbs(guestPath) {
		return fmt.Errorf("sandbox: copy to %s: path must be absolute", guestPath)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, hostPath)) }()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	_, err = s.runOK(ctx, pr, "sh", "-c", `set -e; mkdir -p -- "$1"; tar -x --no-same-owner -C "$1" -f -`, "sh", guestPath)
	pr.CloseWithError(io.ErrClosedPipe) // unblock writeTar if tar stopped early
	return err
}

func writeTar(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular(), fi.IsDir():
		default:
			return nil // sockets, devices, fifos: skipped
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
