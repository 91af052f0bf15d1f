// SPDX-License-Identifier: Apache-2.0

package herald_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/matrix/matrixtest"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestE2EMatrix: /sync event → herald → openai → a reply to the user's
// message, with the since token as the acknowledgement: saved only once
// the batch is stored, so a batch served twice, a SIGKILL while the store
// is locked and a SIGTERM each end with exactly one reply per message.
func TestE2EMatrix(t *testing.T) {
	t.Parallel()
	ag := agenttest.New(t)
	fake := matrixtest.New(t)
	e := newE2E(t, "matrix")
	e.configure(agentYAML(t, ag, "openai"), fmt.Sprintf(`  matrix:
    allow_all: true
    homeserver: %s
    access_token: {file: %s}
    poll_timeout: 1s
    request_timeout: 2s
`, fake.URL, e.secret("matrix-token", fake.Token)))
	p := e.start(startOpts{})

	const room, ann = "!dm:fake.test", "@ann:fake.test"
	fake.Members(room, 2)
	replies := func(id string) int { return len(fake.Replies(id)) }
	// acked: herald asked /sync from a position past everything pushed
	// so far, which it does only after storing it.
	acked := func(pos string) func() bool {
		return func() bool { return slices.Contains(fake.Since(), pos) }
	}

	// A message: the since token past it reaches the homeserver only once
	// it is stored; the answer is a reply to it that pings nobody.
	id1 := fake.Text(room, ann, "hello matrix")
	pos1 := fake.Position()
	fake.Wait(t, e2eWait, "the batch acknowledged", acked(pos1))
	if n := e.inbound("stored"); n != 1 {
		t.Fatalf("since %s used while %v messages are stored, want 1", pos1, n)
	}
	if r := waitAgent(t, ag, 1)[0]; r.LastUser() != "hello matrix" {
		t.Fatalf("agent got %q", r.LastUser())
	}
	fake.Wait(t, e2eWait, "the reply", func() bool { return replies(id1) == 1 })
	if s := fake.Sent()[0]; s.Room != room || s.Body() != "agent: hello matrix" || s.TxnID == "" {
		t.Fatalf("sent %+v, want the answer as a reply in %s with a transaction id", s, room)
	}

	// The homeserver serves a batch twice: stored once, answered once.
	fake.Redeliver()
	id2 := fake.Text(room, ann, "second")
	fake.Wait(t, e2eWait, "the batch served twice", func() bool { return fake.Served(id2) == 2 })
	e.waitInbound("duplicate", 1)
	checkHistory(t, waitAgent(t, ag, 2)[1], "hello matrix", "agent: hello matrix", "second")
	fake.Wait(t, e2eWait, "the reply to the second", func() bool { return replies(id2) == 1 })

	// Store write-locked: herald gets the event but cannot store it, so it
	// must not move its since token past it. SIGKILL freezes what the
	// homeserver saw; the next instance syncs from the saved token, gets
	// the event again and answers it.
	e.waitIdle()
	release := e.lockStore()
	id3 := fake.Text(room, ann, "stored after a crash")
	pos3 := fake.Position()
	fake.Wait(t, e2eWait, "the event served", func() bool { return fake.Served(id3) >= 1 })
	e.kill(p)
	if acked(pos3)() {
		t.Fatalf("since %s acknowledges event %s, which herald could not store", pos3, id3)
	}
	release()
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the event herald could not store", func() bool { return replies(id3) == 1 })

	// SIGTERM: exit 0 within the bound. The homeserver keeps what arrives
	// meanwhile; the next instance answers it.
	e.stop(p)
	id4 := fake.Text(room, ann, "sent while herald is down")
	p = e.start(startOpts{})
	testwait.For(t, "the reply to the message sent while herald was down", func() bool { return replies(id4) == 1 })
	out, _ := e.doctor()
	if hasLine(out, "FAIL", "platform matrix") {
		t.Errorf("herald doctor reports the connected matrix platform failed:\n%s", out)
	}
	e.stop(p)

	for _, text := range []string{"hello matrix", "second", "stored after a crash", "sent while herald is down"} {
		if n := agentCalls(ag, text); n != 1 {
			t.Errorf("%q: %d agent calls, want 1", text, n)
		}
	}
	for _, id := range []string{id1, id2, id3, id4} {
		if n := replies(id); n != 1 {
			t.Errorf("event %s: %d replies shown, want 1", id, n)
		}
	}
	if n := len(fake.Sent()); n != 4 {
		t.Errorf("%d messages shown, want 4", n)
	}
	// Only the very first start made an initial sync: the restarts resumed
	// from the saved token.
	if initial := fake.InitialSyncs(); initial != 1 {
		t.Errorf("%d initial syncs, want 1", initial)
	}
}

// TestE2EMatrixBadCredentials: an access token the homeserver does not
// know never blocks herald: /status shows the platform fatal, `herald
// doctor` reports it as FAIL, SIGTERM exits 0, and the token appears
// nowhere in herald's output.
func TestE2EMatrixBadCredentials(t *testing.T) {
	t.Parallel()
	fake := matrixtest.New(t)
	const bad = "syt_revoked_token_0123456789"
	e := newE2E(t, "matrix")
	e.configure("  kind: echo\n", fmt.Sprintf("  matrix:\n    allow_all: true\n    homeserver: %s\n    access_token: {file: %s}\n",
		fake.URL, e.secret("matrix-token", bad)))
	p := start(t, e.cfg, startOpts{})
	p.ready()
	pr := e.waitPhase("fatal")
	if pr.Error == "" || !strings.Contains(pr.Error, "M_UNKNOWN_TOKEN") {
		t.Errorf("fatal platform without the homeserver's error in /status: %+v", pr)
	}
	out, code := e.doctor()
	if code != herald.ExitFailure || !hasLine(out, "FAIL", "platform matrix") {
		t.Errorf("herald doctor exit %d, want %d with a FAIL line for platform matrix:\n%s", code, herald.ExitFailure, out)
	}
	e.stop(p)
	if strings.Contains(p.output(), bad) || strings.Contains(out, bad) {
		t.Errorf("the rejected token appears in herald's output")
	}
}
