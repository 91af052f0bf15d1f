// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// machine describes the host for the report.
func machine(ctx context.Context, e *env) [][2]string {
	kv := [][2]string{
		{"CPU", cpuModel()},
		{"Cores", fmt.Sprintf("%d online (GOMAXPROCS of the bench %d)", runtime.NumCPU(), runtime.GOMAXPROCS(0))},
		{"Memory", memTotal()},
		{"Kernel", kernel()},
		{"Go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH},
		{"systemd", e.systemdVersion + " (PID 1 of the sandbox)"},
		{"herald", heraldVersion(ctx, e.opts.Herald)},
		{"State directory", stateFS(e.state)},
	}
	return kv
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	return "unknown"
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
}

func heraldVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out)) + " (`bin/herald`, built by `make build`)"
}

// stateFS names the file system and device behind herald's state directory.
func stateFS(dir string) string {
	var st unix.Statfs_t
	kind := "unknown"
	if unix.Statfs(dir, &st) == nil {
		switch st.Type {
		case unix.EXT4_SUPER_MAGIC:
			kind = "ext4"
		case unix.XFS_SUPER_MAGIC:
			kind = "xfs"
		case unix.BTRFS_SUPER_MAGIC:
			kind = "btrfs"
		case unix.TMPFS_MAGIC:
			kind = "tmpfs"
		case unix.OVERLAYFS_SUPER_MAGIC:
			kind = "overlayfs"
		default:
			kind = fmt.Sprintf("fs type %#x", st.Type)
		}
	}
	return kind + " on the host (" + dir + ", bound at /var/lib/herald in the sandbox)"
}
