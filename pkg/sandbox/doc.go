// SPDX-License-Identifier: Apache-2.0

// Package sandbox boots a throw-away systemd as PID 1 of private namespaces,
// from the host's own installation, so that tests can run herald under a real
// service manager (sd_notify, socket activation, watchdog, journal, D-Bus)
// without a VM and without changing anything on the host (systemd must never
// boot on the real root: systemd-tmpfiles-setup would empty the host's /tmp).
// scripts/systemd-sandbox is its command-line face (cmd/herald-sandbox).
//
// # Use in tests
//
//	func TestUnderSystemd(t *testing.T) {
//		s := sandbox.New(t, sandbox.Options{
//			Shares: []sandbox.Share{{Host: buildDir}}, // at /srv/herald-test, read-only
//		})
//		ctx := context.Background()
//		s.WriteFile("/etc/systemd/system/herald.service", unit, 0o644)
//		if _, err := s.Systemctl(ctx, "daemon-reload"); err != nil { t.Fatal(err) }
//		if _, err := s.Systemctl(ctx, "start", "herald.socket"); err != nil { t.Fatal(err) }
//		resp, err := s.HTTPClient().Get("http://127.0.0.1:8089/healthz") // the sandbox's loopback
//		props, err := s.Show(ctx, "herald.service", "ActiveState", "Result")
//		entries, err := s.Journal(ctx, "-u", "herald.service")
//	}
//
// New skips the test with one line when the machine cannot host a sandbox
// (see Available: root, util-linux ≥ 2.38, overlayfs, a cgroup2 hierarchy,
// and a host whose PID 1 is not systemd unless HERALD_SANDBOX_ALLOW_SYSTEMD_HOST=1).
// It closes the sandbox in t.Cleanup and, if the test failed, first logs the
// journal tail, the failed units and systemd's console output.
//
// A boot takes about 0.2 s and a Close about 0.15 s on an idle machine, so
// tests may boot one sandbox each; subtests can share one (create it in the
// parent test). A package that wants a single sandbox for all its tests uses
// Boot and Close in TestMain. Several sandboxes may run at once: each has its
// own network namespace, so fixed ports do not clash. Reset start limits
// between cases that restart units often: every start, restarts included,
// counts towards StartLimitBurst= (the sixth in 10 s fails by default), and
// a service that hits its start limit fails its socket too.
//
// Commands run through nsenter in all of the sandbox's namespaces (Run,
// Command, Systemctl, Show, Journal). Processes started that way live in the
// sandbox's PID namespace but in no unit; use systemd-run for anything
// systemd must account to a unit. HTTPClient and DialContext open sockets in
// the sandbox's network namespace from the test process itself.
//
// # What a sandbox is
//
// unshare(1) creates PID, mount, UTS, IPC and network namespaces and runs an
// embedded init script (init.sh) as their PID 1. The script checks it is not
// in the host's mount namespace, makes every mount private, joins a cgroup
// made for the sandbox, mounts a tmpfs holding an overlay of the host's root
// file system (writes go to RAM), pivot_roots into it (not chroot: units with
// PrivateUsers=yes need a real root), mounts fresh /proc, a read-only sysfs
// of its own network namespace, a private /dev, tmpfs /run and /tmp, binds
// the shares read-only, masks the units in DefaultMasks (kernel-global
// state), writes herald-sandbox.target (dbus.socket, systemd-journald.socket)
// and a volatile journal drop-in, and execs systemd with container=unshare
// in a new cgroup namespace. systemd brings lo up (Boot checks it).
//
// Differences from the usual recipe (bind the host's /sys and /dev, no
// cgroup namespace), all found on the hybrid-cgroup Debian 12 host this was
// built on: binding the host's /sys let the sandboxed systemd
// remount the host's /sys/fs/cgroup tmpfs read-only (a superblock change),
// create v1 hierarchies in it and leave init.scope/system.slice cgroups in
// the host hierarchies. Here the sandbox sees only its own cgroup2 subtree
// (<cgroup2 mount>/herald-sandbox/<name>, through a cgroup namespace), so it
// runs in unified mode and touches nothing else; /sys is a fresh read-only
// sysfs; /dev is a private tmpfs; /proc/sys is read-only.
//
// # Cleanup
//
// Everything a sandbox mounts exists only in its mount namespace, which dies
// with its last process; every process is in its PID namespace, which dies
// with PID 1. So stopping PID 1 removes all of it, and:
//
//   - Close asks systemd to power off (systemctl --no-block poweroff), waits
//     up to Options.StopTimeout, then kills PID 1 (and unshare), waits, and
//     removes the cgroup and the state directory /run/herald-sandbox/<name>.
//   - If the test process dies without running Close (SIGKILL, a signal with
//     no handler such as ^C), the parent-death signal of unshare (set on a
//     thread locked for the sandbox's lifetime) and unshare --kill-child take
//     PID 1 down with it. Only the empty state directory and cgroup remain;
//     the next Boot (or Prune) removes them once no process of theirs lives.
//   - A test that panics runs its t.Cleanup functions, hence Close.
//   - A Boot that fails, at whatever stage, and Close kill every process
//     of the sandbox's cgroup (cgroup.kill, or one process at a time on
//     kernels before 5.14), repeating until the kernel reports the cgroup
//     empty, then remove the cgroup tree, children first. Killing PID 1
//     alone is not enough while Boot does not know it yet: a systemd that
//     missed unshare's parent-death signal would survive with its journald.
//
// Nothing is ever run in the sandbox before PID 1 has exec'd systemd (that is,
// after the root switch), and paths written by WriteFile and CopyIn are
// resolved inside the sandbox (a symlink such as /var/run cannot lead to the
// host).
//
// # Command line
//
// scripts/systemd-sandbox boot|run|shell|copy|stop|list drives detached
// sandboxes (Options.Detach) for manual work; see its usage text.
package sandbox
