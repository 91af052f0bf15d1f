// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// AllowSystemdHostEnv is the environment variable that lets the sandbox boot
// on a host whose PID 1 is systemd. The sandbox was built and verified on
// hosts where systemd is not PID 1, so that setup is opt-in.
const AllowSystemdHostEnv = "HERALD_SANDBOX_ALLOW_SYSTEMD_HOST"

// host is what Available found out about the machine.
type host struct {
	unshare, nsenter, sh, systemd string
	cgroup2                       string // mount point of the host's cgroup2 hierarchy
	mntNS                         string // readlink /proc/self/ns/mnt
}

var probe = sync.OnceValues(probeHost)

// Available reports whether sandboxes can boot here and, if not, why, in one
// line. The answer is computed once per process.
func Available() (ok bool, why string) {
	if _, err := probe(); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// Require skips t with one line saying why when Available is false.
func Require(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		t.Skipf("sandbox: real-systemd tests skipped: %s", why)
	}
}

func probeHost() (*host, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("needs Linux, this is %s", runtime.GOOS)
	}
	if uid := os.Geteuid(); uid != 0 {
		return nil, fmt.Errorf("needs root (euid %d)", uid)
	}
	h := &host{}
	var err error
	for _, b := range []struct {
		name string
		dst  *string
	}{{"unshare", &h.unshare}, {"nsenter", &h.nsenter}, {"sh", &h.sh}} {
		if *b.dst, err = exec.LookPath(b.name); err != nil {
			return nil, fmt.Errorf("%s not found in PATH (util-linux >= 2.38 needed)", b.name)
		}
	}
	if err := checkUtilLinux(h.unshare); err != nil {
		return nil, err
	}
	for _, p := range []string{"/lib/systemd/systemd", "/usr/lib/systemd/systemd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			h.systemd = p
			break
		}
	}
	if h.systemd == "" {
		return nil, fmt.Errorf("systemd is not installed (no /lib/systemd/systemd)")
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return nil, fmt.Errorf("read /proc/filesystems: %w", err)
	}
	if !regexp.MustCompile(`(?m)\toverlay$`).Match(fs) {
		return nil, fmt.Errorf("overlayfs is not available (not in /proc/filesystems; modprobe overlay)")
	}
	if h.cgroup2, err = findCgroup2(); err != nil {
		return nil, err
	}
	if err := unix.Access(h.cgroup2, unix.W_OK); err != nil {
		return nil, fmt.Errorf("cgroup2 hierarchy %s is not writable: %w", h.cgroup2, err)
	}
	if h.mntNS, err = os.Readlink("/proc/self/ns/mnt"); err != nil {
		return nil, fmt.Errorf("read own mount namespace: %w", err)
	}
	if comm, _ := os.ReadFile("/proc/1/comm"); strings.TrimSpace(string(comm)) == "systemd" && os.Getenv(AllowSystemdHostEnv) != "1" {
		return nil, fmt.Errorf("host PID 1 is systemd: a nested boot there is not verified (set %s=1 to try)", AllowSystemdHostEnv)
	}
	return h, nil
}

// checkUtilLinux wants util-linux >= 2.38 (unshare --kill-child, nsenter -a,
// mount --make-rprivate are older, but 2.38 is what was verified).
func checkUtilLinux(unshare string) error {
	out, err := exec.Command(unshare, "--version").Output()
	if err != nil {
		return fmt.Errorf("unshare --version: %w", err)
	}
	m := regexp.MustCompile(`util-linux (\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("cannot parse util-linux version from %q", bytes.TrimSpace(out))
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	if major < 2 || (major == 2 && minor < 38) {
		return fmt.Errorf("util-linux %d.%d is too old (2.38 needed)", major, minor)
	}
	return nil
}

// findCgroup2 returns the mount point of the host's cgroup2 hierarchy root
// (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one).
// A fresh cgroup2 mount is never made: mounting it resets hierarchy-wide
// options such as nsdelegate.
func findCgroup2() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m, ok := parseMountinfo(sc.Text())
		if ok && m.fstype == "cgroup2" && m.root == "/" {
			return m.point, nil
		}
	}
	return "", fmt.Errorf("no cgroup2 hierarchy is mounted")
}

type mountEntry struct{ root, point, fstype, source string }

// parseMountinfo parses one line of /proc/PID/mountinfo (proc(5)).
func parseMountinfo(line string) (mountEntry, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return mountEntry{}, false
	}
	a, b := strings.Fields(pre), strings.Fields(post)
	if len(a) < 5 || len(b) < 2 {
		return mountEntry{}, false
	}
	return mountEntry{root: unescapeMount(a[3]), point: unescapeMount(a[4]), fstype: b[0], source: unescapeMount(b[1])}, true
}

// unescapeMount undoes the octal escapes (\040 …) of mountinfo fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
