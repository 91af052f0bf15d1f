// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestMattermostRestarts: the Mattermost fake, served in the sandbox's
// network namespace, and herald.service under the real systemd. Each post
// gets exactly one reply across `systemctl restart`, a stop with a post
// made meanwhile (caught up through the REST API from the saved cursor),
// a SIGKILL while a reply is on the wire (settled by looking the reply's
// key up in the channel after the server has forgotten its
// pending_post_id) and a SIGKILL with a post made while systemd restarts
// herald.
func TestMattermostRestarts(t *testing.T) {
	e := newEnv(t, envOpts{})
	fake := mattermosttest.NewOn(t, e.s.Listen, mattermosttest.DefaultToken)
	e.credential("mattermost-token", mattermosttest.DefaultToken)
	e.writeConfig(sendOnceConfig(fmt.Sprintf(`  mattermost:
    allow_all: true
    url: %s
    token: {credential: mattermost-token}
    request_timeout: 2s
`, fake.URL)))
	e.startReady()
	connected := func() {
		t.Helper()
		fake.Wait(t, sendOnceWait, "herald's websocket", func() bool { return fake.Connections() == 1 })
	}
	replies := func(text string) int {
		n := 0
		for _, m := range fake.Sent() {
			if m.Message == "echo: "+text {
				n++
			}
		}
		return n
	}
	answered := func(text string) {
		t.Helper()
		fake.Wait(t, sendOnceWait, "the reply to "+text, func() bool { return replies(text) >= 1 })
	}
	// killed SIGKILLs herald.service, runs meanwhile, and waits until
	// systemd has restarted it.
	killed := func(meanwhile func()) {
		t.Helper()
		before := e.mainPID()
		e.systemctl("kill", "--signal=KILL", "herald.service")
		meanwhile()
		testwait.Within(t, sendOnceWait, "herald restarted by systemd", func() bool {
			p := e.show("herald.service", "MainPID", "ActiveState", "SubState")
			return p["MainPID"] != before && p["MainPID"] != "0" && p["ActiveState"] == "active" && p["SubState"] == "running"
		})
	}
	connected()

	fake.Post("dm", "ann", "one", "")
	answered("one")

	// A post just before a restart.
	fake.Post("dm", "ann", "two", "")
	e.systemctl("restart", "herald.service")
	connected()
	answered("two")

	// A post while herald is stopped.
	e.settled()
	e.systemctl("stop", "herald.service")
	fake.Wait(t, sendOnceWait, "the websocket closed", func() bool { return fake.Connections() == 0 })
	fake.Post("dm", "ann", "three", "")
	e.startReady()
	connected()
	answered("three")

	// SIGKILL while the reply is on the wire: the post exists, herald
	// never learnt it. The server has forgotten the pending_post_id; the
	// next instance finds the reply by its key and does not post it again.
	e.settled()
	fake.SetPendingTTL(0)
	fake.HoldAnswers(1)
	fake.Post("dm", "ann", "four", "")
	fake.Wait(t, sendOnceWait, "the held reply", func() bool { return fake.Held() == 1 })
	killed(func() {})
	connected()
	e.settled()

	// SIGKILL with a post made while systemd restarts herald.
	killed(func() { fake.Post("dm", "ann", "five", "") })
	connected()
	answered("five")
	e.settled()

	for _, text := range []string{"one", "two", "three", "four", "five"} {
		if n := replies(text); n != 1 {
			t.Errorf("%q: %d replies, want 1", text, n)
		}
	}
	if n := len(fake.Sent()); n != 5 {
		t.Errorf("%d replies shown, want 5: %+v", n, fake.Sent())
	}
	if d, _, raw := e.doctor(); d.find("platform mattermost") == nil || d.find("platform mattermost").Result != "PASS" {
		t.Errorf("doctor does not show platform mattermost as PASS:\n%s", raw)
	}

	// The token expires: the platform is shown as failed, and herald
	// keeps running.
	fake.Expire()
	e.systemctl("restart", "herald.service")
	testwait.Within(t, sendOnceWait, "doctor showing the rejected token", func() bool {
		d, _, _ := e.doctor()
		c := d.find("platform mattermost")
		return c != nil && c.Result == "FAIL"
	})
	if p := e.show("herald.service", "ActiveState"); p["ActiveState"] != "active" {
		t.Errorf("herald.service %v with a rejected token, want active", p)
	}
}
