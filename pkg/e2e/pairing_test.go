// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/logging"
)

// A pairing round trip across a restart under the real systemd: an unknown
// user's direct message gets a code (and does not reach the agent), herald
// is restarted, the operator approves the code with `herald pairing
// approve`, the user is told, and their next message is answered, also
// after another restart.
func TestPairingRoundTripAcrossRestart(t *testing.T) {
	e := newEnv(t, envOpts{})
	recv := webhooktest.NewReceiver(t, webhooktest.WithListen(e.s.Listen))
	e.writeConfig(fmt.Sprintf(`log:
  level: debug
platforms:
  webhook:
    dm_policy: pairing
    insecure_no_signature: true
    reply_url: %s
`, recv.URL))
	e.startReady()

	waitReply := func(want func(string) bool, what string) string {
		t.Helper()
		deadline := time.Now().Add(sendOnceWait)
		for {
			for _, r := range recv.Delivered() {
				if want(r.Text) {
					return r.Text
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s among the replies %+v", what, recv.Delivered())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, body, err := e.post("p-1", "dm-ann", "let me in", 0); err != nil || code/100 != 2 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	text := waitReply(func(s string) bool { return strings.Contains(s, "herald pairing approve") }, "pairing code")
	m := regexp.MustCompile(`approve webhook ([A-Z0-9]{8})$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("reply %q has no code", text)
	}
	code := m[1]

	e.systemctl("restart", "herald.service")
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, sendOnceWait)
	out, _, rc := e.run("herald", "pairing", "list", "--json")
	var list struct {
		Pending []struct{ Platform, Code string }
	}
	if err := json.Unmarshal([]byte(out), &list); rc != 0 || err != nil || len(list.Pending) != 1 || list.Pending[0].Code != code {
		t.Fatalf("herald pairing list after the restart: exit %d %v\n%s", rc, err, out)
	}
	if out, errOut, rc := e.run("herald", "pairing", "approve", "webhook", "ZZZZ2222"); rc != 1 || !strings.Contains(errOut, `no pending pairing code "ZZZZ2222" on webhook`) {
		t.Fatalf("herald pairing approve with a wrong code: exit %d\n%s%s", rc, out, errOut)
	}
	if out, errOut, rc := e.run("herald", "pairing", "approve", "webhook", code); rc != 0 || !strings.Contains(out, "approved: user u1 on webhook") {
		t.Fatalf("herald pairing approve: exit %d\n%s%s", rc, out, errOut)
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgPairingApproved}, sendOnceWait)
	waitReply(func(s string) bool { return s == "You can talk to the agent now." }, "approval notice")

	if code, body, err := e.post("p-2", "dm-ann", "hello agent", 0); err != nil || code/100 != 2 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	waitReply(func(s string) bool { return s == "echo: hello agent" }, "answer after the approval")
	e.systemctl("restart", "herald.service")
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, sendOnceWait)
	if code, body, err := e.post("p-3", "dm-ann", "still me", 0); err != nil || code/100 != 2 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	waitReply(func(s string) bool { return s == "echo: still me" }, "answer after another restart")
	for _, r := range recv.Delivered() {
		if r.Text == "echo: let me in" {
			t.Fatal("the message that asked for access reached the agent")
		}
	}

	if out, errOut, rc := e.run("herald", "pairing", "revoke", "webhook", "u1"); rc != 0 {
		t.Fatalf("herald pairing revoke: exit %d\n%s%s", rc, out, errOut)
	}
	e.waitJournal("herald.service", map[string]string{"MESSAGE_ID": logging.MsgPairingRevoked}, sendOnceWait)
	if out, errOut, rc := e.run("herald", "pairing", "revoke", "webhook", "u1"); rc != 1 || !strings.Contains(errOut, `user "u1" is not approved on webhook`) {
		t.Fatalf("herald pairing revoke again: exit %d\n%s%s", rc, out, errOut)
	}
	// Refused again: a new code, not an answer.
	if code, body, err := e.post("p-4", "dm-ann", "after the revocation", 0); err != nil || code/100 != 2 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	fresh := waitReply(func(s string) bool {
		return strings.Contains(s, "herald pairing approve") && !strings.HasSuffix(s, code)
	}, "new pairing code")
	for _, r := range recv.Delivered() {
		if r.Text == "echo: after the revocation" {
			t.Fatalf("a revoked user's message reached the agent (then %q)", fresh)
		}
	}
}
