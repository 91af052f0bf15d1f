// SPDX-License-Identifier: Apache-2.0

package activation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"
)

// The activation protocol is tested through a child process: the test
// binary re-executes itself with the sockets in cmd.ExtraFiles (fds 3…) and
// LISTEN_FDS/LISTEN_FDNAMES in its environment. LISTEN_PID must equal the
// child's PID, which the parent cannot know before exec, so the child sets it
// itself when envFixPID is set (go-systemd's own tests use the same trick,
// FIX_LISTEN_PID in examples/activation).
const (
	envChild  = "HERALD_TEST_ACTIVATION_CHILD" // JSON-encoded []listenSpec
	envFixPID = "HERALD_TEST_FIX_LISTEN_PID"
)

// listenSpec is one Listen call the child makes.
type listenSpec struct {
	Name, Network, Fallback string
	// Dial lists "network address" pairs the child connects to and accepts
	// from through the returned listener; empty means the listener's Addr.
	Dial []string
}

type listenResult struct {
	Activated  bool
	Network    string
	Addr       string
	Err        string
	RoundTrips int
	// PathAfterClose reports whether a unix socket path still exists after
	// the listener was closed.
	PathAfterClose bool
}

type childReport struct {
	LoadErr  string
	Warnings []string
	EnvAfter []string // LISTEN_* still set after Load
	Results  []listenResult
	Unused   []string
}

func TestMain(m *testing.M) {
	if specs := os.Getenv(envChild); specs != "" {
		os.Exit(child(specs))
	}
	goleak.VerifyTestMain(m)
}

func child(specsJSON string) int {
	var specs []listenSpec
	if err := json.Unmarshal([]byte(specsJSON), &specs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if os.Getenv(envFixPID) != "" {
		_ = os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	log, hook := test.NewNullLogger()
	var rep childReport
	set, err := Load(logrus.NewEntry(log))
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel {
			rep.Warnings = append(rep.Warnings, e.Message)
		}
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LISTEN_") {
			rep.EnvAfter = append(rep.EnvAfter, kv)
		}
	}
	if err != nil {
		rep.LoadErr = err.Error()
	} else {
		for _, sp := range specs {
			rep.Results = append(rep.Results, exercise(set, sp))
		}
		rep.Unused = set.Unused()
		_ = set.Close()
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 2
	}
	return 0
}

// exercise calls Listen and proves the listener accepts connections.
func exercise(set *Set, sp listenSpec) listenResult {
	ln, activated, err := set.Listen(sp.Name, sp.Network, sp.Fallback)
	if err != nil {
		return listenResult{Err: err.Error()}
	}
	r := listenResult{Activated: activated, Network: ln.Addr().Network(), Addr: ln.Addr().String()}
	dials := sp.Dial
	if len(dials) == 0 {
		dials = []string{ln.Addr().Network() + " " + ln.Addr().String()}
	}
	for _, d := range dials {
		network, addr, _ := strings.Cut(d, " ")
		if err := roundTrip(ln, network, addr); err != nil {
			r.Err = err.Error()
			break
		}
		r.RoundTrips++
	}
	_ = ln.Close()
	if r.Network == "unix" {
		_, err := os.Stat(r.Addr)
		r.PathAfterClose = err == nil
	}
	return r
}

func roundTrip(ln net.Listener, network, addr string) error {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	s, err := ln.Accept()
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return fmt.Errorf("read %q", buf)
	}
	return nil
}

// runChild runs the test binary as an activated child with files as fds 3….
func runChild(t *testing.T, files []*os.File, env []string, specs ...listenSpec) childReport {
	t.Helper()
	js, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+string(js))
	cmd.Env = append(cmd.Env, env...)
	// The race detector sleeps 1 s at exit by default.
	cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.ExtraFiles = files
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, stderr.String())
	}
	var rep childReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("child report %q: %v\nstderr: %s", stdout.String(), err, stderr.String())
	}
	return rep
}

func activatedEnv(names ...string) []string {
	return []string{
		"LISTEN_FDS=" + strconv.Itoa(len(names)),
		"LISTEN_FDNAMES=" + strings.Join(names, ":"),
		envFixPID + "=1",
	}
}

// tcpFile returns a listening TCP socket's file and its address. The
// listener itself is closed: the file keeps the socket open.
func tcpFile(t *testing.T) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	t.Cleanup(func() { _ = f.Close() })
	return f, addr
}

// unixFile is tcpFile for a unix socket at a path in a temporary directory,
// as systemd would pass it (the path stays after the listener is closed).
func unixFile(t *testing.T) (*os.File, string) {
	t.Helper()
	path := shortTemp(t, "admin.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close()
	t.Cleanup(func() { _ = f.Close() })
	return f, path
}

// shortTemp returns a path in a fresh temporary directory short enough for
// sun_path.
func shortTemp(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "act")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

func TestActivatedTCP(t *testing.T) {
	f, addr := tcpFile(t)
	rep := runChild(t, []*os.File{f}, activatedEnv("http"),
		listenSpec{Name: "http", Network: "tcp", Fallback: "127.0.0.1:0"})
	if rep.LoadErr != "" || len(rep.Results) != 1 {
		t.Fatalf("report %+v", rep)
	}
	r := rep.Results[0]
	if !r.Activated || r.Addr != addr || r.RoundTrips != 1 || r.Err != "" {
		t.Errorf("result %+v, want activated listener on %s with one round trip", r, addr)
	}
	if len(rep.EnvAfter) != 0 {
		t.Errorf("LISTEN_* left in the environment: %q", rep.EnvAfter)
	}
	if len(rep.Unused) != 0 || len(rep.Warnings) != 0 {
		t.Errorf("unused %q, warnings %q", rep.Unused, rep.Warnings)
	}
}

func TestActivatedTwoNamesWithUnixSocket(t *testing.T) {
	tf, taddr := tcpFile(t)
	uf, upath := unixFile(t)
	rep := runChild(t, []*os.File{tf, uf}, activatedEnv("http", "admin"),
		listenSpec{Name: "admin", Network: "unix", Fallback: shortTemp(t, "fallback.sock")},
		listenSpec{Name: "http", Network: "tcp", Fallback: "127.0.0.1:0"},
	)
	if rep.LoadErr != "" || len(rep.Results) != 2 {
		t.Fatalf("report %+v", rep)
	}
	admin, http := rep.Results[0], rep.Results[1]
	if !admin.Activated || admin.Network != "unix" || admin.Addr != upath || admin.RoundTrips != 1 {
		t.Errorf("admin %+v, want activated unix listener at %s", admin, upath)
	}
	if !admin.PathAfterClose {
		t.Errorf("closing the inherited unix listener unlinked %s; systemd owns that path", upath)
	}
	if !http.Activated || http.Addr != taddr || http.RoundTrips != 1 {
		t.Errorf("http %+v, want activated listener on %s", http, taddr)
	}
}

func TestActivatedSameNameCombined(t *testing.T) {
	f1, a1 := tcpFile(t)
	f2, a2 := tcpFile(t)
	rep := runChild(t, []*os.File{f1, f2}, activatedEnv("http", "http"),
		listenSpec{Name: "http", Network: "tcp", Fallback: "127.0.0.1:0", Dial: []string{"tcp " + a2, "tcp " + a1, "tcp " + a2}})
	if rep.LoadErr != "" || len(rep.Results) != 1 {
		t.Fatalf("report %+v", rep)
	}
	r := rep.Results[0]
	if !r.Activated || r.Addr != a1 || r.RoundTrips != 3 || r.Err != "" {
		t.Errorf("result %+v, want one listener (Addr %s) accepting from both sockets", r, a1)
	}
}

func TestUnusedNames(t *testing.T) {
	tf, _ := tcpFile(t)
	uf, _ := unixFile(t)
	rep := runChild(t, []*os.File{tf, uf}, activatedEnv("http", "metrics"),
		listenSpec{Name: "http", Network: "tcp", Fallback: "127.0.0.1:0"})
	if rep.LoadErr != "" {
		t.Fatal(rep.LoadErr)
	}
	if !slices.Equal(rep.Unused, []string{"metrics"}) {
		t.Errorf("Unused = %q, want [metrics]", rep.Unused)
	}
}

func TestDefaultNames(t *testing.T) {
	f, addr := tcpFile(t)
	// No LISTEN_FDNAMES: go-systemd names the fd LISTEN_FD_3.
	rep := runChild(t, []*os.File{f}, []string{"LISTEN_FDS=1", envFixPID + "=1"},
		listenSpec{Name: "http", Network: "tcp", Fallback: "127.0.0.1:0"})
	if len(rep.Results) != 1 || rep.Results[0].Activated || rep.Results[0].Addr == addr {
		t.Errorf("results %+v: an unnamed fd must not be taken as http", rep.Results)
	}
	if !slices.Equal(rep.Unused, []string{"LISTEN_FD_3"}) {
		t.Errorf("Unused = %q, want [LISTEN_FD_3]", rep.Unused)
	}
}

func TestNotAListenerIsAnError(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uf, err := udp.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	_ = udp.Close()
	defer uf.Close()

	regular, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()

	// A connected TCP socket: what Accept=yes would pass.
	lf, addr := tcpFile(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cf, err := conn.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()

	tests := []struct {
		name  string
		files []*os.File
		names []string
		want  []string
	}{
		{"udp", []*os.File{uf}, []string{"http"}, []string{`fd 3 (index 0, name "http")`, "not a stream socket"}},
		{"regular file", []*os.File{regular}, []string{"admin"}, []string{`fd 3 (index 0, name "admin")`, "not a socket"}},
		{"connection", []*os.File{cf}, []string{"connection"}, []string{`fd 3 (index 0, name "connection")`, "not listening"}},
		{"second of two", []*os.File{lf, regular}, []string{"http", "admin"}, []string{`fd 4 (index 1, name "admin")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := runChild(t, tt.files, activatedEnv(tt.names...), listenSpec{Name: "http", Network: "tcp", Fallback: "127.0.0.1:0"})
			if rep.LoadErr == "" {
				t.Fatalf("Load succeeded: %+v", rep)
			}
			for _, w := range tt.want {
				if !strings.Contains(rep.LoadErr, w) {
					t.Errorf("Load error %q does not contain %q", rep.LoadErr, w)
				}
			}
		})
	}
}

func TestListenPIDMismatch(t *testing.T) {
	f, addr := tcpFile(t)
	for _, env := range [][]string{
		{"LISTEN_FDS=1", "LISTEN_FDNAMES=http", "LISTEN_PID=1"},
		{"LISTEN_FDS=1", "LISTEN_FDNAMES=http"},
	} {
		rep := runChild(t, []*os.File{f}, env, listenSpec{Name: "http", Network: "tcp", Fallback: "127.0.0.1:0"})
		if rep.LoadErr != "" || len(rep.Results) != 1 {
			t.Fatalf("%q: report %+v", env, rep)
		}
		if r := rep.Results[0]; r.Activated || r.Addr == addr || r.RoundTrips != 1 {
			t.Errorf("%q: result %+v, want a fallback listener", env, r)
		}
		if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "LISTEN_PID is not this process") {
			t.Errorf("%q: warnings %q, want one about LISTEN_PID", env, rep.Warnings)
		}
		if len(rep.EnvAfter) != 0 {
			t.Errorf("%q: LISTEN_* left in the environment: %q", env, rep.EnvAfter)
		}
	}
}

func TestNoActivationFallsBack(t *testing.T) {
	for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	log, hook := test.NewNullLogger()
	set, err := Load(logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	ln, activated, err := set.Listen("http", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if activated {
		t.Error("activated = true without LISTEN_FDS")
	}
	if err := roundTrip(ln, "tcp", ln.Addr().String()); err != nil {
		t.Error(err)
	}
	if len(hook.AllEntries()) != 0 {
		t.Errorf("logged %v", hook.AllEntries())
	}
	if u := set.Unused(); len(u) != 0 {
		t.Errorf("Unused = %q", u)
	}
	// A nil Set behaves like an empty one.
	var none *Set
	ln2, activated, err := none.Listen("http", "tcp", "127.0.0.1:0")
	if err != nil || activated {
		t.Fatalf("nil Set: %v %v", activated, err)
	}
	_ = ln2.Close()
	if _, _, err := none.Listen("http", "tcp", "256.0.0.1:0"); err == nil || !strings.HasPrefix(err.Error(), "activation: http: listen tcp 256.0.0.1:0: ") {
		t.Errorf("bad fallback: err = %v", err)
	}
}

func TestUnixFallback(t *testing.T) {
	t.Run("creates directory and socket", func(t *testing.T) {
		path := filepath.Join(shortTemp(t, "run"), "herald", "admin.sock")
		ln, activated, err := (*Set)(nil).Listen("admin", "unix", path)
		if err != nil || activated {
			t.Fatalf("Listen: %v %v", activated, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket mode %v, want socket 0660", fi.Mode())
		}
		di, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm()&^0o750 != 0 {
			t.Errorf("directory mode %v, want at most 0750", di.Mode().Perm())
		}
		if err := roundTrip(ln, "unix", path); err != nil {
			t.Error(err)
		}
		_ = ln.Close()
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket we bound not unlinked on Close: %v", err)
		}
	})
	t.Run("replaces stale socket", func(t *testing.T) {
		path := shortTemp(t, "admin.sock")
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		_ = old.Close() // leaves a socket file nobody accepts on
		ln, _, err := (*Set)(nil).Listen("admin", "unix", path)
		if err != nil {
			t.Fatalf("stale socket not replaced: %v", err)
		}
		if err := roundTrip(ln, "unix", path); err != nil {
			t.Error(err)
		}
		_ = ln.Close()
	})
	t.Run("refuses live socket", func(t *testing.T) {
		path := shortTemp(t, "admin.sock")
		live, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		go func() {
			if c, err := live.Accept(); err == nil {
				_ = c.Close()
			}
		}()
		if ln, _, err := (*Set)(nil).Listen("admin", "unix", path); err == nil || !strings.Contains(err.Error(), "in use") {
			if ln != nil {
				_ = ln.Close()
			}
			t.Fatalf("err = %v, want in use", err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("live socket removed: %v", err)
		}
	})
	t.Run("refuses regular file", func(t *testing.T) {
		path := shortTemp(t, "admin.sock")
		if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := (*Set)(nil).Listen("admin", "unix", path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("err = %v, want not a socket", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "data" {
			t.Error("regular file was touched")
		}
	})
	t.Run("abstract", func(t *testing.T) {
		name := "@herald-test-" + strconv.Itoa(os.Getpid())
		ln, _, err := (*Set)(nil).Listen("admin", "unix", name)
		if err != nil {
			t.Fatal(err)
		}
		if err := roundTrip(ln, "unix", name); err != nil {
			t.Error(err)
		}
		_ = ln.Close()
	})
}

func TestMultiListenerClose(t *testing.T) {
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	m := newMultiListener(lns)
	if err := roundTrip(m, "tcp", lns[1].Addr().String()); err != nil {
		t.Fatal(err)
	}
	// An Accept blocked when Close is called must return.
	errc := make(chan error, 1)
	go func() {
		_, err := m.Accept()
		errc <- err
	}()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if _, err := m.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Accept: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// goleak (TestMain) checks the accept goroutines ended.
}
