// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// signalAccount is the account of the fake signal-cli daemon.
const signalAccount = "+15550100"

// TestE2ESignal: signal-cli's event stream → herald → openai → JSON-RPC
// send, one reply per message across a replay, a SIGKILL while the store
// cannot take the message, a SIGTERM with a message arriving meanwhile, and
// a daemon that goes down (reconnecting; doctor fails its daemon check).
func TestE2ESignal(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := signaltest.New(t, signalAccount)
	e := newE2E(t, "signal")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  signal:
    allow_all: true
    url: %s
    account: "%s"
    request_timeout: 2s
`, fake.URL, signalAccount))
	p := e.start(startOpts{})

	// replies counts the replies to text the user sees.
	replies := func(text string) int {
		n := 0
		for _, s := range fake.Sent() {
			if s.Message == "agent: "+text {
				n++
			}
		}
		return n
	}
	cursor := func() string {
		b, _ := os.ReadFile(filepath.Join(e.dir, "state", "platforms", "signal", "last-event-id"))
		return strings.TrimSpace(string(b))
	}

	// A direct message: stored before its id is recorded, answered to the
	// sender.
	hello := fake.Message("hello signal")
	id1 := fake.Push(hello)
	testwait.For(t, "the event id recorded", func() bool { return cursor() == id1 })
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("event id recorded while %v messages are stored, want 1", n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello signal" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	testwait.For(t, "the reply", func() bool { return replies("hello signal") == 1 })
	if s := fake.Sent()[0]; len(s.Recipient) != 1 || s.Recipient[0] != "+15550001" || s.GroupID != "" || s.Account != signalAccount {
		t.Fatalf("sent %+v, want the answer to +15550001 from %s", s, signalAccount)
	}

	// The daemon writes the same envelope again: not run again.
	fake.Push(hello)
	e.waitInbound("duplicate", 1)

	// A group message: the answer goes to the group, quoting it.
	g := fake.Message("hello group")
	g.GroupID = "Z3JvdXAtaWQtMzItYnl0ZXMtbG9uZy4uLi4uLi4uLi4="
	fake.Push(g)
	testwait.For(t, "the group reply", func() bool { return replies("hello group") == 1 })
	for _, s := range fake.Sent() {
		if s.Message == "agent: hello group" && (s.GroupID != g.GroupID || s.QuoteTimestamp != g.Timestamp || s.QuoteAuthor != "+15550001") {
			t.Fatalf("group reply %+v", s)
		}
	}

	// Store write-locked: herald reads the event but cannot store it, so
	// it must not record its id. SIGKILL; the next instance resumes from
	// the last stored event, gets it again and answers it.
	e.waitIdle()
	release := e.lockStore()
	written := fake.Written()
	id3 := fake.Push(fake.Message("stored after a crash"))
	testwait.For(t, "the event written to herald's stream", func() bool { return fake.Written() > written })
	e.kill(p)
	if c := cursor(); c == id3 {
		t.Fatalf("event %s recorded as handled, but herald could not store it", id3)
	}
	release()
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the message herald could not store", func() bool { return replies("stored after a crash") == 1 })

	// SIGTERM: exit 0 within the bound. The daemon keeps what arrives
	// meanwhile; the next instance asks for it with Last-Event-ID.
	e.waitIdle()
	e.stop(p)
	fake.Push(fake.Message("sent while herald is down"))
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the message sent while herald was down", func() bool { return replies("sent while herald is down") == 1 })

	// The daemon goes down: reconnecting, and doctor says the daemon does
	// not answer; back up, connected again.
	fake.Down()
	waitStatus(t, e.dir, func(s herald.StatusReport) bool {
		for _, p := range s.Platforms {
			if p.Name == "signal" && p.Phase == "reconnecting" && strings.Contains(p.Error, "daemon not answering") {
				return true
			}
		}
		return false
	})
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "daemon of signal") || !hasLine(out, "WARN", "platform signal") {
		t.Errorf("herald doctor exit %d, want %d with a FAIL for the daemon and a WARN for the platform:\n%s", code, herald.ExitFailure, out)
	}
	fake.Up()
	e.waitPhase("connected")
	fake.Push(fake.Message("after the daemon came back"))
	testwait.For(t, "the reply after the daemon came back", func() bool { return replies("after the daemon came back") == 1 })
	e.waitIdle()
	e.stop(p)

	for _, text := range []string{"hello signal", "hello group", "stored after a crash", "sent while herald is down", "after the daemon came back"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
		if n := replies(text); n != 1 {
			t.Errorf("%q: %d replies shown, want 1", text, n)
		}
	}
	if ids := fake.LastEventIDs(); ids[0] != "" || ids[len(ids)-1] == "" {
		t.Errorf("Last-Event-ID of the streams: %q; want none at the first start, then the last stored event", ids)
	}
}

// TestE2ESignalUnknownAccount: a multi-account daemon without the
// configured account answers the event stream with 400: the platform is
// fatal ("rejected credentials"), status and doctor show it failed.
func TestE2ESignalUnknownAccount(t *testing.T) {
	t.Parallel()
	fake := signaltest.New(t, signalAccount)
	e := newE2E(t, "signal")
	e.configure("  kind: echo\n", fmt.Sprintf("  signal:\n    allow_all: true\n    url: %s\n    account: \"+15559999\"\n", fake.URL))
	p := start(t, e.cfg, startOpts{})
	p.ready()
	pr := e.waitPhase("fatal")
	if !strings.Contains(pr.Error, "no account") {
		t.Errorf("fatal with %q", pr.Error)
	}
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform signal") || !hasLine(out, "FAIL", "daemon of signal") {
		t.Errorf("herald doctor exit %d, want %d with FAIL lines for the platform and its daemon:\n%s", code, herald.ExitFailure, out)
	}
	e.stop(p)
}
