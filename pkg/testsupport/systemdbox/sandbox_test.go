// SPDX-License-Identifier: Apache-2.0

package systemdbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 && os.Getenv(helperEnv) == "" {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildDir  string
	buildOnce = sync.OnceValues(func() (string, error) {
		gobin, err := exec.LookPath("go")
		if err != nil {
			return "", err
		}
		dir, err := os.MkdirTemp("", "herald-sandbox-bin-")
		if err != nil {
			return "", err
		}
		buildDir = dir
		cmd := exec.Command(gobin, "build", "-o", filepath.Join(dir, "notifyhttp"), "./testdata/notifyhttp")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build notifyhttp: %v\n%s", err, out)
		}
		return dir, nil
	})
)

// testBin returns a host directory holding notifyhttp, for sharing at
// DefaultSharePath.
func testBin(t *testing.T) string {
	t.Helper()
	dir, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// trace is what a sandbox may leave on the host; after Close none of it may
// exist.
type trace struct {
	name              string
	pid1, unshare     proc
	pidNS, mntNS, net string
	mounts            []string // host mountinfo before boot
}

func traceOf(t *testing.T, s *Sandbox, mountsBefore []string) trace {
	t.Helper()
	tr := trace{name: s.Name(), pid1: s.st.PID1, unshare: s.st.Unshare, mounts: mountsBefore}
	for _, ns := range []struct {
		kind string
		dst  *string
	}{{"pid", &tr.pidNS}, {"mnt", &tr.mntNS}, {"net", &tr.net}} {
		path := fmt.Sprintf("/proc/%d/ns/%s", s.PID1(), ns.kind)
		// Hold the namespace open until the test ends: the kernel reuses
		// a freed namespace's inode number, and a sandbox booted meanwhile
		// by another test binary (or the processes it nsenters) would
		// otherwise show up as this one's leftovers.
		pin, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pin.Close() })
		v, err := os.Readlink(path)
		if err != nil {
			t.Fatal(err)
		}
		self, _ := os.Readlink("/proc/self/ns/" + ns.kind)
		if v == self {
			t.Fatalf("PID 1 shares the host's %s namespace %s", ns.kind, v)
		}
		*ns.dst = v
	}
	return tr
}

func hostMounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// leftovers lists what of tr still exists: processes in the sandbox's
// namespaces (or its PID 1 / unshare), host mounts that were not there
// before boot or mention the sandbox, the state directory and the cgroup.
func leftovers(t *testing.T, tr trace) []string {
	t.Helper()
	var left []string
	if tr.pid1.alive() {
		left = append(left, fmt.Sprintf("PID 1 %d alive", tr.pid1.PID))
	}
	if tr.unshare.alive() {
		left = append(left, fmt.Sprintf("unshare %d alive", tr.unshare.PID))
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if otherSandbox(e.Name(), tr.name) {
			// Belt and braces beside the pinned namespaces: a process in
			// another sandbox's cgroup is that sandbox's.
			continue
		}
		for _, ns := range []struct{ kind, id string }{{"pid", tr.pidNS}, {"mnt", tr.mntNS}, {"net", tr.net}} {
			if v, _ := os.Readlink("/proc/" + e.Name() + "/ns/" + ns.kind); ns.id != "" && v == ns.id {
				cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				left = append(left, fmt.Sprintf("process %s in the sandbox's %s namespace: %q", e.Name(), ns.kind, cmd))
			}
		}
		if cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); strings.Contains(string(cmd), "herald-sandbox-init:"+tr.name+"\x00") {
			left = append(left, fmt.Sprintf("process %s is this sandbox's init", e.Name()))
		}
	}
	before := map[string]bool{}
	for _, m := range tr.mounts {
		before[m] = true
	}
	for _, m := range hostMounts(t) {
		if !before[m] || strings.Contains(m, "herald-sandbox") {
			left = append(left, "host mount: "+m)
		}
	}
	if _, err := os.Stat(stateDir(tr.name)); err == nil {
		left = append(left, "state directory "+stateDir(tr.name))
	}
	h, _ := probe()
	if _, err := os.Stat(filepath.Join(h.cgroup2, cgroupParent, tr.name)); err == nil {
		left = append(left, "cgroup "+filepath.Join(h.cgroup2, cgroupParent, tr.name))
	}
	return left
}

// otherSandbox reports whether process pid is in the cgroup of a sandbox
// other than name.
func otherSandbox(pid, name string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		_, path, ok := strings.Cut(line, "::")
		if !ok {
			continue
		}
		_, rest, ok := strings.Cut(path, "/"+cgroupParent+"/")
		if !ok {
			continue
		}
		sandbox, _, _ := strings.Cut(rest, "/")
		return sandbox != name
	}
	return false
}

// waitNoTrace polls until leftovers is empty or d has passed.
func waitNoTrace(t *testing.T, tr trace, d time.Duration) {
	t.Helper()
	var left []string
	if !testwait.Until(d, func() bool { left = leftovers(t, tr); return len(left) == 0 }) {
		t.Fatalf("sandbox %s left traces on the host:\n  %s", tr.name, strings.Join(left, "\n  "))
	}
}

// pgrepSandboxes returns the output of `pgrep -af herald-sandbox.target`.
func pgrepSandboxes() string {
	out, _ := exec.Command("pgrep", "-af", "herald-sandbox.target").Output()
	return strings.TrimSpace(string(out))
}

func TestSandbox(t *testing.T) {
	Require(t)
	bin := testBin(t)
	marker, err := os.CreateTemp("", "herald-sandbox-marker-")
	if err != nil {
		t.Fatal(err)
	}
	marker.Close()
	t.Cleanup(func() { os.Remove(marker.Name()) })
	hostname, _ := os.Hostname()
	mounts := hostMounts(t)

	start := time.Now()
	s, err := Boot(ctxT(t, time.Minute), Options{Shares: []Share{{Host: bin}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot: %v (PID 1 %d)", time.Since(start).Round(time.Millisecond), s.PID1())
	tr := traceOf(t, s, mounts)
	t.Cleanup(func() {
		if t.Failed() {
			s.dump(t)
		}
		s.Close()
	})
	ctx := ctxT(t, 2*time.Minute)

	t.Run("running", func(t *testing.T) {
		out, err := s.Systemctl(ctx, "is-system-running")
		if err != nil || out != "running\n" {
			t.Fatalf("is-system-running = %q, %v; want running", out, err)
		}
		out, _, code, err := s.Run(ctx, "hostname")
		if err != nil || code != 0 || strings.TrimSpace(out) != "herald-sandbox" {
			t.Errorf("hostname in sandbox = %q (exit %d, %v), want herald-sandbox", out, code, err)
		}
		if h, _ := os.Hostname(); h != hostname {
			t.Errorf("host hostname changed from %q to %q", hostname, h)
		}
	})

	t.Run("loopback up", func(t *testing.T) {
		out, _, code, err := s.Run(ctx, "cat", "/sys/class/net/lo/flags")
		if err != nil || code != 0 {
			t.Fatalf("exit %d, %v", code, err)
		}
		if f, _ := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(out), "0x"), 16, 32); f&1 == 0 {
			t.Errorf("lo flags = %s, want IFF_UP", out)
		}
		out, _, _, _ = s.Run(ctx, "ls", "/sys/class/net")
		if strings.Fields(out)[0] != "lo" || len(strings.Fields(out)) != 1 {
			t.Errorf("interfaces in sandbox = %q, want only lo", out)
		}
	})

	t.Run("transient units", func(t *testing.T) {
		_, stderr, code, err := s.Run(ctx, "systemd-run", "--wait", "--unit=sbx-transient-ok", "/bin/true")
		if err != nil || code != 0 {
			t.Fatalf("systemd-run true: exit %d, %v: %s", code, err, stderr)
		}
		_, _, code, err = s.Run(ctx, "systemd-run", "--wait", "--unit=sbx-transient-fail", "/bin/sh", "-c", "exit 3")
		if err != nil || code == 0 {
			t.Fatalf("systemd-run 'exit 3': exit %d, %v; want non-zero", code, err)
		}
		p, err := s.Show(ctx, "sbx-transient-fail.service", "Result", "ExecMainStatus", "ActiveState")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"Result": "exit-code", "ExecMainStatus": "3", "ActiveState": "failed"}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("%s = %q, want %q", k, p[k], v)
			}
		}
	})

	t.Run("hardened transient unit", func(t *testing.T) {
		// PrivateUsers=yes fails with 217/USER under chroot (the kernel
		// refuses CLONE_NEWUSER in a chroot); the sandbox pivot_roots, so
		// herald's hardening set must work.
		args := []string{"--wait", "--pipe", "--unit=sbx-hardened"}
		for _, p := range []string{"PrivateUsers=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
			"PrivateDevices=yes", "NoNewPrivileges=yes", "ProtectKernelTunables=yes", "ProtectControlGroups=yes",
			"RestrictNamespaces=yes", "MemoryDenyWriteExecute=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
			"SystemCallFilter=@system-service", "User=nobody"} {
			args = append(args, "-p", p)
		}
		out, stderr, code, err := s.Run(ctx, "systemd-run", append(args, "/bin/sh", "-c", "id -un; echo ok")...)
		if err != nil || code != 0 || out != "nobody\nok\n" {
			t.Errorf("hardened unit: %q, exit %d, %v: %s", out, code, err, stderr)
		}
	})

	t.Run("notify unit from /etc", func(t *testing.T) {
		unit := "[Unit]\nDescription=sandbox smoke test\n[Service]\nType=notify\nExecStart=" +
			DefaultSharePath + "/notifyhttp -addr 127.0.0.1:8090\n"
		if err := s.WriteFile("/etc/systemd/system/sbx-notify.service", []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Systemctl(ctx, "daemon-reload"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Systemctl(ctx, "start", "sbx-notify.service"); err != nil {
			t.Fatal(err)
		}
		p, err := s.Show(ctx, "sbx-notify.service", "Type", "ActiveState", "SubState", "StatusText", "MainPID")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"Type": "notify", "ActiveState": "active", "SubState": "running", "StatusText": "serving"}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("%s = %q, want %q", k, p[k], v)
			}
		}
		if p["MainPID"] == "0" || p["MainPID"] == "" {
			t.Errorf("MainPID = %q", p["MainPID"])
		}
		body := get(t, s.HTTPClient(), "http://127.0.0.1:8090/x")
		if !strings.Contains(body, "listener=bound path=/x") {
			t.Errorf("body = %q", body)
		}
	})

	t.Run("dbus system bus", func(t *testing.T) {
		out, stderr, code, err := s.Run(ctx, "busctl", "--system", "get-property",
			"org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "Virtualization")
		if err != nil || code != 0 {
			t.Fatalf("busctl: exit %d, %v: %s", code, err, stderr)
		}
		if strings.TrimSpace(out) != `s "container-other"` {
			t.Errorf("Virtualization = %q, want container-other (container=unshare)", out)
		}
		p, err := s.Show(ctx, "dbus.service", "ActiveState")
		if err != nil || p["ActiveState"] != "active" {
			t.Errorf("dbus.service ActiveState = %q, %v", p["ActiveState"], err)
		}
	})

	t.Run("journal", func(t *testing.T) {
		token := fmt.Sprintf("sandbox-journal-%d", time.Now().UnixNano())
		if _, stderr, code, err := s.Run(ctx, "systemd-cat", "-t", "sbx-journal-test", "echo", token); err != nil || code != 0 {
			t.Fatalf("systemd-cat: exit %d, %v: %s", code, err, stderr)
		}
		waitJournal(t, s, func(e map[string]any) bool { return e["MESSAGE"] == token }, "-t", "sbx-journal-test")
		waitJournal(t, s, func(e map[string]any) bool {
			m, _ := e["MESSAGE"].(string)
			return strings.Contains(m, "listening on 127.0.0.1:8090") && e["_SYSTEMD_UNIT"] == "sbx-notify.service"
		}, "-u", "sbx-notify.service", "-t", "notifyhttp")
		// Storage=volatile: the journal lives in /run (RAM) only.
		out, _, _, err := s.Run(ctx, "sh", "-c", "ls -d /run/log/journal/*/ && ls /var/log/journal/*/ 2>/dev/null | wc -l")
		if err != nil || !strings.HasSuffix(out, "\n0\n") {
			t.Errorf("journal storage: %q, %v; want files in /run/log/journal only", out, err)
		}
	})

	t.Run("socket activation over HTTP in the netns", func(t *testing.T) {
		files := map[string]string{
			"/etc/systemd/system/sbx-echo.socket":  "[Socket]\nListenStream=127.0.0.1:8089\n",
			"/etc/systemd/system/sbx-echo.service": "[Service]\nType=notify\nExecStart=" + DefaultSharePath + "/notifyhttp\n",
		}
		for p, c := range files {
			if err := s.WriteFile(p, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Systemctl(ctx, "daemon-reload"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Systemctl(ctx, "start", "sbx-echo.socket"); err != nil {
			t.Fatal(err)
		}
		if p, _ := s.Show(ctx, "sbx-echo.service", "ActiveState"); p["ActiveState"] != "inactive" {
			t.Fatalf("service ActiveState before the first request = %q, want inactive", p["ActiveState"])
		}
		c := s.HTTPClient()
		const n, workers = 200, 4
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:8089/%d", i))
					if err != nil {
						errs <- err
						continue
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf("listener=activated path=/%d\n", i))) {
						err = fmt.Errorf("GET /%d: %s %q", i, resp.Status, b)
					}
					if err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		p, err := s.Show(ctx, "sbx-echo.service", "ActiveState", "SubState")
		if err != nil || p["ActiveState"] != "active" || p["SubState"] != "running" {
			t.Errorf("sbx-echo.service after requests: %v, %v", p, err)
		}
	})

	t.Run("host network is separate", func(t *testing.T) {
		// Sandbox dials reach the sandbox's 127.0.0.1, from a test process
		// that itself stays in the host's network namespace.
		resp, err := s.HTTPClient().Get("http://127.0.0.1:8089/netns")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "listener=activated") {
			t.Errorf("sandbox answer = %q", b)
		}
		self, _ := os.Readlink("/proc/self/ns/net")
		if self == tr.net {
			t.Errorf("test process is in the sandbox's network namespace %s", self)
		}
	})

	t.Run("files", func(t *testing.T) {
		if err := s.WriteFile("/etc/herald-sbx/a.conf", []byte("alpha\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		out, _, _, err := s.Run(ctx, "stat", "-c", "%a %U", "/etc/herald-sbx/a.conf")
		if err != nil || strings.TrimSpace(out) != "640 root" {
			t.Errorf("stat = %q, %v; want 640 root", out, err)
		}
		if _, err := os.Stat("/etc/herald-sbx"); err == nil {
			t.Errorf("/etc/herald-sbx appeared on the host")
		}
		// /var/run is an absolute symlink to /run: it must resolve in the
		// sandbox, not on the host.
		if err := s.WriteFile("/var/run/herald-sbx-symlink", []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, code, _ := s.Run(ctx, "test", "-f", "/run/herald-sbx-symlink"); code != 0 {
			t.Errorf("/run/herald-sbx-symlink missing in the sandbox")
		}
		if _, err := os.Lstat("/run/herald-sbx-symlink"); err == nil {
			t.Errorf("WriteFile through /var/run wrote to the host's /run")
		}

		src := t.TempDir()
		os.MkdirAll(filepath.Join(src, "sub"), 0o755)
		os.WriteFile(filepath.Join(src, "sub", "f"), []byte("beta\n"), 0o751)
		os.Symlink("sub/f", filepath.Join(src, "link"))
		if err := s.CopyIn(src, "/opt/herald-sbx-copy"); err != nil {
			t.Fatal(err)
		}
		out, _, _, err = s.Run(ctx, "sh", "-c", "cat /opt/herald-sbx-copy/link; stat -c %a /opt/herald-sbx-copy/sub/f")
		if err != nil || out != "beta\n751\n" {
			t.Errorf("copied tree: %q, %v", out, err)
		}
		if err := s.CopyIn(filepath.Join(src, "sub", "f"), "/opt/one/f2"); err != nil {
			t.Fatal(err)
		}
		if out, _, _, _ := s.Run(ctx, "cat", "/opt/one/f2"); out != "beta\n" {
			t.Errorf("copied file: %q", out)
		}
	})

	t.Run("share is read-only", func(t *testing.T) {
		_, _, code, err := s.Run(ctx, "touch", DefaultSharePath+"/new")
		if err != nil || code == 0 {
			t.Errorf("touch in the share: exit %d, %v; want failure", code, err)
		}
		if _, err := os.Stat(filepath.Join(bin, "new")); err == nil {
			t.Errorf("file appeared in the host directory")
		}
	})

	t.Run("command killed with its context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cmd := s.Command(cctx, "sleep", "1234")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		inside := func() int {
			_, _, code, _ := s.Run(ctx, "pgrep", "-f", "sleep 1234")
			return code
		}
		testwait.For(t, "sleep to appear in the sandbox", func() bool { return inside() == 0 })
		cancel()
		if err := cmd.Wait(); err == nil {
			t.Error("Wait after cancel: nil error")
		}
		testwait.For(t, "sleep to end in the sandbox after its context ended", func() bool { return inside() == 1 })
	})

	if t.Failed() {
		s.dump(t)
	}
	stop := time.Now()
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	t.Logf("close: %v", time.Since(stop).Round(time.Millisecond))
	waitNoTrace(t, tr, 5*time.Second)
	if _, err := os.Stat(marker.Name()); err != nil {
		t.Errorf("host /tmp marker: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, _, err := s.Run(ctx, "true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	if _, err := s.DialContext(ctx, "tcp", "127.0.0.1:8089"); !errors.Is(err, ErrClosed) {
		t.Errorf("DialContext after Close: %v, want ErrClosed", err)
	}
}

// waitJournal polls Journal(args...) until an entry matches (journald
// receives stream output asynchronously).
func waitJournal(t *testing.T, s *Sandbox, match func(map[string]any) bool, args ...string) {
	t.Helper()
	var entries []map[string]any
	if !testwait.Until(testwait.Timeout, func() bool {
		var err error
		if entries, err = s.Journal(ctxT(t, 10*time.Second), args...); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if match(e) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("journalctl %v: no matching entry in %v", args, entries)
	}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

func TestListenInSandbox(t *testing.T) {
	s := New(t, Options{})
	ln, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("from the test process"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	// The port is on the sandbox's loopback: a unit there reaches it...
	out, _, code, err := s.Run(context.Background(), "curl", "-s", "http://"+ln.Addr().String()+"/")
	if err != nil || code != 0 || out != "from the test process" {
		if _, lerr := exec.LookPath("curl"); lerr != nil {
			t.Skip("curl not installed")
		}
		t.Fatalf("curl in the sandbox: %q code %d err %v", out, code, err)
	}
	// ...and the host's loopback does not have it (another host process
	// could by chance use the same port, but it would not answer this).
	if resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + ln.Addr().String() + "/"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == "from the test process" {
			t.Fatal("a listener opened in the sandbox answers on the host's loopback")
		}
	}
}
