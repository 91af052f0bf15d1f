// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// Scenario 1: with only the sockets started, the first request starts
// herald and is answered; StatusText is set.
func TestSocketActivation(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.startSockets()
	if st := e.show("herald.service", "ActiveState")["ActiveState"]; st != "inactive" {
		t.Fatalf("herald.service is %s before any request", st)
	}
	code, body, err := e.post("first", "c1", "hello", 10*time.Second)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"echo: hello"`) {
		t.Fatalf("first request: %d %q %v", code, body, err)
	}
	p := e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 10*time.Second)
	_ = p
	st := e.show("herald.service", "StatusText", "Type", "NotifyAccess", "WatchdogUSec")
	if !strings.HasPrefix(st["StatusText"], "ready: 1/1 platforms connected") {
		t.Fatalf("StatusText %q", st["StatusText"])
	}
	if st["Type"] != "notify" || st["NotifyAccess"] != "main" || st["WatchdogUSec"] != "30s" {
		t.Fatalf("unit properties %v", st)
	}
	// The request reached herald through the socket unit's listener.
	e.waitJournal("herald.service", map[string]string{"NAME": "http", "MESSAGE": "using socket-activated listener"}, 5*time.Second)
	// The admin socket is activated by name too.
	out, _, code2 := e.run("curl", "-sf", "--unix-socket", "/run/herald/admin.sock", "http://herald/readyz")
	if code2 != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("admin /readyz over herald-admin.socket: %d %q", code2, out)
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgReady}, 5*time.Second)
}

// Scenario 2: `systemctl restart` with an adapter whose disconnect hangs
// forever ends within the bound, cleanly, and the new instance is ready
// with nothing to clean up.
func TestRestartWithHungAdapter(t *testing.T) {
	cfg := defaultConfig + "  stuck:\n    type: fault\n    allow_all: true\n    hang_stop: true\n"
	e := newEnv(t, envOpts{config: cfg})
	e.startReady()
	before := e.show("herald.service", "InvocationID", "MainPID")
	took, code, out := e.timed("restart", "herald.service")
	if code != 0 {
		t.Fatalf("systemctl restart: exit %d: %s", code, out)
	}
	t.Logf("system manager: restart with a hung adapter took %v (bound: adapter_timeout 2s + 2s)", took.Round(time.Millisecond))
	// Bound: no turns to drain, adapter_timeout 2s, + 2s.
	if took > 4*time.Second {
		t.Fatalf("restart took %v, bound adapter_timeout 2s + 2s", took)
	}
	if took < 2*time.Second {
		t.Fatalf("restart took %v: the hung adapter was not given its adapter_timeout", took)
	}
	after := e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running", "Result": "success"}, 10*time.Second)
	now := e.show("herald.service", "InvocationID", "MainPID", "NRestarts", "ExecMainStatus")
	if now["InvocationID"] == before["InvocationID"] || now["MainPID"] == before["MainPID"] {
		t.Fatalf("no new instance: before %v after %v", before, now)
	}
	_ = after
	// The previous instance exited 0 after abandoning the adapter.
	e.waitJournal("", map[string]string{
		"MESSAGE_ID": logging.MsgAdapterStopTimeout, "PLATFORM": "stuck", "INVOCATION_ID": before["InvocationID"],
	}, 5*time.Second)
	if j := e.journalText("herald.service"); strings.Contains(j, "timed out") || strings.Contains(j, "Failed with result") {
		t.Fatalf("journal reports a failed stop:\n%s", j)
	}
}

// Scenario 3: SIGKILL; Restart= brings herald back at once and nothing
// stale blocks it.
func TestSIGKILLRestarts(t *testing.T) {
	e := newEnv(t, envOpts{dropIn: "[Service]\nRestartSec=100ms\n"})
	e.startReady()
	pid := e.mainPID()
	e.systemctl("kill", "-s", "KILL", "herald.service")
	p := e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running", "NRestarts": "1"}, 15*time.Second)
	_ = p
	if now := e.mainPID(); now == pid || now == "0" {
		t.Fatalf("MainPID %s after SIGKILL of %s", now, pid)
	}
	if code, body, err := e.post("after-kill", "c1", "still here?", 10*time.Second); err != nil || code != http.StatusOK {
		t.Fatalf("request after the restart: %d %q %v", code, body, err)
	}
	if j := e.journalText("herald.service"); !strings.Contains(j, "status=9/KILL") {
		t.Fatalf("journal does not show the SIGKILL:\n%s", j)
	}
}

// Scenario 4: a wedged main loop stops the watchdog pings; systemd kills
// herald with Result=watchdog and restarts it; the journal says why.
func TestWatchdogRestartsWedgedHerald(t *testing.T) {
	cfg := defaultConfig + "fault:\n  wedge_main_loop_after: 1s\n"
	e := newEnv(t, envOpts{config: cfg, dropIn: "[Service]\nWatchdogSec=2s\nRestartSec=100ms\nTimeoutAbortSec=5s\n"})
	e.startReady()
	first := e.show("herald.service", "InvocationID")["InvocationID"]
	var st map[string]string
	if !testwait.Until(30*time.Second, func() bool {
		st = e.show("herald.service", "NRestarts", "InvocationID")
		return st["NRestarts"] != "0" && st["InvocationID"] != first
	}) {
		t.Fatalf("no watchdog restart within 30s: %v", st)
	}
	j := e.journalText("herald.service")
	for _, want := range []string{"Watchdog timeout (limit 2s)!", "Killing process", "with signal SIGABRT", "Failed with result 'watchdog'", "goroutine "} {
		if !strings.Contains(j, want) {
			t.Errorf("journal lacks %q", want)
		}
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgWatchdogCheckFailed}, 5*time.Second)
	// Stop the loop: the next instance runs without the fault.
	e.writeConfig(defaultConfig)
	e.systemctl("restart", "herald.service")
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 15*time.Second)
}

// The other half of scenario 4: a healthy herald keeps pinging. With
// WatchdogSec=2s it stays up well past several periods, systemd records
// fresh pings, and nothing restarts (a notifier that lost NOTIFY_SOCKET
// after its first message would be killed here).
func TestWatchdogPingsKeepHealthyHeraldAlive(t *testing.T) {
	e := newEnv(t, envOpts{dropIn: "[Service]\nWatchdogSec=2s\nRestartSec=100ms\n"})
	e.startReady()
	first := e.show("herald.service", "InvocationID", "WatchdogTimestampMonotonic")
	seen := map[string]bool{}
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); {
		seen[e.show("herald.service", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]] = true
		time.Sleep(250 * time.Millisecond)
	}
	now := e.show("herald.service", "InvocationID", "NRestarts", "ActiveState", "Result")
	if now["InvocationID"] != first["InvocationID"] || now["NRestarts"] != "0" || now["ActiveState"] != "active" {
		t.Fatalf("healthy herald was restarted: before %v, after %v", first, now)
	}
	// Pings every WatchdogSec/2 over 6s: several distinct timestamps.
	if len(seen) < 4 {
		t.Fatalf("WatchdogTimestampMonotonic took %d values in 6s, want pings about every second", len(seen))
	}
	if j := e.journalText("herald.service"); strings.Contains(j, "Watchdog timeout") {
		t.Fatalf("journal reports a watchdog timeout:\n%s", j)
	}
}

// Scenario 10: 30 restarts in a row succeed (no start-limit trip); a stop
// leaves the unit inactive, not failed.
func TestManyRestartsAndCleanStop(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.startReady()
	var worst time.Duration
	for i := 0; i < 30; i++ {
		took, code, out := e.timed("restart", "herald.service")
		if code != 0 {
			t.Fatalf("restart %d: exit %d: %s\n%v", i+1, code, out, e.show("herald.service", "Result", "ActiveState"))
		}
		worst = max(worst, took)
	}
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, 10*time.Second)
	t.Logf("30 restarts, slowest %v", worst)
	e.systemctl("stop", "herald.service")
	st := e.show("herald.service", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
	if st["ActiveState"] != "inactive" || st["Result"] != "success" || st["ExecMainStatus"] != "0" {
		t.Fatalf("after stop: %v, want inactive, success, status 0", st)
	}
	if s := e.show("herald.socket", "ActiveState")["ActiveState"]; s != "active" {
		t.Fatalf("herald.socket is %s after stopping the service", s)
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgStopped}, 5*time.Second)
	_ = fmt.Sprint
}
