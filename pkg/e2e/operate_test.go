// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/logging"
)

// Scenario 7: `herald run` by hand while the unit is active is refused with
// the documented exit code and a message naming the unit, its MainPID and
// what to run instead.
func TestManualStartRefused(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.startReady()
	pid := e.mainPID()
	out, errOut, code := e.run("herald", "run", "--config", "/etc/herald/herald.yaml")
	if code != herald.ExitRunning {
		t.Fatalf("manual herald run: exit %d, want %d\n%s%s", code, herald.ExitRunning, out, errOut)
	}
	msg := out + errOut
	for _, want := range []string{"herald.service", "MainPID " + pid, "systemctl"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal does not mention %q:\n%s", want, msg)
		}
	}
	// The running instance is untouched.
	if now := e.mainPID(); now != pid {
		t.Fatalf("MainPID changed from %s to %s", pid, now)
	}
}

// Scenario 8: reload with a valid file returns promptly and applies it;
// with an invalid one it returns (failed), the unit stays active on the old
// configuration and StatusText says why.
func TestReload(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.startReady()
	pid := e.mainPID()
	e.writeConfig(defaultConfig + "  spare:\n    type: fault\n    allow_all: true\n")
	took, code, out := e.timed("reload", "herald.service")
	if code != 0 {
		t.Fatalf("systemctl reload: %d %s", code, out)
	}
	if took > 5*time.Second {
		t.Fatalf("reload took %v", took)
	}
	st := e.show("herald.service", "ActiveState", "StatusText", "MainPID")
	if st["ActiveState"] != "active" || !strings.HasPrefix(st["StatusText"], "ready: 2/2 platforms connected") || st["MainPID"] != pid {
		t.Fatalf("after a valid reload: %v", st)
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgReloadAccepted}, 5*time.Second)

	e.writeConfig("platforms:\n  webhook:\n    allow_al: true\n")
	took, code, out = e.timed("reload", "herald.service")
	if code == 0 {
		t.Fatalf("systemctl reload of an invalid file succeeded: %s", out)
	}
	if took > 5*time.Second {
		t.Fatalf("rejected reload took %v", took)
	}
	st = e.show("herald.service", "ActiveState", "SubState", "StatusText", "StatusErrno", "MainPID")
	if st["ActiveState"] != "active" || st["SubState"] != "running" || st["MainPID"] != pid {
		t.Fatalf("after a rejected reload: %v", st)
	}
	if !strings.Contains(st["StatusText"], "reload rejected: /etc/herald/herald.yaml:") || !strings.Contains(st["StatusText"], "(and 1 more)") || st["StatusErrno"] != "22" {
		t.Fatalf("StatusText %q StatusErrno %s: should say why", st["StatusText"], st["StatusErrno"])
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgReloadRejected}, 5*time.Second)
	// Still serving on the old configuration: both platforms.
	doc, _ := e.statusJSON()
	if plats := doc["herald"].(map[string]any)["platforms"].([]any); len(plats) != 2 {
		t.Fatalf("platforms after the rejected reload: %v", plats)
	}
}

// Scenario 9: journal entries carry PRIORITY, COMPONENT and the lifecycle
// MESSAGE_IDs, tied to the invocation.
func TestJournalFields(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.startReady()
	inv := e.show("herald.service", "InvocationID")["InvocationID"]
	e.systemctl("stop", "herald.service")
	for _, id := range []string{logging.MsgStarting, logging.MsgReady, logging.MsgStopping, logging.MsgDrainFinished, logging.MsgStopped} {
		entry := e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": id, "_SYSTEMD_INVOCATION_ID": inv}, 5*time.Second)
		for _, f := range []string{"PRIORITY", "COMPONENT", "SYSLOG_IDENTIFIER", "MESSAGE"} {
			if _, ok := entry[f]; !ok {
				b, _ := json.Marshal(entry)
				t.Errorf("entry %s lacks %s: %s", id, f, b)
			}
		}
		if entry["PRIORITY"] != "6" || entry["COMPONENT"] != "daemon" || entry["SYSLOG_IDENTIFIER"] != "herald" {
			t.Errorf("entry %s: PRIORITY=%v COMPONENT=%v SYSLOG_IDENTIFIER=%v", id, entry["PRIORITY"], entry["COMPONENT"], entry["SYSLOG_IDENTIFIER"])
		}
	}
	// Adapter lines carry their platform.
	e.waitJournal("herald.service", map[string]string{"COMPONENT": "adapter/webhook", "PLATFORM": "webhook"}, 5*time.Second)
	// A warning maps to PRIORITY 4.
	e.waitJournal("herald.service", map[string]string{"PLATFORM": "webhook", "PRIORITY": "4"}, 5*time.Second)
}

// Scenario 11: the installed units verify without a word, and the service's
// exposure stays at or under 2.0.
func TestUnitsVerifyAndSecurity(t *testing.T) {
	e := newEnv(t, envOpts{})
	// The man page comes with the package (the packaging test verifies the
	// installed package with it); here only the units are installed.
	out, errOut, code := e.run("systemd-analyze", "verify", "--man=no", "/etc/systemd/system/herald.service", "/etc/systemd/system/herald.socket", "/etc/systemd/system/herald-admin.socket")
	if code != 0 || strings.TrimSpace(out+errOut) != "" {
		t.Fatalf("systemd-analyze verify: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = e.run("systemd-analyze", "security", "--offline=true", "--threshold=20", "/etc/systemd/system/herald.service")
	if code != 0 {
		t.Fatalf("systemd-analyze security above 2.0: exit %d\n%s%s", code, out, errOut)
	}
	if i := strings.Index(out, "Overall exposure level"); i >= 0 {
		t.Log(strings.TrimSpace(out[i:]))
	}
}
