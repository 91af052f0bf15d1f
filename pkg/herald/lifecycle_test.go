// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/systemd/notify/notifytest"
)

// lifecycleDatagrams drops STATUS-only datagrams, which are progress
// reports, and keeps the state changes systemd acts on.
func lifecycleDatagrams(all []string) []string {
	var out []string
	for _, d := range all {
		if strings.HasPrefix(d, "STATUS=") && !strings.Contains(d, "\n") {
			continue
		}
		out = append(out, d)
	}
	return out
}

func TestNotifySequenceStartStop(t *testing.T) {
	sock := notifytest.Listen(t)
	cfg := writeConfig(t, testConfig{})
	p := start(t, cfg, startOpts{env: []string{"NOTIFY_SOCKET=" + sock.Path()}})
	sock.WaitFor(t, "READY=1", 30*time.Second)
	p.ready()
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	got := lifecycleDatagrams(sock.All())
	want := []string{
		"READY=1\nSTATUS=ready: 1/1 platforms connected; 0 turns in flight",
		"STOPPING=1\nSTATUS=stopping: draining 0 turns, 2s left",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("datagrams:\n%q\nwant:\n%q", got, want)
	}
	if n := sock.Count("EXTEND_TIMEOUT_USEC"); n != 0 {
		t.Fatalf("%d EXTEND_TIMEOUT_USEC with nothing to drain", n)
	}
}

func TestNotifySequenceReload(t *testing.T) {
	sock := notifytest.Listen(t)
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir})
	p := start(t, cfg, startOpts{env: []string{"NOTIFY_SOCKET=" + sock.Path()}})
	sock.WaitFor(t, "READY=1", 30*time.Second)
	p.ready()

	// Accepted: add a platform.
	writeConfig(t, testConfig{Dir: dir, Extra: "  spare:\n    type: fault\n    allow_all: true\n"})
	p.signal(syscall.SIGHUP)
	p.waitLog(map[string]string{"message_id": logging.MsgReloadAccepted}, 10*time.Second)
	// Rejected: an unknown key. herald keeps running on the previous file
	// and says why.
	os.WriteFile(cfg, []byte("shutdown:\n  drian_timeout: 1s\n"), 0o600)
	p.signal(syscall.SIGHUP)
	p.waitLog(map[string]string{"message_id": logging.MsgReloadRejected, "error": "drian_timeout"}, 10*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	got := lifecycleDatagrams(sock.All())
	mono := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=\d+$`)
	if len(got) != 6 {
		t.Fatalf("datagrams %q, want READY, RELOADING, READY, RELOADING, READY+ERRNO, STOPPING", got)
	}
	checks := []struct {
		i  int
		ok bool
	}{
		{0, strings.HasPrefix(got[0], "READY=1\nSTATUS=ready: 1/1 platforms connected")},
		{1, mono.MatchString(got[1])},
		{2, strings.HasPrefix(got[2], "READY=1\nSTATUS=ready: 2/2 platforms connected")},
		{3, mono.MatchString(got[3])},
		{4, strings.HasPrefix(got[4], "READY=1\nSTATUS=ready: 2/2 platforms connected") &&
			strings.Contains(got[4], "reload rejected: ") && strings.Contains(got[4], "drian_timeout") &&
			strings.HasSuffix(got[4], "\nERRNO=22")},
		{5, strings.HasPrefix(got[5], "STOPPING=1\n")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("datagram %d = %q", c.i, got[c.i])
		}
	}
}

func TestReloadCommandBlocksUntilApplied(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir})
	p := start(t, cfg, startOpts{})
	p.ready()
	writeConfig(t, testConfig{Dir: dir, Extra: "  spare:\n    type: fault\n    allow_all: true\n"})
	out, err := runHerald(t, "reload", "--config", cfg)
	if err != nil {
		t.Fatalf("herald reload: %v\n%s", err, out)
	}
	if !strings.Contains(out, "2/2 platforms connected") {
		t.Fatalf("herald reload printed %q; the new platform should be running when it returns", out)
	}
	os.WriteFile(cfg, []byte("agent:\n  kind: telepathy\n"), 0o600)
	out, err = runHerald(t, "reload", "--config", filepath.Join(dir, "herald.yaml"), "--admin-socket", filepath.Join(dir, "admin.sock"))
	if code := exitCode(err); code != herald.ExitFailure || !strings.Contains(out, "telepathy") {
		t.Fatalf("rejected reload: exit %d, output %q", code, out)
	}
	p.signal(syscall.SIGTERM)
	p.wait(10 * time.Second)
	// Not running any more.
	out, err = runHerald(t, "reload", "--admin-socket", filepath.Join(dir, "admin.sock"))
	if code := exitCode(err); code != herald.ExitRunning {
		t.Fatalf("reload without herald: exit %d (%s), want %d", code, out, herald.ExitRunning)
	}
}

func TestDrainExtendsStopTimeout(t *testing.T) {
	sock := notifytest.Listen(t)
	recv := webhooktest.NewReceiver(t)
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir, ReplyURL: recv.URL, Drain: "20s", Adapter: "500ms", WordDelay: "100ms"})
	p := start(t, cfg, startOpts{env: []string{"NOTIFY_SOCKET=" + sock.Path()}})
	addr := p.ready()
	// 25 words at 100ms: a turn of about 2.5s that makes progress all along.
	text := strings.TrimSpace(strings.Repeat("word ", 25))
	if code, err := post(t, addr, "slow-1", "c1", text); err != nil || code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, err)
	}
	waitStatus(t, dir, func(s adminapi.StatusReport) bool { return s.TurnsInFlight == 1 })
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	got := lifecycleDatagrams(sock.All())
	if len(got) < 3 || got[1] != "STOPPING=1\nSTATUS=stopping: draining 1 turns, 20s left" {
		t.Fatalf("datagrams %q", got)
	}
	// Every datagram after STOPPING extends the stop timeout, never past
	// the bound drain_timeout + adapter_timeout + 2s.
	extends := got[2:]
	bound := (20*time.Second + 500*time.Millisecond + 2*time.Second).Microseconds()
	for _, d := range extends {
		var usec int64
		if _, err := fmt.Sscanf(d, "EXTEND_TIMEOUT_USEC=%d", &usec); err != nil {
			t.Fatalf("unexpected datagram while draining: %q", d)
		}
		if usec <= 0 || usec > bound {
			t.Fatalf("EXTEND_TIMEOUT_USEC=%d outside (0, %d]", usec, bound)
		}
	}
	if len(extends) == 0 {
		t.Fatal("no EXTEND_TIMEOUT_USEC while a turn was draining")
	}
	if sock.Count("STATUS=stopping: draining 1 turns") < 2 {
		t.Errorf("STATUS= did not report drain progress: %q", sock.All())
	}
	replies := recv.Delivered()
	if len(replies) != 1 || replies[0].Text != "echo: "+text {
		t.Fatalf("replies %+v, want the drained turn's reply", replies)
	}
}

func TestDrainTimeoutLeavesWorkForNextInstance(t *testing.T) {
	hang := agenttest.New(t)
	hang.SetHandler(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // an agent that never answers
	})
	recv := webhooktest.NewReceiver(t)
	dir := t.TempDir()
	addr := freePort(t)
	top := "agent:\n  kind: openai\n  url: " + hang.URL + "\n"
	cfg := writeConfig(t, testConfig{Dir: dir, HTTP: addr, ReplyURL: recv.URL, Drain: "1s", Top: top})
	// The template has its own agent section; replace it.
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "agent:\n  kind: echo\n  echo:\n    word_delay: 0s\n", "", 1)), 0o600)
	p := start(t, cfg, startOpts{})
	p.ready()
	if code, err := post(t, addr, "stuck-1", "c1", "hello"); err != nil || code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, err)
	}
	waitStatus(t, dir, func(s adminapi.StatusReport) bool { return s.TurnsInFlight == 1 })
	t0 := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if took := time.Since(t0); took > 1*time.Second+500*time.Millisecond+2*time.Second {
		t.Fatalf("stop took %v, bound is drain 1s + adapter 0.5s + 2s", took)
	}
	p.waitLog(map[string]string{"message_id": logging.MsgDrainTimedOut}, time.Second)
	// The next instance, with a working agent, answers the message.
	cfg = writeConfig(t, testConfig{Dir: dir, HTTP: addr, ReplyURL: recv.URL})
	p2 := start(t, cfg, startOpts{})
	p2.ready()
	if r := recv.WaitDelivered(t, 1, 10*time.Second); len(r) != 1 || r[0].Text != "echo: hello" {
		t.Fatalf("replies %+v", r)
	}
}

func TestHungAdapterStopIsBounded(t *testing.T) {
	cfg := writeConfig(t, testConfig{Adapter: "1s", Extra: "  stuck:\n    type: fault\n    allow_all: true\n    hang_stop: true\n"})
	p := start(t, cfg, startOpts{})
	p.ready()
	t0 := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM with a hung adapter, want 0", code)
	}
	took := time.Since(t0)
	if bound := 1*time.Second + 2*time.Second; took > bound {
		t.Fatalf("stop took %v, bound adapter_timeout 1s + 2s", took)
	}
	if took < time.Second {
		t.Fatalf("stop took %v: the hung adapter was not given its adapter_timeout", took)
	}
	p.waitLog(map[string]string{"message_id": logging.MsgAdapterStopTimeout, "platform": "stuck"}, time.Second)
}

func TestSingleInstance(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir})
	first := start(t, cfg, startOpts{})
	first.ready()
	// A second herald on the same state directory is refused at once.
	second := start(t, writeConfig(t, testConfig{Dir: dir}), startOpts{})
	if code := second.wait(10 * time.Second); code != herald.ExitRunning {
		t.Fatalf("second instance exit %d, want %d", code, herald.ExitRunning)
	}
	second.waitLog(map[string]string{"message_id": logging.MsgInstanceRefused, "msg": "admin.sock is in use"}, time.Second)
	// Another configuration (its own admin socket) on the same state
	// directory meets the kernel lock, which names the holder.
	otherDir := t.TempDir()
	other := writeConfig(t, testConfig{Dir: otherDir})
	b, _ := os.ReadFile(other)
	os.WriteFile(other, []byte(strings.Replace(string(b), "state_dir: "+otherDir+"/state", "state_dir: "+dir+"/state", 1)), 0o600)
	third := start(t, other, startOpts{})
	if code := third.wait(10 * time.Second); code != herald.ExitRunning {
		t.Fatalf("instance on a locked state directory: exit %d, want %d", code, herald.ExitRunning)
	}
	msg := third.waitLog(map[string]string{"message_id": logging.MsgInstanceRefused}, time.Second)
	if !strings.Contains(fmt.Sprint(msg["msg"]), fmt.Sprint(first.cmd.Process.Pid)) {
		t.Errorf("refusal %q does not name the running PID %d", msg["msg"], first.cmd.Process.Pid)
	}
	// SIGKILL leaves nothing behind that blocks the next start.
	first.signal(syscall.SIGKILL)
	first.wait(5 * time.Second)
	fourth := start(t, cfg, startOpts{})
	fourth.ready()
	fourth.signal(syscall.SIGTERM)
	if code := fourth.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestSocketActivation(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, testConfig{Dir: dir, HTTP: "127.0.0.1:1"}) // fallback must not be used
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unixPath := filepath.Join(dir, "activated-admin.sock")
	unix, err := net.Listen("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	tf, _ := tcp.(*net.TCPListener).File()
	uf, _ := unix.(*net.UnixListener).File()
	// The path belongs to the "socket unit", which outlives herald.
	unix.(*net.UnixListener).SetUnlinkOnClose(false)
	tcp.Close()
	unix.Close()
	p := start(t, cfg, startOpts{shim: true, files: []*os.File{tf, uf}, env: []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=http:admin"}})
	addr := p.ready()
	if addr != tcp.Addr().String() {
		t.Fatalf("herald serves %s, want the activated %s", addr, tcp.Addr())
	}
	// One line for both sockets, naming each.
	if n := logCount(p, map[string]string{"msg": "received socket"}); n != 1 {
		t.Errorf("%d lines about received sockets, want 1:\n%s", n, p.output())
	}
	if e := p.waitLog(map[string]string{"msg": "received sockets from systemd"}, time.Second); !strings.Contains(fmt.Sprint(e["msg"]), "http (fd 3") || !strings.Contains(fmt.Sprint(e["msg"]), "admin (fd 4") {
		t.Errorf("received sockets line %q does not name both", e["msg"])
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz on the activated socket: %v %v", resp, err)
	}
	resp.Body.Close()
	out, err := runHerald(t, "status", "--admin-socket", unixPath, "--json")
	if !strings.Contains(out, `"turns_in_flight"`) {
		t.Fatalf("status over the activated admin socket: %v\n%s", err, out)
	}
	p.signal(syscall.SIGTERM)
	p.wait(10 * time.Second)
	if _, err := os.Stat(unixPath); err != nil {
		t.Fatalf("herald removed the inherited admin socket path: %v", err)
	}
}

func TestSocketActivationRejectsNonListener(t *testing.T) {
	cfg := writeConfig(t, testConfig{})
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := udp.(*net.UDPConn).File()
	udp.Close()
	p := start(t, cfg, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=http"}})
	if code := p.wait(10 * time.Second); code != herald.ExitListen {
		t.Fatalf("exit %d, want %d", code, herald.ExitListen)
	}
	if out := p.output(); !strings.Contains(out, "http") {
		t.Fatalf("error does not name the fd: %s", out)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown key", "shutdown:\n  drain: 3s\n", ":2:3: shutdown.drain: unknown key"},
		{"bad duration", "shutdown:\n  drain_timeout: forever\n", ":2:18: shutdown.drain_timeout: invalid duration"},
		{"wrong type", "platforms:\n  webhook:\n    insecure_no_signature: 1\n    allow_all: true\n", ":3:28: platforms.webhook.insecure_no_signature: expected true or false"},
		{"missing secret", "platforms:\n  webhook:\n    allow_all: true\n", ":2:3: platforms.webhook.secret: required"},
		{"unknown platform", "platforms:\n  irc: {}\n", ":2:3: platforms.irc.type: unknown platform type \"irc\""},
		{"invalid value", "agent:\n  kind: telepathy\n", ":2:9: agent.kind: \"telepathy\" is not one of echo, openai, hermes"},
		{"credential missing", "agent:\n  kind: openai\n  url: http://127.0.0.1:9\n  key: {file: /nonexistent/key}\n", "/nonexistent/key does not exist"},
		// Cluster mode needs the shared JetStream store.
		{"cluster", "cluster:\n  enabled: true\n  node_id: n1\n", "cluster.enabled: requires store.backend: nats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			os.WriteFile(path, []byte(tt.src), 0o600)
			for _, args := range [][]string{{"run", "--config", path}, {"check-config", path}} {
				out, err := runHerald(t, args...)
				if code := exitCode(err); code != herald.ExitConfig {
					t.Fatalf("herald %s: exit %d, want %d\n%s", args[0], code, herald.ExitConfig, out)
				}
				if !strings.Contains(out, "bad.yaml"+tt.want) && !strings.Contains(out, tt.want) {
					t.Fatalf("herald %s output:\n%s\nwant it to contain %q", args[0], out, "bad.yaml"+tt.want)
				}
			}
		})
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	return -1
}
