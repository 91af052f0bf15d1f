// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/matrix/matrixtest"
)

// Matrix under the real systemd: the fake homeserver is served in the
// sandbox's network namespace, herald.service runs with its
// StateDirectory, and the user sees exactly one reply per message across
// `systemctl restart` and a SIGKILL while a reply is on the wire (the
// homeserver stored it, herald never got the answer): the next instance
// sends it again with the same transaction id, which the homeserver
// deduplicates. Only the very first start makes an initial sync: every
// restart resumes from the since token saved in the state directory.
func TestMatrixUnderSystemd(t *testing.T) {
	e := newEnv(t, envOpts{})
	fake := matrixtest.NewOn(t, e.s.Listen)
	e.credential("matrix-token", fake.Token)
	e.writeConfig(sendOnceConfig(fmt.Sprintf(`  matrix:
    allow_all: true
    homeserver: %s
    access_token: {credential: matrix-token}
    poll_timeout: 5s
`, fake.URL)))
	const room, ann = "!dm:fake.test", "@ann:fake.test"
	replies := func(id string) int { return len(fake.Replies(id)) }
	e.startReady()
	fake.Wait(t, sendOnceWait, "a sync past the initial one", func() bool { return len(fake.Since()) > fake.InitialSyncs() })
	fake.Members(room, 2)
	id1 := fake.Text(room, ann, "hello")
	fake.Wait(t, sendOnceWait, "the reply to hello", func() bool { return replies(id1) == 1 })
	if s := fake.Sent()[0]; s.Body() != "echo: hello" {
		t.Fatalf("sent %+v", s)
	}
	if d, _, out := e.doctor(); d.find("platform matrix") == nil || d.find("platform matrix").Result != "PASS" {
		t.Errorf("herald doctor does not show platform matrix as PASS:\n%s", out)
	}

	// systemctl restart: what arrives while herald restarts is answered
	// once by the next instance.
	e.systemctl("restart", "herald.service")
	id2 := fake.Text(room, ann, "across a restart")
	fake.Wait(t, sendOnceWait, "the reply across a restart", func() bool { return replies(id2) == 1 })

	// SIGKILL while the reply is on the wire.
	fake.HoldSends(true)
	id3 := fake.Text(room, ann, "killed during the send")
	e.killDuringSend(func() {
		fake.Wait(t, sendOnceWait, "the held reply", func() bool { return fake.HeldSends() == 1 && replies(id3) == 1 })
		fake.HoldSends(false)
	})
	e.settled()
	txn := fake.Replies(id3)[0].TxnID
	if n := fake.Puts(txn); n < 2 {
		t.Fatalf("the interrupted reply was sent %d times; want it sent again after the SIGKILL, with the same transaction id", n)
	}
	id4 := fake.Text(room, ann, "after the crash")
	fake.Wait(t, sendOnceWait, "the reply after the crash", func() bool { return replies(id4) == 1 })
	e.settled()

	for _, id := range []string{id1, id2, id3, id4} {
		if n := replies(id); n != 1 {
			t.Errorf("event %s: the user sees %d replies, want 1", id, n)
		}
	}
	if n := len(fake.Sent()); n != 4 {
		t.Errorf("the room shows %d replies, want 4: %+v", n, fake.Sent())
	}
	if initial := fake.InitialSyncs(); initial != 1 {
		t.Errorf("%d initial syncs, want 1: the restarts must resume from the saved since token", initial)
	}
}
