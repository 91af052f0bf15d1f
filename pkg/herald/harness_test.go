// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/testsupport/testbuild"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// The tests in this package run the real herald binary, built once with
// -race, as a child process: signals, exit codes, sd_notify datagrams and
// inherited sockets are then exactly what systemd would see.

var heraldBin string

func TestMain(m *testing.M) {
	// Socket-activation shim: re-executed by tests to become herald with
	// LISTEN_PID set to its own pid (see startActivated).
	if os.Getenv("HERALD_TEST_ACTIVATE_EXEC") != "" {
		activateExec()
		return
	}
	dir, err := os.MkdirTemp("", "herald-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	heraldBin = filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-race", "-tags", testbuild.Tag, "-o", heraldBin, "github.com/heraldgw/herald/cmd/herald")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building herald:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// activateExec turns this test binary into herald, keeping the fds 3… it
// was given, with LISTEN_PID = its (and so herald's) pid: what systemd does
// before exec.
func activateExec() {
	os.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid()))
	os.Unsetenv("HERALD_TEST_ACTIVATE_EXEC")
	bin := os.Getenv("HERALD_TEST_BIN")
	args := append([]string{bin}, os.Args[1:]...)
	err := syscall.Exec(bin, args, os.Environ())
	fmt.Fprintln(os.Stderr, "exec herald:", err)
	os.Exit(127)
}

// testConfig is a configuration template; fields are filled by writeConfig.
type testConfig struct {
	Dir       string
	HTTP      string
	ReplyURL  string
	Drain     string
	Adapter   string
	WordDelay string
	MaxConns  int    // listen.max_connections; 0: the default
	Extra     string // appended verbatim under platforms:
	Top       string // appended verbatim at the top level
	Agent     string // the agent: section; default the echo agent
	Metrics   string // listen.metrics, if set
}

const configTemplate = `state_dir: {{.Dir}}/state
listen:
  http: {{.HTTP}}
{{- if .Metrics}}
  metrics: {{.Metrics}}
{{- end}}
{{- if .MaxConns}}
  max_connections: {{.MaxConns}}
{{- end}}
admin:
  socket: {{.Dir}}/admin.sock
log:
  level: debug
  format: json
shutdown:
  drain_timeout: {{.Drain}}
  adapter_timeout: {{.Adapter}}
delivery:
  initial_backoff: 50ms
  max_backoff: 500ms
{{- if .Agent}}
{{.Agent}}
{{- else}}
agent:
  kind: echo
  echo:
    word_delay: {{.WordDelay}}
{{- end}}
{{.Top}}
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
{{- if .ReplyURL}}
    reply_url: {{.ReplyURL}}
{{- end}}
{{.Extra}}
`

func writeConfig(t testing.TB, c testConfig) string {
	t.Helper()
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	if c.HTTP == "" {
		c.HTTP = "127.0.0.1:0"
	}
	if c.Drain == "" {
		c.Drain = "2s"
	}
	if c.Adapter == "" {
		c.Adapter = "500ms"
	}
	if c.WordDelay == "" {
		c.WordDelay = "0s"
	}
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(configTemplate)).Execute(&b, c); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.Dir, "herald.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// proc is a running herald.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []map[string]any // JSON log entries
	raw   bytes.Buffer
	seen  chan struct{}
}

type startOpts struct {
	env   []string
	files []*os.File // passed as fds 3… (socket activation)
	shim  bool       // exec through activateExec so LISTEN_PID matches
	args  []string   // default: run --config <cfg>
}

func start(t testing.TB, cfg string, o startOpts) *proc {
	t.Helper()
	args := o.args
	if args == nil {
		args = []string{"run", "--config", cfg}
	}
	bin := heraldBin
	// A -race binary sleeps 1s at exit by default; stop timings would
	// include it.
	env := append(os.Environ(), "HERALD_TEST=1", "GORACE=atexit_sleep_ms=0")
	env = filterEnv(env, "NOTIFY_SOCKET", "LISTEN_", "WATCHDOG_", "INVOCATION_ID", "JOURNAL_STREAM", "MANAGERPID")
	if o.shim {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin = self
		env = append(env, "HERALD_TEST_ACTIVATE_EXEC=1", "HERALD_TEST_BIN="+heraldBin)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(env, o.env...)
	cmd.ExtraFiles = o.files
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	p := &proc{t: t, cmd: cmd, done: make(chan struct{}), seen: make(chan struct{}, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.raw.WriteString(line + "\n")
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				p.lines = append(p.lines, m)
			}
			p.mu.Unlock()
			select {
			case p.seen <- struct{}{}:
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("herald pid %d output:\n%s", cmd.Process.Pid, p.output())
		}
	})
	return p
}

func filterEnv(env []string, prefixes ...string) []string {
	out := env[:0:0]
next:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitLog waits for a JSON log entry whose fields contain want (string
// values compared by substring) and returns it.
func (p *proc) waitLog(want map[string]string, timeout time.Duration) map[string]any {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	checked := 0
	for {
		p.mu.Lock()
		for ; checked < len(p.lines); checked++ {
			if matches(p.lines[checked], want) {
				e := p.lines[checked]
				p.mu.Unlock()
				return e
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-p.done:
			p.mu.Lock()
			for ; checked < len(p.lines); checked++ {
				if matches(p.lines[checked], want) {
					e := p.lines[checked]
					p.mu.Unlock()
					return e
				}
			}
			p.mu.Unlock()
			p.t.Fatalf("herald exited (%v) without logging %v", p.err, want)
		case <-deadline.C:
			p.t.Fatalf("no log entry %v within %v", want, timeout)
		}
	}
}

func matches(entry map[string]any, want map[string]string) bool {
	for k, v := range want {
		got, ok := entry[k]
		if !ok || !strings.Contains(fmt.Sprint(got), v) {
			return false
		}
	}
	return true
}

// ready waits for the ready log line and returns the HTTP address.
func (p *proc) ready() string {
	p.t.Helper()
	e := p.waitLog(map[string]string{"msg": "herald ready"}, 30*time.Second)
	return fmt.Sprint(e["http"])
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the exit and returns the exit code (-1 if killed).
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("herald did not exit within %v", timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// post sends a webhook message and returns the status code.
func post(t testing.TB, addr, id, conv, text string) (int, error) {
	t.Helper()
	body := fmt.Sprintf(`{"conversation_id":%q,"user_id":"u1","text":%q}`, conv, text)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/webhook", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// runHerald runs a herald command to completion and returns its combined
// output.
func runHerald(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(heraldBin, args...)
	// A configuration without state_dir defaults to ./.herald: keep it out
	// of the source tree.
	cmd.Dir = t.TempDir()
	cmd.Env = filterEnv(os.Environ(), "NOTIFY_SOCKET", "LISTEN_", "WATCHDOG_", "INVOCATION_ID", "JOURNAL_STREAM", "MANAGERPID")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitStatus polls the admin endpoint until cond holds.
func waitStatus(t testing.TB, dir string, cond func(adminapi.StatusReport) bool) adminapi.StatusReport {
	t.Helper()
	client := adminapi.AdminClient(filepath.Join(dir, "admin.sock"), 2*time.Second)
	var last adminapi.StatusReport
	if !testwait.Until(testwait.Timeout, func() bool {
		resp, err := client.Get("http://herald/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var s adminapi.StatusReport
		if json.NewDecoder(resp.Body).Decode(&s) != nil {
			return false
		}
		last = s
		return cond(s)
	}) {
		t.Fatalf("status condition not met; last status %+v", last)
	}
	return last
}
