// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// A credential rotated under a running herald is not applied by a reload:
// systemd copied the credentials into $CREDENTIALS_DIRECTORY when the
// service started. `systemctl reload` still succeeds (the configuration is
// applied), but ExecReload= warns in the unit's journal that a restart is
// needed, `herald reload` by hand prints the same warning, and doctor says
// WARN "restart to apply" until herald is restarted. Run unprivileged,
// doctor skips the credential checks as needing root.
func TestRotatedCredentialNeedsRestart(t *testing.T) {
	e := newEnv(t, envOpts{config: defaultConfig + `agent:
  kind: openai
  url: http://127.0.0.1:9
  key: {credential: agent-key}
`})
	e.sh("install -m 0600 /dev/null /etc/herald/credentials/agent-key && printf sk-old > /etc/herald/credentials/agent-key")
	e.startReady()

	reloadByHand := func() string {
		out, errOut, code := e.run("herald", "reload", "--admin-socket", "/run/herald/admin.sock")
		if code != 0 {
			t.Fatalf("herald reload: exit %d\n%s%s", code, out, errOut)
		}
		return out + errOut
	}
	secretsCheck := func() string {
		d, _, raw := e.doctor()
		c := d.find("secrets in use")
		if c == nil {
			t.Fatalf("doctor has no secrets check:\n%s", raw)
		}
		return c.Result + " " + c.Detail + " fix: " + c.Fix
	}

	if out := reloadByHand(); strings.Contains(out, "warning") {
		t.Fatalf("reload with no secret changed warns:\n%s", out)
	}
	// An unprivileged doctor cannot look into /etc/herald/credentials
	// (0700, root): it says the checks need root instead of claiming the
	// file is missing.
	out, errOut, _ := e.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "herald", "doctor", "--json")
	var d doctorDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("herald doctor --json as nobody: %v\n%s%s", err, out, errOut)
	}
	for _, name := range []string{"credential agent.key", "secrets in use"} {
		if c := d.find(name); c == nil || c.Result != "SKIP" || !strings.Contains(c.Detail, "needs root") || strings.Contains(c.Fix, "create") {
			t.Errorf("doctor as nobody, check %q: %+v, want SKIP needing root", name, c)
		}
	}
	if c := secretsCheck(); !strings.HasPrefix(c, "PASS") {
		t.Fatalf("doctor before the rotation: %s", c)
	}

	e.sh("printf sk-new > /etc/herald/credentials/agent-key")
	if _, code, out := e.timed("reload", "herald.service"); code != 0 {
		t.Fatalf("systemctl reload: exit %d\n%s", code, out)
	}
	msg := e.waitJournalText("herald.service", map[string]string{"PRIORITY": "4"}, "restart to apply", 10*time.Second)
	if !strings.Contains(msg, "/etc/herald/credentials/agent-key (agent.key) changed") || !strings.Contains(msg, "systemctl restart herald.service") {
		t.Errorf("journal warning %q", msg)
	}
	if out := reloadByHand(); !strings.Contains(out, "warning: /etc/herald/credentials/agent-key (agent.key) changed") || !strings.Contains(out, "restart to apply") {
		t.Errorf("herald reload after the rotation:\n%s", out)
	}
	if c := secretsCheck(); !strings.HasPrefix(c, "WARN") || !strings.Contains(c, "restart to apply") || !strings.Contains(c, "/etc/herald/credentials/agent-key") {
		t.Errorf("doctor after the rotation: %s", c)
	}

	// A restart applies it, and the warnings end.
	e.systemctl("restart", "herald.service")
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 30*time.Second)
	if c := secretsCheck(); !strings.HasPrefix(c, "PASS") {
		t.Errorf("doctor after the restart: %s", c)
	}
	if out := reloadByHand(); strings.Contains(out, "warning") {
		t.Errorf("reload after the restart still warns:\n%s", out)
	}
}

// waitJournalText waits for an entry of unit matching match whose MESSAGE
// contains text, and returns the MESSAGE.
func (e *env) waitJournalText(unit string, match map[string]string, text string, timeout time.Duration) string {
	e.t.Helper()
	var msg string
	if !testwait.Until(timeout, func() bool {
		for _, entry := range e.journal(unit, match) {
			if msg = fmt.Sprint(entry["MESSAGE"]); strings.Contains(msg, text) {
				return true
			}
		}
		return false
	}) {
		e.t.Fatalf("no journal entry of %s matching %v with %q within %v:\n%s", unit, match, text, timeout, e.journalText(unit))
	}
	return msg
}
