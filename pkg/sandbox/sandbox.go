// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

//go:embed init.sh
var initScript string

// DefaultSharePath is where a Share without Guest appears in the sandbox.
const DefaultSharePath = "/srv/herald-test"

// DefaultMasks are the units masked in every sandbox because they touch
// kernel-global or host state: sysctls, kernel modules, binfmt_misc, udev,
// the clock and the console.
var DefaultMasks = []string{
	"systemd-sysctl.service", "systemd-modules-load.service", "systemd-binfmt.service",
	"proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
	"systemd-remount-fs.service", "systemd-udevd.service", "systemd-udev-trigger.service",
	"systemd-hwdb-update.service", "kmod-static-nodes.service",
	"sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-fs-fuse-connections.mount",
	"dev-hugepages.mount", "systemd-timesyncd.service", "getty.target", "console-getty.service",
}

// Defaults for the zero Options.
const (
	DefaultBootTimeout = 60 * time.Second
	DefaultStopTimeout = 15 * time.Second
)

// Share is a host file or directory bound read-only into the sandbox.
type Share struct {
	Host  string // existing host path; symlinks are resolved at Boot
	Guest string // absolute path in the sandbox; DefaultSharePath if empty
}

// Options configure Boot. The zero value boots a sandbox without shares.
type Options struct {
	// Name names the state directory /run/herald-sandbox/<Name> and the
	// cgroup. Empty: a name unique to this process. [A-Za-z0-9_.-], ≤ 64.
	Name string
	// Shares are bound read-only, in order, before systemd starts.
	Shares []Share
	// ExtraMasks are masked in addition to DefaultMasks.
	ExtraMasks []string
	// BootTimeout bounds Boot until `systemctl is-system-running --wait`
	// answers (DefaultBootTimeout).
	BootTimeout time.Duration
	// StopTimeout bounds the graceful poweroff in Close before PID 1 is
	// killed (DefaultStopTimeout).
	StopTimeout time.Duration
	// Log receives systemd's console output (and Boot's notes, such as the
	// failed units of a degraded boot). The last 64 KiB are kept regardless
	// and appear in boot errors.
	Log io.Writer
	// LogLevel is systemd's --log-level ("notice" if empty).
	LogLevel string
	// Detach makes the sandbox outlive the calling process (no parent-death
	// signal, own session, console to <state dir>/console.log). Only for the
	// systemd-sandbox command: tests must not detach, or a killed test leaks
	// a running sandbox.
	Detach bool

	// failAt, when set (only by this package's tests), is called at the end
	// of each stage of Boot (bootStages) and makes Boot fail with its
	// error, so that the failure path is checked for every state a boot
	// can reach.
	failAt func(stage string, s *Sandbox) error
}

// bootStages are the stages of Boot, in order.
var bootStages = []string{"state", "cgroup", "unshare", "pid1", "netns", "running", "loopback"}

// Sandbox is a running systemd in its own PID, mount, UTS, IPC, network and
// cgroup namespaces. Its methods may be called concurrently.
type Sandbox struct {
	st    state
	h     *host
	log   io.Writer
	ring  *ring
	nsMu  sync.RWMutex
	netns *os.File // the sandbox's network namespace, held open; nil after Close

	cmd    *exec.Cmd     // nil for a sandbox found with Open
	exited chan struct{} // closed when unshare has exited (cmd != nil)
	err    error         // exit status of unshare, read after exited

	stopTimeout time.Duration
	degraded    string // failed units at boot, if the boot was degraded
	closing     atomic.Bool
	closeOnce   sync.Once
	closeErr    error

	mu         sync.Mutex
	transports []*http.Transport
}

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	unitNameRE = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.(service|socket|target|device|mount|automount|swap|timer|path|slice|scope)$`)
	seq        atomic.Int64
)

// ErrClosed is returned by methods called after Close, or after the
// sandbox's PID 1 exited.
var ErrClosed = errors.New("sandbox: closed")

// PID1 is the host PID of the sandbox's systemd.
func (s *Sandbox) PID1() int { return s.st.PID1.PID }

// Name is the sandbox's name.
func (s *Sandbox) Name() string { return s.st.Name }

// Console returns the last 64 KiB of systemd's console output (empty for a
// sandbox found with Open: see console.log in its state directory).
func (s *Sandbox) Console() string { return s.ring.String() }

// Boot starts a sandbox and returns once its systemd reports the system
// running (or degraded: the failed units are written to Options.Log). ctx
// bounds only the boot; the sandbox lives until Close. On error nothing is
// left behind.
func Boot(ctx context.Context, opts Options) (*Sandbox, error) {
	h, err := probe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: not available: %w", err)
	}
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("go%d-%d", os.Getpid(), seq.Add(1))
	}
	if !nameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("sandbox: invalid name %q", opts.Name)
	}
	shares, err := shareSpec(opts.Shares)
	if err != nil {
		return nil, err
	}
	masks := append(append([]string(nil), DefaultMasks...), opts.ExtraMasks...)
	for _, m := range masks {
		if !unitNameRE.MatchString(m) {
			return nil, fmt.Errorf("sandbox: invalid unit name to mask %q", m)
		}
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = DefaultBootTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "notice"
	}
	ctx, cancel := context.WithTimeout(ctx, opts.BootTimeout)
	defer cancel()

	collectGarbage(h.cgroup2)
	owner, err := procOf(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &Sandbox{
		st: state{
			Name: opts.Name, Owner: owner, Detached: opts.Detach, Created: time.Now().UTC(),
			Cgroup: filepath.Join(h.cgroup2, cgroupParent, opts.Name),
		},
		h: h, log: opts.Log, ring: &ring{}, stopTimeout: opts.StopTimeout,
		exited: make(chan struct{}),
	}
	if s.log == nil {
		s.log = io.Discard
	}
	dir := stateDir(opts.Name)
	if err := mkdirRetry(StateRoot, dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("sandbox: %q already exists (%s)", opts.Name, dir)
		}
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	fail := func(err error) (*Sandbox, error) {
		// Kill by cgroup, not only PID 1: PID 1 may not be known yet, or
		// may have escaped unshare's parent-death signal, while systemd
		// and journald run in the cgroup.
		if kerr := s.stop(10 * time.Second); kerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", kerr))
		}
		if s.netns != nil {
			s.netns.Close()
		}
		if rerr := removeState(&s.st, 2*time.Second); rerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", rerr))
		}
		if c := s.ring.String(); c != "" {
			err = fmt.Errorf("%w\nconsole output:\n%s", err, c)
		}
		return nil, fmt.Errorf("sandbox: boot %s: %w", opts.Name, err)
	}
	stage := func(name string) error {
		if opts.failAt == nil {
			return nil
		}
		return opts.failAt(name, s)
	}
	for i, step := range []func() error{
		func() error {
			if err := os.Mkdir(filepath.Join(dir, "root"), 0o700); err != nil {
				return err
			}
			return writeState(&s.st)
		},
		func() error {
			if err := mkdirRetry(filepath.Dir(s.st.Cgroup), s.st.Cgroup, 0o755); err != nil {
				return fmt.Errorf("create cgroup: %w", err)
			}
			return nil
		},
		func() error { return s.start(opts, shares, masks) },
		func() error {
			if err := s.findPID1(ctx); err != nil {
				return err
			}
			return writeState(&s.st)
		},
		s.openNetNS,
		func() error { return s.waitRunning(ctx) },
		func() error { return s.checkLoopback(ctx) },
	} {
		if err := step(); err != nil {
			return fail(err)
		}
		if err := stage(bootStages[i]); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// shareSpec validates the shares and renders SBX_SHARES.
func shareSpec(shares []Share) (string, error) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, sh := range shares {
		guest := sh.Guest
		if guest == "" {
			guest = DefaultSharePath
		}
		if !path.IsAbs(guest) || path.Clean(guest) != guest || guest == "/" || strings.ContainsAny(guest, "\t\n") {
			return "", fmt.Errorf("sandbox: share %q: guest path must be absolute and clean", guest)
		}
		if seen[guest] {
			return "", fmt.Errorf("sandbox: two shares at %s", guest)
		}
		seen[guest] = true
		hostPath, err := filepath.Abs(sh.Host)
		if err == nil {
			hostPath, err = filepath.EvalSymlinks(hostPath)
		}
		if err != nil {
			return "", fmt.Errorf("sandbox: share %q: %w", sh.Host, err)
		}
		if strings.ContainsAny(hostPath, "\t\n") {
			return "", fmt.Errorf("sandbox: share %q: tab or newline in path", hostPath)
		}
		fi, err := os.Stat(hostPath)
		if err != nil {
			return "", fmt.Errorf("sandbox: share: %w", err)
		}
		kind := "f"
		if fi.IsDir() {
			kind = "d"
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", kind, hostPath, guest)
	}
	return b.String(), nil
}

// start launches unshare(1) running init.sh as PID 1 of the new namespaces.
func (s *Sandbox) start(opts Options, shares string, masks []string) error {
	cmd := exec.Command(s.h.unshare,
		"--pid", "--fork", "--kill-child=SIGKILL", "--mount", "--uts", "--ipc", "--net",
		"--propagation", "private",
		s.h.sh, "-c", initScript, "herald-sandbox-init:"+s.st.Name)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"SBX_DIR=" + filepath.Join(stateDir(s.st.Name), "root"),
		"SBX_HOST_MNTNS=" + s.h.mntNS,
		"SBX_CGROUP=" + s.st.Cgroup,
		"SBX_SYSTEMD=" + s.h.systemd,
		"SBX_SHARES=" + shares,
		"SBX_MASKS=" + strings.Join(masks, " "),
		"SBX_LOG_LEVEL=" + opts.LogLevel,
	}
	cmd.Dir = "/"
	// Own session: a terminal's ^C must not reach systemd (SIGINT is
	// ctrl-alt-del for PID 1).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	s.cmd = cmd
	if opts.Detach {
		f, err := os.OpenFile(filepath.Join(stateDir(s.st.Name), "console.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			return err
		}
		go s.wait()
		return s.recordUnshare()
	}
	// Parent-death signal: if this process dies (even by SIGKILL) unshare
	// gets SIGKILL, and --kill-child passes SIGKILL on to PID 1, which takes
	// the whole PID namespace and its mounts with it. The signal fires when
	// the *thread* that forked exits, so the fork happens on a locked thread
	// that stays alive until unshare has been reaped (golang/go#27505).
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	w := io.MultiWriter(s.ring, lenient{s.log})
	cmd.Stdout, cmd.Stderr = w, w
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.wait()
	}()
	if err := <-started; err != nil {
		return err
	}
	return s.recordUnshare()
}

func (s *Sandbox) wait() {
	s.err = s.cmd.Wait()
	close(s.exited)
}

func (s *Sandbox) recordUnshare() error {
	p, err := procOf(s.cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("unshare exited at once: %w", err)
	}
	s.st.Unshare = p
	return writeState(&s.st)
}

// findPID1 waits until unshare's child has exec'd systemd. Nothing is run in
// the sandbox before that: until init.sh has switched root, "entering" PID 1
// would land on the host's root file system.
func (s *Sandbox) findPID1(ctx context.Context) error {
	up := s.st.Unshare.PID
	for {
		if pid := childOf(up); pid > 0 {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
			if strings.TrimSpace(string(comm)) == "systemd" {
				if !isNSInit(pid) {
					return fmt.Errorf("process %d is not PID 1 of a child PID namespace", pid)
				}
				p, err := procOf(pid)
				if err != nil {
					return err
				}
				s.st.PID1 = p
				return nil
			}
		}
		if err := s.pause(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for systemd to start: %w", err)
		}
	}
}

// pause waits for d, failing early if ctx ends or unshare exits.
func (s *Sandbox) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.exitedChan():
		return fmt.Errorf("PID 1 exited (%v)", s.err)
	}
}

func (s *Sandbox) exitedChan() <-chan struct{} {
	if s.cmd == nil {
		return nil
	}
	return s.exited
}

// childOf returns the first child of pid, or 0.
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
		return 0
	}
	// Kernels without CONFIG_PROC_CHILDREN: scan for the parent PID.
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(st, ')'); i > 0 {
			if f := strings.Fields(string(st[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return n
			}
		}
	}
	return 0
}

// isNSInit reports whether pid is PID 1 of a PID namespace below ours.
func isNSInit(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(v)
			return len(f) >= 2 && f[len(f)-1] == "1"
		}
	}
	return false
}

func (s *Sandbox) openNetNS() error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", s.st.PID1.PID))
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err == nil {
		err = unix.Stat("/proc/self/ns/net", &b)
		if err == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			err = errors.New("PID 1 shares the host's network namespace")
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	s.netns = f
	return nil
}

// waitRunning polls `systemctl is-system-running --wait` until it answers.
func (s *Sandbox) waitRunning(ctx context.Context) error {
	for {
		out, _, _, err := s.Run(ctx, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(out)
		switch {
		case err != nil:
			return fmt.Errorf("is-system-running: %w", err)
		case state == "running":
			return nil
		case state == "degraded":
			failed, _ := s.Systemctl(ctx, "--failed", "--no-legend", "--plain")
			s.degraded = strings.TrimSpace(failed)
			fmt.Fprintf(s.log, "sandbox %s: boot degraded, failed units:\n%s\n", s.st.Name, s.degraded)
			return nil
		case state == "stopping" || state == "maintenance":
			return fmt.Errorf("system is %s", state)
		}
		// "offline" (the manager does not answer on its socket yet),
		// "initializing", "starting" or nothing: ask again.
		if err := s.pause(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for is-system-running (last %q): %w", state, err)
		}
	}
}

// checkLoopback verifies that systemd brought lo up in the sandbox's network
// namespace (tests reach their services at 127.0.0.1 there).
func (s *Sandbox) checkLoopback(ctx context.Context) error {
	out, _, code, err := s.Run(ctx, "cat", "/sys/class/net/lo/flags")
	if err != nil || code != 0 {
		return fmt.Errorf("read lo flags: exit %d: %v", code, err)
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(out), "0x"), 16, 32)
	if err != nil || flags&unix.IFF_UP == 0 {
		return fmt.Errorf("loopback is not up in the sandbox (flags %q)", strings.TrimSpace(out))
	}
	return nil
}

// Open finds a sandbox booted with Options.Detach by name (systemd-sandbox
// run/stop use it). Close on the result stops the sandbox.
func Open(name string) (*Sandbox, error) {
	h, err := probe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: not available: %w", err)
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("sandbox: invalid name %q", name)
	}
	st, err := readState(name)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if !st.Unshare.alive() || !st.PID1.alive() {
		return nil, fmt.Errorf("sandbox: %s is not running (stale state in %s)", name, stateDir(name))
	}
	s := &Sandbox{st: *st, h: h, log: io.Discard, ring: &ring{}, stopTimeout: DefaultStopTimeout}
	if err := s.openNetNS(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return s, nil
}

// running reports whether PID 1 is (still) the sandbox's systemd.
func (s *Sandbox) running() bool {
	if s.cmd != nil {
		select {
		case <-s.exited:
			return false
		default:
		}
	}
	return s.st.PID1.alive()
}

// Close stops the sandbox and removes what it left on the host. It asks
// systemd to power off, waits up to Options.StopTimeout, then kills PID 1
// (which kills every process of the PID namespace and, with them, every
// mount), waits for the exit and removes the cgroup and state directory.
// Close is idempotent; later calls return the first result.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Sandbox) close() error {
	s.closing.Store(true)
	s.mu.Lock()
	for _, t := range s.transports {
		t.CloseIdleConnections()
	}
	s.mu.Unlock()
	var errs []error
	if s.running() {
		// The exit status of systemctl is not checked: PID 1 often exits
		// before it answers ("Connection reset by peer"). What counts is
		// that PID 1 exits in time.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, stderr, _, _ := s.run(ctx, "systemctl", "--no-block", "poweroff")
		cancel()
		if !s.waitExit(s.stopTimeout) {
			errs = append(errs, fmt.Errorf("poweroff did not finish within %v (systemctl: %q): killed PID 1",
				s.stopTimeout, strings.TrimSpace(stderr)))
			if err := s.stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	} else {
		if s.cmd != nil {
			select {
			case <-s.exited:
				errs = append(errs, fmt.Errorf("PID 1 had exited before Close (%v)", s.err))
			default:
			}
		}
		if err := s.stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	s.nsMu.Lock()
	if s.netns != nil {
		s.netns.Close()
		s.netns = nil
	}
	s.nsMu.Unlock()
	if err := removeState(&s.st, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox: close %s: %w", s.st.Name, err)
	}
	return nil
}

// kill sends SIGKILL to PID 1 and to unshare, each only if it is still the
// process this sandbox started (checked by start time).
func (s *Sandbox) kill() {
	for _, p := range []proc{s.st.PID1, s.st.Unshare} {
		if p.alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// stop kills every process of the sandbox, whatever state its boot reached,
// and waits up to d until all are gone: PID 1 and unshare by PID, everything
// else through the sandbox's cgroup. It repeats the kill until then, because
// PID 1 joins the cgroup only as the first step of the init script. Gone
// means unshare reaped (for a sandbox that is not detached, that includes
// every holder of the console pipe, which PID 1 passes on to its children)
// and the cgroup tree reported empty by the kernel.
func (s *Sandbox) stop(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		s.kill()
		var err error
		if s.st.Cgroup != "" {
			err = signalCgroup(s.st.Cgroup)
		}
		exited := s.waitExit(50 * time.Millisecond)
		populated := false
		if err == nil && s.st.Cgroup != "" {
			populated, err = cgroupPopulated(s.st.Cgroup)
			if errors.Is(err, fs.ErrNotExist) {
				populated, err = false, nil
			}
		}
		switch {
		case err != nil:
			return fmt.Errorf("stop: %w", err)
		case exited && !populated:
			return nil
		case !time.Now().Before(deadline) && !exited:
			return fmt.Errorf("stop: PID 1 (%d) or unshare (%d) survived SIGKILL for %v", s.st.PID1.PID, s.st.Unshare.PID, d)
		case !time.Now().Before(deadline):
			return fmt.Errorf("stop: cgroup %s still populated %v after SIGKILL", s.st.Cgroup, d)
		}
	}
}

// waitExit waits until unshare and PID 1 are gone.
func (s *Sandbox) waitExit(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	if s.cmd != nil {
		select {
		case <-s.exited:
			return true
		case <-deadline.C:
			return false
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.st.Unshare.alive() || s.st.PID1.alive() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return false
		}
	}
	return true
}

// lenient ignores the errors of a caller's log writer, so that a failing
// Options.Log never stops the copying of systemd's console (which would end
// in EPIPE for PID 1).
type lenient struct{ w io.Writer }

func (l lenient) Write(p []byte) (int, error) {
	_, _ = l.w.Write(p)
	return len(p), nil
}
