// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestE2EDingTalk: Stream mode bot message → herald → openai → reply
// through the session webhook; acknowledged only once stored; a replay,
// a crash with the store locked and a stop with a message waiting each
// end in exactly one reply.
func TestE2EDingTalk(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := dingtalktest.New(t, dingtalktest.Options{})
	e := newE2E(t, "dingtalk")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  dingtalk:
    allow_all: true
    client_id: %s
    client_secret: {file: %s}
    api_url: %s
    request_timeout: 2s
`, dingtalktest.DefaultClientID, e.secret("dingtalk-client-secret", dingtalktest.DefaultClientSecret), fake.URL))
	p := e.start(startOpts{})

	// replies counts the replies shown for text.
	replies := func(text string) int {
		n := 0
		for _, s := range fake.Sent() {
			if s.Text == "agent: "+text {
				n++
			}
		}
		return n
	}
	msg := func(id, text string) dingtalktest.Msg {
		return dingtalktest.Msg{MsgID: id, StaffID: "manager4220", Nick: "Ann", Text: text}
	}

	// A message: acknowledged on the stream only once stored; the answer
	// goes through the session webhook and notifies nobody else.
	f1 := fake.Push(msg("msg1", "hello dingtalk"))
	fake.Await(t, "the message acknowledged", e2eWait, func(s *dingtalktest.Server) bool { return s.Acked(f1) })
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("message acknowledged while %v messages are stored, want 1", n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello dingtalk" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	fake.Await(t, "the reply", e2eWait, func(s *dingtalktest.Server) bool { return len(s.Sent()) == 1 })
	if s := fake.Sent()[0]; s.Via != "webhook" || s.IsAtAll || s.Text != "agent: hello dingtalk" {
		t.Fatalf("sent %+v, want the answer through the session webhook with isAtAll false", s)
	}

	// DingTalk delivers the message again (a new frame, the same msgId):
	// acknowledged, not run again.
	f2 := fake.Push(msg("msg1", "hello dingtalk"))
	fake.Await(t, "the replay acknowledged", e2eWait, func(s *dingtalktest.Server) bool { return s.Acked(f2) })
	e.waitInbound("duplicate", 1)
	if n, r := len(ag.Requests()), len(fake.Sent()); n != 1 || r != 1 {
		t.Fatalf("after a replay: %d agent calls, %d replies; want 1 and 1", n, r)
	}

	// Store write-locked: herald reads the message but cannot store it, so
	// it must not acknowledge it. SIGKILL freezes what DingTalk saw; the
	// next instance gets the message again on its new connection and
	// answers it once.
	e.waitIdle()
	received := map[string]string{"platform": "dingtalk", "msg": "dingtalk: bot message received; storing it", "msg_id": "msg3"}
	release := e.lockStore()
	f3 := fake.Push(msg("msg3", "stored after a crash"))
	testwait.For(t, "herald holding the message it cannot store", func() bool { return logCount(p, received) > 0 })
	e.kill(p)
	fake.Await(t, "the connection gone", e2eWait, func(s *dingtalktest.Server) bool { return !s.Connected() })
	if fake.Acked(f3) {
		t.Fatal("the message herald could not store was acknowledged")
	}
	release()
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the message herald could not store", func() bool { return replies("stored after a crash") == 1 })

	// DingTalk asks herald to reconnect: nothing is lost.
	dials := fake.Dials()
	fake.Disconnect()
	fake.Await(t, "a new connection", e2eWait, func(s *dingtalktest.Server) bool { return s.Dials() > dials })
	fake.Push(msg("msg4", "after a disconnect"))
	testwait.For(t, "the reply after a disconnect", func() bool { return replies("after a disconnect") == 1 })

	// SIGTERM: exit 0 within the bound. DingTalk keeps what arrives
	// meanwhile; the next instance answers it.
	e.stop(p)
	fake.Await(t, "the connection gone", e2eWait, func(s *dingtalktest.Server) bool { return !s.Connected() })
	fake.Push(msg("msg5", "sent while herald is down"))
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the message sent while herald was down", func() bool { return replies("sent while herald is down") == 1 })
	e.stop(p)

	for _, text := range []string{"hello dingtalk", "stored after a crash", "after a disconnect", "sent while herald is down"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
		if n := replies(text); n != 1 {
			t.Errorf("%q: %d replies shown, want 1", text, n)
		}
	}
}

// TestE2EDingTalkBadCredentials: a client secret DingTalk rejects never
// blocks herald: READY=1, /status shows the platform fatal, `herald
// doctor` reports it as FAIL, SIGTERM exits 0, and the secret appears
// nowhere in herald's output.
func TestE2EDingTalkBadCredentials(t *testing.T) {
	t.Parallel()
	fake := dingtalktest.New(t, dingtalktest.Options{})
	e := newE2E(t, "dingtalk")
	const bad = "wrong-dingtalk-client-secret"
	e.configure("  kind: echo\n", fmt.Sprintf("  dingtalk:\n    allow_all: true\n    client_id: %s\n    client_secret: {file: %s}\n    api_url: %s\n",
		dingtalktest.DefaultClientID, e.secret("dingtalk-client-secret", bad), fake.URL))
	n := listenNotify(t)
	p := start(t, e.cfg, startOpts{env: []string{n.env()}})
	p.ready()
	testwait.For(t, "READY=1", func() bool { _, ok := n.find("READY=1"); return ok })
	if pr := e.waitPhase("fatal"); pr.Error == "" {
		t.Errorf("fatal platform without an error in /status: %+v", pr)
	}
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform dingtalk") {
		t.Errorf("herald doctor exit %d, want %d with a FAIL line for platform dingtalk:\n%s", code, herald.ExitFailure, out)
	}
	e.stop(p)
	if strings.Contains(p.output(), bad) || strings.Contains(out, bad) {
		t.Errorf("the rejected credential appears in herald's output")
	}
}
