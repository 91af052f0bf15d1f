// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
)

// DingTalk Stream mode under the real systemd: the fake is served in the
// sandbox's network namespace. A message pushed as `systemctl restart`
// begins and a reply whose send is cut by SIGKILL (systemd restarts
// herald) each end in exactly one reply the user sees.
func TestDingTalkRestartAndSIGKILL(t *testing.T) {
	e := newEnv(t, envOpts{})
	fake := dingtalktest.NewOn(t, e.s.Listen, dingtalktest.Options{})
	e.credential("dingtalk-secret", dingtalktest.DefaultClientSecret)
	e.writeConfig(sendOnceConfig(fmt.Sprintf(`  dingtalk:
    allow_all: true
    client_id: %s
    client_secret: {credential: dingtalk-secret}
    api_url: %s
`, dingtalktest.DefaultClientID, fake.URL)))
	e.startReady()
	replies := func(text string) int {
		n := 0
		for _, s := range fake.Sent() {
			if s.Text == "echo: "+text {
				n++
			}
		}
		return n
	}
	msg := func(id, text string) dingtalktest.Msg {
		return dingtalktest.Msg{MsgID: id, StaffID: "manager4220", Text: text}
	}
	answered := func(frame, text string) func(*dingtalktest.Server) bool {
		return func(s *dingtalktest.Server) bool { return s.Acked(frame) && replies(text) >= 1 }
	}

	f1 := fake.Push(msg("msg1", "hello"))
	fake.Await(t, "the first reply", sendOnceWait, answered(f1, "hello"))

	// Pushed as the restart begins: stored and answered by the old
	// instance, or left unacknowledged and delivered again to the new one.
	f2 := fake.Push(msg("msg2", "across a restart"))
	e.systemctl("restart", "herald.service")
	e.waitProps("herald.service", map[string]string{"ActiveState": "active", "SubState": "running"}, sendOnceWait)
	fake.Await(t, "the reply across the restart", sendOnceWait, answered(f2, "across a restart"))

	// The session webhook shows the reply but never answers: herald is
	// SIGKILLed mid-send and restarted by systemd. DingTalk has no
	// idempotency key, so the unknown outcome is not sent again.
	fake.HoldWebhook(true)
	f3 := fake.Push(msg("msg3", "killed mid-send"))
	e.killDuringSend(func() {
		fake.Await(t, "the held reply", sendOnceWait, func(*dingtalktest.Server) bool { return replies("killed mid-send") == 1 })
	})
	fake.HoldWebhook(false)
	e.settled()

	f4 := fake.Push(msg("msg4", "after the crash"))
	fake.Await(t, "the reply after the crash", sendOnceWait, answered(f4, "after the crash"))
	e.settled()
	fake.Await(t, "every frame acknowledged", sendOnceWait, func(s *dingtalktest.Server) bool { return s.Pending() == 0 })
	if !fake.Acked(f3) {
		t.Error("the message whose reply was cut was never acknowledged")
	}
	for _, text := range []string{"hello", "across a restart", "killed mid-send", "after the crash"} {
		if n := replies(text); n != 1 {
			t.Errorf("%q: the user sees %d replies, want 1: %+v", text, n, fake.Sent())
		}
	}
}
