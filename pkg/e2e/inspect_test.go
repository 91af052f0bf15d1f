// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
)

type doctorDoc struct {
	OK     bool           `json:"ok"`
	Checks []herald.Check `json:"checks"`
}

func (e *env) doctor() (doctorDoc, int, string) {
	e.t.Helper()
	out, errOut, code := e.run("herald", "doctor", "--json")
	var d doctorDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		e.t.Fatalf("herald doctor --json: %v\n%s%s", err, out, errOut)
	}
	return d, code, out
}

// find returns the first check whose name starts with prefix.
func (d doctorDoc) find(prefix string) *herald.Check {
	for i := range d.Checks {
		if strings.HasPrefix(d.Checks[i].Name, prefix) {
			return &d.Checks[i]
		}
	}
	return nil
}

func (d doctorDoc) failed() []string {
	var out []string
	for _, c := range d.Checks {
		if c.Result == "FAIL" {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return out
}

func TestStatusAndDoctorHealthy(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.startReady()
	doc, code := e.statusJSON()
	if code != 0 || doc["running"] != true {
		t.Fatalf("herald status: exit %d %v", code, doc)
	}
	unit := doc["unit"].(map[string]any)
	if unit["ActiveState"] != "active" || unit["SubState"] != "running" || unit["MainPID"] == float64(0) {
		t.Fatalf("unit part: %v", unit)
	}
	h := doc["herald"].(map[string]any)
	if h["state"] != "running" || len(h["platforms"].([]any)) != 1 {
		t.Fatalf("herald part: %v", h)
	}
	// Human output, and as an unprivileged user: D-Bus properties and the
	// admin socket's read-only endpoints are open to everyone.
	out, errOut, code := e.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "herald", "status")
	if code != 0 || !strings.Contains(out, "herald.service: active (running)") || !strings.Contains(out, "webhook") {
		t.Fatalf("herald status as nobody: exit %d\n%s%s", code, out, errOut)
	}
	// ...who may not reload.
	if _, _, code := e.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "herald", "reload", "--admin-socket", "/run/herald/admin.sock"); code == 0 {
		t.Fatal("an unprivileged user could reload herald")
	}
	// Run by hand, reload finds the running herald as status does: the
	// shell lacks the service's $RUNTIME_DIRECTORY.
	for _, args := range [][]string{{"reload"}, {"reload", "--config", "/etc/herald/herald.yaml"}} {
		out, errOut, code := e.run("herald", args...)
		if code != 0 || !strings.Contains(out, "reloaded") {
			t.Fatalf("herald %s by hand: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	d, code, raw := e.doctor()
	if code != 0 || !d.OK || len(d.failed()) > 0 {
		t.Fatalf("doctor on a healthy herald: exit %d failed %v\n%s", code, d.failed(), raw)
	}
	for _, name := range []string{"config", "units verify", "socket herald.socket", "socket herald-admin.socket", "last run", "herald", "platform webhook"} {
		if c := d.find(name); c == nil || c.Result != "PASS" {
			t.Errorf("check %q: %+v", name, c)
		}
	}
	// Stopped: status says so, with its own exit code.
	e.systemctl("stop", "herald.service")
	out, _, code = e.run("herald", "status")
	if code != herald.ExitNotRunning || !strings.Contains(out, "herald.service: inactive (dead)") || !strings.Contains(out, "not running") {
		t.Fatalf("status of a stopped herald: exit %d\n%s", code, out)
	}
}

func TestDoctorBrokenStates(t *testing.T) {
	t.Run("bad config", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		e.writeConfig("shutdown:\n  drain_timeout: soon\n")
		e.startSockets()
		e.timed("start", "herald.service") // fails: exit 78, not restarted
		e.waitProps("herald.service", map[string]string{"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "78"}, 10*time.Second)
		if n := e.show("herald.service", "NRestarts")["NRestarts"]; n != "0" {
			t.Fatalf("a config error was restarted %s times (RestartPreventExitStatus=78)", n)
		}
		d, code, raw := e.doctor()
		if code == 0 || d.OK {
			t.Fatalf("doctor passed with a broken config:\n%s", raw)
		}
		if c := d.find("config"); c == nil || c.Result != "FAIL" || !strings.Contains(c.Detail, "herald.yaml:2:18: shutdown.drain_timeout") {
			t.Fatalf("config check: %+v", c)
		}
		if c := d.find("last run"); c == nil || c.Result != "FAIL" || !strings.Contains(c.Fix, "check-config") || !strings.Contains(c.Detail, "status=78") {
			t.Fatalf("last run check: %+v", c)
		}
	})
	t.Run("missing credential", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		e.writeConfig(`agent:
  kind: openai
  url: http://127.0.0.1:9
  key: {credential: agent-key}
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
`)
		e.startSockets()
		e.timed("start", "herald.service")
		e.waitProps("herald.service", map[string]string{"ActiveState": "failed", "ExecMainStatus": "78"}, 10*time.Second)
		d, _, raw := e.doctor()
		if c := d.find("credential agent.key"); c == nil || c.Result != "FAIL" || !strings.Contains(c.Fix, "/etc/herald/credentials/agent-key") {
			t.Fatalf("credential check: %+v\n%s", c, raw)
		}
		// Present but world-readable: still a FAIL.
		e.sh("echo sk-test > /etc/herald/credentials/agent-key && chmod 644 /etc/herald/credentials/agent-key")
		d, _, _ = e.doctor()
		if c := d.find("credential agent.key"); c == nil || c.Result != "FAIL" || !strings.Contains(c.Detail, "world-readable") {
			t.Fatalf("world-readable credential: %+v", c)
		}
		// Fixed: the service starts and reads it through LoadCredential=.
		e.sh("chmod 600 /etc/herald/credentials/agent-key")
		e.systemctl("reset-failed", "herald.service")
		e.startReady()
		d, _, _ = e.doctor()
		if c := d.find("credential agent.key"); c == nil || c.Result != "PASS" {
			t.Fatalf("credential check after the fix: %+v", c)
		}
	})
	t.Run("adapter auth failure", func(t *testing.T) {
		e := newEnv(t, envOpts{config: defaultConfig + "  broken:\n    type: fault\n    allow_all: true\n    fatal: true\n"})
		e.startReady() // a broken platform never blocks readiness
		st := e.show("herald.service", "StatusText")["StatusText"]
		if !strings.Contains(st, "1/2 platforms connected") || !strings.Contains(st, "broken: failed") {
			t.Fatalf("StatusText %q", st)
		}
		d, code, raw := e.doctor()
		if code == 0 {
			t.Fatalf("doctor passed with a fatal platform:\n%s", raw)
		}
		if c := d.find("platform broken"); c == nil || c.Result != "FAIL" || !strings.Contains(c.Detail, "unauthorized") {
			t.Fatalf("platform check: %+v", c)
		}
		out, _, _ := e.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", "/run/herald/admin.sock", "http://herald/readyz")
		if out != "503" {
			t.Fatalf("/readyz with a fatal platform: %s, want 503", out)
		}
	})
	t.Run("after a watchdog restart", func(t *testing.T) {
		e := newEnv(t, envOpts{
			config: defaultConfig + "fault:\n  wedge_main_loop_after: 1s\n",
			// A long RestartSec holds the unit in auto-restart with
			// Result=watchdog while doctor looks (the next start resets
			// Result); the test restarts it itself.
			dropIn: "[Service]\nWatchdogSec=2s\nRestartSec=10min\nTimeoutAbortSec=5s\n",
		})
		e.startReady()
		e.waitProps("herald.service", map[string]string{"Result": "watchdog"}, 30*time.Second)
		d, _, raw := e.doctor()
		c := d.find("last run")
		if c == nil || c.Result != "FAIL" || !strings.Contains(c.Detail, "result watchdog") || !strings.Contains(c.Detail, "Watchdog timeout") {
			t.Fatalf("last run check after a watchdog kill: %+v\n%s", c, raw)
		}
		e.writeConfig(defaultConfig)
		e.systemctl("restart", "herald.service")
	})
}
