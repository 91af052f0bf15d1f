// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/testsupport/systemdbox"
	"github.com/heraldgw/herald/pkg/testsupport/testbuild"
)

// Addresses in the sandbox's network namespace.
const (
	heraldAddr   = "127.0.0.1:8089" // herald.socket, as shipped
	floorAddr    = "127.0.0.1:8189"
	bareAddr     = "127.0.0.1:8190"
	receiverAddr = "127.0.0.1:9100"
	receiverURL  = "http://" + receiverAddr + "/replies"
	hookPath     = "/hooks/webhook"

	shareGuest      = "/srv/herald-bench"
	stateGuest      = paths.StateDir
	floorStateGuest = "/var/lib/herald-floor" // the floors' StateDirectory
)

// env is the sandbox with herald and the floors installed, the receiver
// listening and a manager connection to its systemd.
type env struct {
	opts  Options
	sbx   *systemdbox.Sandbox
	mgr   *manager
	tmp   string // host temporary directory, removed by Close
	state string // host directory bound at /var/lib/herald
	// floorState is the host directory bound at /var/lib/herald-floor: the
	// durable relay's database is on the same disk as herald's.
	floorState string
	recv       *receiver
	trk        *tracker
	hc         *http.Client
	log        func(format string, args ...any)

	heraldService string // units/herald.service as shipped
	// heraldFiles are herald's units, sysusers file and packaged
	// configuration, by their path in a sandbox.
	heraldFiles    map[string]string
	systemdVersion string // of the sandbox's PID 1
}

// build compiles the floor, the profiling herald and the test build of
// herald (with the fault platform, for the hung-stop measure) into dir.
func build(ctx context.Context, repo, dir string) error {
	for _, b := range []struct{ pkg, out, tags string }{
		{"./cmd/herald-bench/internal/floor", "herald-floor", ""},
		{"./cmd/herald-bench/internal/heraldprof", "herald-prof", ""},
		{"./cmd/herald", "herald-test", testbuild.Tag},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", b.tags, "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("bench: go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// setup builds, boots and installs everything. On error it cleans up what
// it started.
func setup(ctx context.Context, opts Options, logf func(string, ...any)) (e *env, err error) {
	e = &env{opts: opts, log: logf, trk: newTracker()}
	defer func() {
		if err != nil {
			e.Close()
			e = nil
		}
	}()
	e.tmp, err = os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(e.tmp, "bin")
	// The state directory lives on the host's disk, not in the sandbox's
	// RAM overlay: on tmpfs fsync costs nothing and "durable" would be
	// meaningless.
	e.state = filepath.Join(e.tmp, "state")
	e.floorState = filepath.Join(e.tmp, "floor-state")
	for _, d := range []string{bin, e.state, e.floorState} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return e, err
		}
	}
	logf("building the floor and the profiling herald")
	if err := build(ctx, opts.Repo, bin); err != nil {
		return e, err
	}
	if err := copyFile(opts.Herald, filepath.Join(bin, "herald"), 0o755); err != nil {
		return e, fmt.Errorf("bench: herald binary: %w (run `make build` first)", err)
	}
	units := filepath.Join(opts.Repo, "units")
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(units, name))
		return string(b), err
	}
	e.heraldService, err = read("herald.service")
	if err != nil {
		return e, err
	}
	heraldSocket, err := read("herald.socket")
	if err != nil {
		return e, err
	}
	adminSocket, err := read("herald-admin.socket")
	if err != nil {
		return e, err
	}
	sysusers, err := read("herald.sysusers")
	if err != nil {
		return e, err
	}
	packaged, err := os.ReadFile(filepath.Join(opts.Repo, "packaging", "herald.yaml"))
	if err != nil {
		return e, err
	}

	logf("booting the sandbox")
	bctx, cancel := context.WithTimeout(ctx, systemdbox.DefaultBootTimeout)
	defer cancel()
	e.sbx, err = systemdbox.Boot(bctx, systemdbox.Options{
		Name: fmt.Sprintf("herald-bench-%d", os.Getpid()),
		Shares: []systemdbox.Share{
			{Host: bin, Guest: shareGuest},
			{Host: e.state, Guest: stateGuest},
			{Host: e.floorState, Guest: floorStateGuest},
		},
	})
	if err != nil {
		return e, err
	}
	// The state share is bound read-only like every share; make it
	// writable inside the sandbox's own mount namespace (the host's mount
	// of the directory is not touched).
	for _, d := range []string{stateGuest, floorStateGuest} {
		if _, err := e.run(ctx, "mount", "-o", "remount,bind,rw", d); err != nil {
			return e, err
		}
	}
	e.heraldFiles = map[string]string{
		"/etc/systemd/system/herald.service":      e.heraldService,
		"/etc/systemd/system/herald.socket":       heraldSocket,
		"/etc/systemd/system/herald-admin.socket": adminSocket,
		"/usr/lib/sysusers.d/herald.conf":         sysusers,
		paths.ConfigFile:                          string(packaged),
	}
	files := map[string]string{
		"/etc/systemd/system/floor.service":      floorService(e.heraldService, "/usr/bin/herald-floor -reply-url "+receiverURL, "floor.socket", "herald-floor"),
		"/etc/systemd/system/floor.socket":       floorSocket(heraldSocket, floorAddr, "floor.service"),
		"/etc/systemd/system/floor-bare.service": bareService("/usr/bin/herald-floor -reply-url "+receiverURL, "floor-bare.socket"),
		"/etc/systemd/system/floor-bare.socket":  floorSocket(heraldSocket, bareAddr, "floor-bare.service"),
	}
	out, err := e.install(ctx, e.sbx, files, `
install -m 0755 `+shareGuest+`/herald-floor /usr/bin/herald-floor
install -m 0755 `+shareGuest+`/herald-prof /usr/bin/herald-prof
install -m 0755 `+shareGuest+`/herald-test /usr/bin/herald-test
systemctl start floor.socket floor-bare.socket
systemctl --version | head -n1`)
	if err != nil {
		return e, err
	}
	e.systemdVersion = strings.TrimSpace(out)

	e.mgr, err = newManager(ctx, e.sbx.PID1())
	if err != nil {
		return e, err
	}
	ln, err := listenInSandbox(e.sbx, receiverAddr)
	if err != nil {
		return e, err
	}
	e.recv = newReceiver(ln, e.trk)
	e.hc = &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			DialContext:         e.sbx.DialContext,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
	return e, nil
}

// install writes herald's files (e.heraldFiles), then files, into sbx,
// installs herald from the share with its user, credentials directory and
// sockets, then runs more (shell commands); it returns their output.
func (e *env) install(ctx context.Context, sbx *systemdbox.Sandbox, files map[string]string, more string) (string, error) {
	for _, m := range []map[string]string{e.heraldFiles, files, {paths.CredentialsDir + "/.keep": ""}} {
		for p, c := range m {
			if err := sbx.WriteFile(p, []byte(c), 0o644); err != nil {
				return "", err
			}
		}
	}
	script := `set -e
install -m 0755 ` + shareGuest + `/herald /usr/bin/herald
rm -f ` + paths.CredentialsDir + `/.keep
chmod 0700 ` + paths.CredentialsDir + `
systemd-sysusers
systemctl daemon-reload
systemctl start herald.socket herald-admin.socket` + more
	return runIn(ctx, sbx, "sh", "-c", script)
}

// run runs a command in the sandbox; a non-zero exit is an error.
func (e *env) run(ctx context.Context, name string, args ...string) (string, error) {
	return runIn(ctx, e.sbx, name, args...)
}

// listenInSandbox opens a TCP listener in the sandbox's network
// namespace, so that services in the sandbox reach the bench at the
// sandbox's 127.0.0.1.
func listenInSandbox(sbx *systemdbox.Sandbox, addr string) (net.Listener, error) {
	ln, err := sbx.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: listen %s in the sandbox: %w", addr, err)
	}
	return ln, nil
}

// runIn runs a command in sbx; a non-zero exit is an error.
func runIn(ctx context.Context, sbx *systemdbox.Sandbox, name string, args ...string) (string, error) {
	out, stderr, code, err := sbx.Run(ctx, name, args...)
	if err != nil {
		return out, err
	}
	if code != 0 {
		return out, fmt.Errorf("bench: %s %s: exit %d: %s", name, strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	return out, nil
}

// Close stops everything the bench started: the receiver, the D-Bus
// connection, the sandbox (and with it every process in it) and the
// temporary directory.
func (e *env) Close() error {
	var errs []error
	if e.hc != nil {
		e.hc.CloseIdleConnections()
	}
	if e.recv != nil {
		e.recv.Close()
	}
	if e.mgr != nil {
		e.mgr.Close()
	}
	if e.sbx != nil {
		if err := e.sbx.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.tmp != "" {
		if err := os.RemoveAll(e.tmp); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bench: cleanup: %v", errs)
	}
	return nil
}

// sender returns a webhook sender for a unit's listener.
func (e *env) sender(addr, prefix string) *sender {
	return &sender{client: e.hc, url: "http://" + addr + hookPath, trk: e.trk, prefix: prefix}
}

// heraldConf is the bench's herald configuration.
type heraldConf struct {
	Sync           string
	WordDelay      time.Duration
	DrainTimeout   time.Duration
	AdapterTimeout time.Duration
	Stuck          bool
	// Media lets herald fetch attachments from loopback (the bench's file
	// server in the sandbox).
	Media bool
	// NATS, if set, puts the store on JetStream (store.backend: nats) at
	// these URLs, with Replicas replicas of the store's stream.
	NATS     []string
	Replicas int
}

var confTemplate = template.Must(template.New("herald.yaml").Parse(`# herald-bench configuration
log:
  level: info
shutdown:
  drain_timeout: {{.DrainTimeout}}
  adapter_timeout: {{.AdapterTimeout}}
store:
  sync: {{.Sync}}
{{- if .NATS}}
  backend: nats
  nats:
    urls: [{{range $i, $u := .NATS}}{{if $i}}, {{end}}"{{$u}}"{{end}}]
    replicas: {{.Replicas}}
cluster:
  enabled: true
  node_id: bench
{{- end}}
delivery:
  initial_backoff: 200ms
  max_backoff: 2s
agent:
  kind: echo
  echo:
    word_delay: {{.WordDelay}}
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
    reply_url: ` + receiverURL + `
{{- if .Media}}
media:
  allow_private: true
{{- end}}
{{- if .Stuck}}
  stuck:
    type: fault
    allow_all: true
    hang_stop: true
{{- end}}
`))

func (c heraldConf) render() string {
	if c.Sync == "" {
		c.Sync = "full"
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 20 * time.Second
	}
	if c.AdapterTimeout == 0 {
		c.AdapterTimeout = 5 * time.Second
	}
	var b bytes.Buffer
	if err := confTemplate.Execute(&b, c); err != nil {
		panic(err) // the template is a constant: a failure is a bug here
	}
	return b.String()
}

// configure stops herald, installs config (the packaged one if empty),
// optionally empties the state directory, and resets start limits. herald
// is left stopped.
func (e *env) configure(ctx context.Context, config string, freshState bool) error {
	if _, err := e.mgr.stop(ctx, "herald.service"); err != nil {
		return err
	}
	if err := e.sbx.WriteFile(paths.ConfigFile, []byte(config), 0o644); err != nil {
		return err
	}
	if freshState {
		if err := emptyDir(e.state); err != nil {
			return err
		}
	}
	e.mgr.resetFailed(ctx, "herald.service", "herald.socket", "herald-admin.socket")
	return nil
}

// emptyDir removes everything in dir.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		if err := os.RemoveAll(filepath.Join(dir, ent.Name())); err != nil {
			return err
		}
	}
	return nil
}

// dropIn installs (or with content "" removes) a drop-in for unit and
// reloads systemd.
func (e *env) dropIn(ctx context.Context, unit, content string) error {
	p := "/etc/systemd/system/" + unit + ".d/bench.conf"
	var err error
	if content == "" {
		_, err = e.run(ctx, "rm", "-f", p)
	} else {
		err = e.sbx.WriteFile(p, []byte(content), 0o644)
	}
	if err != nil {
		return err
	}
	_, err = e.run(ctx, "systemctl", "daemon-reload")
	return err
}

// memory is a process's memory as the kernel and systemd see it.
type memory struct {
	VmRSS, RssAnon, RssFile, RssShmem float64 // bytes, /proc/<pid>/status
	Cgroup                            float64 // bytes, MemoryCurrent (NaN if unknown)
}

// memoryOf reads the main process's memory of unit.
func (e *env) memoryOf(ctx context.Context, unit string) (memory, error) {
	m := memory{}
	pid, err := e.mgr.uintProp(ctx, unit, "Service", "MainPID")
	if err != nil {
		return m, err
	}
	if pid == 0 {
		return m, fmt.Errorf("bench: %s has no main process", unit)
	}
	out, err := e.run(ctx, "cat", fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.VmRSS = n * 1024
		case "RssAnon":
			m.RssAnon = n * 1024
		case "RssFile":
			m.RssFile = n * 1024
		case "RssShmem":
			m.RssShmem = n * 1024
		}
	}
	m.Cgroup = math.NaN()
	if c, err := e.mgr.uintProp(ctx, unit, "Unit", "MemoryCurrent"); err == nil && c != ^uint64(0) {
		m.Cgroup = float64(c)
	}
	if m.VmRSS == 0 {
		return m, fmt.Errorf("bench: no VmRSS for %s (pid %d)", unit, pid)
	}
	return m, nil
}

// adminStatus fetches herald's /status over its admin socket.
func (e *env) adminStatus(ctx context.Context) (map[string]any, error) {
	b, err := e.adminGet(ctx, "/status")
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		return nil, fmt.Errorf("bench: admin status: %w: %s", err, b)
	}
	return m, nil
}

// adminGet fetches a path of herald's admin endpoint over its socket,
// reached through the sandbox's root.
func (e *env) adminGet(ctx context.Context, path string) (string, error) {
	sock := fmt.Sprintf("/proc/%d/root%s", e.sbx.PID1(), paths.AdminSocket)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer c.CloseIdleConnections()
	return fetch(ctx, c, "http://herald"+path)
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
