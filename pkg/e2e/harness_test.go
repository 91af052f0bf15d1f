// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/testsupport/systemdbox"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// defaultConfig is the configuration tests start from: the webhook platform
// (unsigned: the listener is the sandbox's own loopback), the echo agent,
// state in StateDirectory=.
const defaultConfig = `log:
  level: debug
shutdown:
  drain_timeout: 5s
  adapter_timeout: 2s
platforms:
  webhook:
    allow_all: true
    insecure_no_signature: true
`

// env is a sandbox with herald installed from the shared build.
type env struct {
	t   *testing.T
	s   *systemdbox.Sandbox
	ctx context.Context
	// http talks to 127.0.0.1 of the sandbox.
	http *http.Client
}

type envOpts struct {
	config string // herald.yaml; defaultConfig if empty
	dropIn string // [Service]/[Unit] lines for herald.service.d/e2e.conf
}

// newEnv boots a sandbox and installs herald: binary, the project's units,
// the sysusers user, /etc/herald/herald.yaml and an optional drop-in. It
// starts nothing.
func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	s := systemdbox.New(t, systemdbox.Options{Shares: []systemdbox.Share{{Host: buildDir, Guest: guestShare}}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, s: s, ctx: ctx, http: s.HTTPClient()}
	e.http.Timeout = 30 * time.Second
	if o.config == "" {
		o.config = defaultConfig
	}
	e.sh(`install -m 0755 ` + guestBinary + ` /usr/bin/herald &&
		for u in herald.service herald.socket herald-admin.socket; do install -m 0644 ` + guestUnits + `/$u /etc/systemd/system/$u; done &&
		install -D -m 0644 ` + guestUnits + `/herald.sysusers /usr/lib/sysusers.d/herald.conf &&
		systemd-sysusers herald.conf &&
		install -d -m 0700 /etc/herald/credentials`)
	e.writeConfig(o.config)
	if o.dropIn != "" {
		e.write("/etc/systemd/system/herald.service.d/e2e.conf", o.dropIn)
	}
	e.systemctl("daemon-reload")
	return e
}

// sh runs a shell command in the sandbox and fails the test on error.
func (e *env) sh(script string) string {
	e.t.Helper()
	out, errOut, code, err := e.s.Run(e.ctx, "sh", "-ec", script)
	if err != nil || code != 0 {
		e.t.Fatalf("sh %q: exit %d %v\nstdout: %s\nstderr: %s", script, code, err, out, errOut)
	}
	return out
}

// run runs a command and returns its output and exit code.
func (e *env) run(name string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	stdout, stderr, code, err := e.s.Run(e.ctx, name, args...)
	if err != nil {
		e.t.Fatalf("%s %v: %v", name, args, err)
	}
	return stdout, stderr, code
}

func (e *env) write(path, content string) {
	e.t.Helper()
	e.sh("mkdir -p " + path[:strings.LastIndex(path, "/")])
	if err := e.s.WriteFile(path, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) writeConfig(cfg string) {
	e.t.Helper()
	e.write("/etc/herald/herald.yaml", cfg)
}

// systemctl runs systemctl and fails on a non-zero exit.
func (e *env) systemctl(args ...string) string {
	e.t.Helper()
	out, err := e.s.Systemctl(e.ctx, args...)
	if err != nil {
		e.t.Fatalf("systemctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// timed runs systemctl and returns how long it took and its exit code.
func (e *env) timed(args ...string) (time.Duration, int, string) {
	e.t.Helper()
	start := time.Now()
	out, errOut, code, err := e.s.Run(e.ctx, "systemctl", args...)
	if err != nil {
		e.t.Fatalf("systemctl %v: %v", args, err)
	}
	return time.Since(start), code, out + errOut
}

func (e *env) show(unit string, props ...string) map[string]string {
	e.t.Helper()
	m, err := e.s.Show(e.ctx, unit, props...)
	if err != nil {
		e.t.Fatalf("systemctl show %s: %v", unit, err)
	}
	return m
}

// waitProps polls until every property has the wanted value.
func (e *env) waitProps(unit string, want map[string]string, timeout time.Duration) map[string]string {
	e.t.Helper()
	return pollProps(e.t, e.show, unit, want, timeout)
}

// pollProps polls show until every property of unit has the wanted value.
func pollProps(t *testing.T, show func(unit string, props ...string) map[string]string, unit string, want map[string]string, timeout time.Duration) map[string]string {
	t.Helper()
	props := make([]string, 0, len(want))
	for k := range want {
		props = append(props, k)
	}
	var got map[string]string
	if !testwait.Until(timeout, func() bool {
		got = show(unit, props...)
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("%s: properties %v after %v, want %v", unit, got, timeout, want)
	}
	return got
}

// journal returns the unit's journal entries (this boot) matching every
// field of match (exact values); unit "" matches entries of any unit.
// herald's own entries carry INVOCATION_ID: match on it, without a unit,
// for what herald logs while it exits (journald may not attribute those to
// the unit any more).
func (e *env) journal(unit string, match map[string]string) []map[string]any {
	e.t.Helper()
	var args []string
	if unit != "" {
		args = []string{"-u", unit}
	}
	for k, v := range match {
		args = append(args, k+"="+v)
	}
	entries, err := e.s.Journal(e.ctx, args...)
	if err != nil {
		e.t.Fatalf("journalctl: %v", err)
	}
	return entries
}

// waitJournal waits for a journal entry of unit matching match.
func (e *env) waitJournal(unit string, match map[string]string, timeout time.Duration) map[string]any {
	e.t.Helper()
	return pollJournal(e.t, e.journal, unit, match, timeout)
}

// pollJournal polls journal until it returns an entry of unit matching
// match, and returns the last one.
func pollJournal(t *testing.T, journal func(unit string, match map[string]string) []map[string]any, unit string, match map[string]string, timeout time.Duration) map[string]any {
	t.Helper()
	var got []map[string]any
	if !testwait.Until(timeout, func() bool {
		got = journal(unit, match)
		return len(got) > 0
	}) {
		t.Fatalf("no journal entry of %s matching %v within %v", unit, match, timeout)
	}
	return got[len(got)-1]
}

// journalText is the unit's journal as text, for lines systemd itself
// writes ("Watchdog timeout", "State 'stop-sigterm' timed out").
func (e *env) journalText(unit string) string {
	e.t.Helper()
	out, _, _ := e.run("journalctl", "-u", unit, "--no-pager", "-o", "cat")
	return out
}

// post sends a webhook message; wait > 0 asks for the reply in the
// response.
func (e *env) post(id, conv, text string, wait time.Duration) (int, string, error) {
	body := fmt.Sprintf(`{"conversation_id":%q,"user_id":"u1","text":%q}`, conv, text)
	url := "http://127.0.0.1:8089/hooks/webhook"
	if wait > 0 {
		url += "?wait=" + wait.String()
	}
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// statusJSON runs `herald status --json` in the sandbox.
func (e *env) statusJSON() (map[string]any, int) {
	e.t.Helper()
	out, _, code := e.run("herald", "status", "--json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		e.t.Fatalf("herald status --json: %v\n%s", err, out)
	}
	return doc, code
}

// mainPID returns the service's MainPID.
func (e *env) mainPID() string {
	return e.show("herald.service", "MainPID")["MainPID"]
}

// startSockets starts the two socket units (what the package enables).
func (e *env) startSockets() {
	e.t.Helper()
	e.systemctl("start", "herald.socket", "herald-admin.socket")
}

// startReady starts herald and waits until it is active (READY=1).
func (e *env) startReady() {
	e.t.Helper()
	e.startSockets()
	e.systemctl("start", "herald.service")
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 30*time.Second)
}
