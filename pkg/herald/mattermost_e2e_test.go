// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
)

// TestE2EMattermost: websocket posted event → herald → hermes → POST
// /api/v4/posts, then exactly one reply per post across a redelivered
// event, a SIGKILL while the store is locked and a restart with posts made
// while herald is down (both caught up through the REST API from the
// durable cursor).
func TestE2EMattermost(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := mattermosttest.New(t, mattermosttest.DefaultToken)
	e := newE2E(t, "mattermost")
	e.configure(agentYAML(t, ag, "hermes"), fmt.Sprintf(`  mattermost:
    allow_all: true
    url: %s
    token: {file: %s}
    request_timeout: 2s
`, fake.URL, e.secret("mattermost-token", mattermosttest.DefaultToken)))
	p := e.start(startOpts{})
	connected := func() {
		fake.Wait(t, e2eWait, "herald's websocket", func() bool { return fake.Connections() == 1 })
	}
	connected()
	replies := func(root, text string) int {
		n := 0
		for _, m := range fake.Sent() {
			if m.RootID == root && m.Message == text {
				n++
			}
		}
		return n
	}

	// A direct message: the answer is flat, and cannot notify the channel.
	fake.Post("dm", "ann", "hello @channel", "")
	checkHermes(t, waitAgent(t, ag, 1)[0], "hello @channel")
	fake.Wait(t, e2eWait, "the reply", func() bool { return len(fake.Sent()) == 1 })
	if m := fake.Sent()[0]; m.ChannelID != "dm" || m.RootID != "" || m.Message != "agent: hello @\u200bchannel" || m.PendingPostID == "" {
		t.Fatalf("channel shows %+v, want the neutralised answer with a pending_post_id", m)
	}
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("%v messages stored, want 1", n)
	}

	// In a channel, a post mentioning the bot is answered in a thread on
	// it; one that does not mention it is not answered.
	fake.Post("town", "bob", "nobody is asked here", "")
	town := fake.Post("town", "bob", "@herald what time is it", "")
	fake.Wait(t, e2eWait, "the threaded reply", func() bool { return replies(town.ID, "agent: @herald what time is it") == 1 })

	// The websocket delivers the post again: stored once, answered once.
	e.waitIdle()
	fake.Redeliver(town.ID)
	e.waitInbound("duplicate", 1)
	if n, r := len(ag.Requests()), len(fake.Sent()); n != 2 || r != 2 {
		t.Fatalf("after a redelivery: %d agent calls, %d replies; want 2 and 2", n, r)
	}

	// Store write-locked: the post reaches herald but cannot be stored, so
	// the cursor stays before it. SIGKILL; the next instance catches up
	// from the saved cursor and answers it once.
	e.waitIdle()
	release := e.lockStore()
	written := fake.Written()
	crash := fake.Post("dm", "ann", "stored after a crash", "")
	fake.Wait(t, e2eWait, "the event written to herald", func() bool { return fake.Written() > written })
	e.kill(p)
	fake.Wait(t, e2eWait, "the websocket gone", func() bool { return fake.Connections() == 0 })
	release()
	p = e.start(startOpts{})
	fake.Wait(t, e2eWait, "the reply to the post herald could not store", func() bool { return replies("", "agent: "+crash.Message) == 1 })

	// SIGTERM: exit 0 within the bound. A post made while herald is down
	// is fetched by the next instance through REST.
	e.waitIdle()
	e.stop(p)
	fake.Wait(t, e2eWait, "the websocket closed", func() bool { return fake.Connections() == 0 })
	down := fake.Post("dm", "ann", "sent while herald is down", "")
	p = e.start(startOpts{})
	fake.Wait(t, e2eWait, "the reply to the post made while herald was down", func() bool { return replies("", "agent: "+down.Message) == 1 })
	e.waitIdle()
	e.stop(p)

	for _, text := range []string{"hello @channel", "@herald what time is it", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
	}
	if n := agentCalls(ag, "nobody is asked here"); n != 0 {
		t.Errorf("a post without a mention reached the agent %d times", n)
	}
	if n := len(fake.Sent()); n != 4 {
		t.Errorf("%d replies shown, want 4: %+v", n, fake.Sent())
	}
}

// TestE2EMattermostBadCredentials: a token the server rejects never blocks
// herald: /status shows the platform fatal, `herald doctor` reports it as
// FAIL, SIGTERM still exits 0, and the token appears nowhere in herald's
// output.
func TestE2EMattermostBadCredentials(t *testing.T) {
	t.Parallel()
	fake := mattermosttest.New(t, mattermosttest.DefaultToken)
	e := newE2E(t, "mattermost")
	const bad = "revoked-mattermost-token"
	e.configure("  kind: echo\n", fmt.Sprintf("  mattermost:\n    allow_all: true\n    url: %s\n    token: {file: %s}\n",
		fake.URL, e.secret("mattermost-token", bad)))
	p := start(t, e.cfg, startOpts{})
	p.ready()
	pr := e.waitPhase("fatal")
	if pr.Error == "" || !strings.Contains(pr.Error, "401") {
		t.Errorf("fatal platform without the server's refusal in /status: %+v", pr)
	}
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform mattermost") {
		t.Errorf("herald doctor exit %d, want %d with a FAIL line for platform mattermost:\n%s", code, herald.ExitFailure, out)
	}
	e.stop(p)
	if strings.Contains(p.output(), bad) || strings.Contains(out, bad) {
		t.Errorf("the rejected token appears in herald's output")
	}
}
