// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"errors"
	"os"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/matrix/matrixtest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

// savedSince returns the since token in the state file ("" if none).
func (h *harness) savedSince(t *testing.T) string {
	t.Helper()
	s, err := stateFile{states: adapter.DirStates(h.Env.StateDir)}.load()
	if err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return s.Since
}

// The since token covering an event is saved only once the event is
// stored: while Deliver blocks, the file still holds the position before.
func TestSinceSavedAfterStoring(t *testing.T) {
	h := newHarness(t)
	h.fake.Members(room, 2)
	h.fake.Text(room, ann, "history before the first start")
	h.start(t)
	before := h.fake.Position()
	h.fake.Wait(t, wait, "the starting position saved", func() bool { return h.savedSince(t) == before })

	release := h.Inbox.Block()
	id := h.fake.Text(room, ann, "hello")
	h.fake.Wait(t, wait, "Deliver called", func() bool { return h.Inbox.Calls() == 1 })
	if got := h.savedSince(t); got != before {
		t.Fatalf("since %q saved while the event was not stored yet, want %q", got, before)
	}
	release()
	after := h.fake.Position()
	h.fake.Wait(t, wait, "the new position saved", func() bool { return h.savedSince(t) == after })

	msgs := h.Inbox.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1 (history before the first start is skipped)", len(msgs))
	}
	m := msgs[0]
	if m.EventID != id || m.MessageID != id || m.ChatID != room || m.ChatType != message.ChatDirect ||
		m.SenderID != ann || m.Text != "hello" || m.Platform != "mx" || m.ThreadID != "" {
		t.Fatalf("stored %+v", m)
	}
}

// A batch the inbox refuses is not acknowledged and is fetched again
// after a backoff, without leaving the connected state.
func TestRefusedBatchRetried(t *testing.T) {
	h := newHarness(t)
	h.fake.Members(room, 2)
	h.start(t)
	h.Inbox.SetFail(errors.New("disk full"))
	id := h.fake.Text(room, ann, "keep me")
	h.fake.Wait(t, wait, "two refused deliveries", func() bool { return h.Inbox.Calls() >= 2 })
	if h.fake.Served(id) < 2 {
		t.Fatalf("event served %d times, want it fetched again", h.fake.Served(id))
	}
	h.Inbox.SetFail(nil)
	if m := h.Inbox.WaitN(t, 1, wait)[0]; m.EventID != id {
		t.Fatalf("stored %+v", m)
	}
	for _, st := range h.St.All() {
		if st.Phase != adapter.PhaseConnected && st.Phase != adapter.PhaseStarting {
			t.Fatalf("reported %s while only the store failed", st.Phase)
		}
	}
}

// A batch the inbox refuses is not acknowledged: after a restart the next
// process syncs from the saved position and gets the event again.
func TestRefusedBatchFetchedAgainAfterRestart(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.Inbox.SetFail(errors.New("disk full"))
	h.fake.Members(room, 2)
	id := h.fake.Text(room, ann, "keep me")
	h.fake.Wait(t, wait, "a refused delivery", func() bool { return h.Inbox.Calls() >= 1 })
	adaptertest.Stop(t, h.a, wait)
	if len(h.Inbox.Messages()) != 0 {
		t.Fatal("stored despite the failing inbox")
	}

	h.Inbox.SetFail(nil)
	h.a = h.build(t)
	h.start(t)
	msgs := h.Inbox.WaitN(t, 1, wait)
	if msgs[0].EventID != id {
		t.Fatalf("stored %+v", msgs[0])
	}
	// The second process resumed: it made no initial sync of its own.
	if initial := h.fake.InitialSyncs(); initial != 1 {
		t.Fatalf("%d initial syncs, want 1 (the restart resumes from the saved position)", initial)
	}
}

// TestSyncMovesToAnotherNode: in cluster mode the sync position is kept
// in the cluster's store (a States shared by every node). The instance
// that takes the platform over on another node, whose own state directory
// is empty, syncs from it, without an initial sync of its own, and stores
// the event sent while no instance ran.
func TestSyncMovesToAnotherNode(t *testing.T) {
	shared := &adaptertest.States{}
	h := newHarness(t)
	h.Env.States = shared
	h.a = h.build(t)
	h.fake.Members(room, 2)
	h.start(t)
	first := h.fake.Text(room, ann, "before")
	h.Inbox.WaitN(t, 1, wait)
	after := h.fake.Position()
	sharedSince := func() string {
		s, err := stateFile{states: shared}.load()
		if err != nil || s == nil {
			return ""
		}
		return s.Since
	}
	h.fake.Wait(t, wait, "the position saved in the shared states", func() bool { return sharedSince() == after })
	adaptertest.Stop(t, h.a, wait)

	moved := h.fake.Text(room, ann, "while the platform moved")
	other := adaptertest.NewRig(t, "mx") // another node: its own state directory
	other.Env.States = shared
	second := adaptertest.Build(t, New, h.conf, other.Env)
	second.backoff = adaptertest.FastBackoff
	other.Start(t, second)
	if m := other.Inbox.WaitN(t, 1, wait)[0]; m.EventID != moved {
		t.Fatalf("the new node stored %q (%s) first, want the event sent while the platform moved", m.Text, m.EventID)
	}
	if initial := h.fake.InitialSyncs(); initial != 1 {
		t.Errorf("%d initial syncs, want 1 (the new node resumes from the shared position)", initial)
	}
	for _, m := range other.Inbox.Messages() {
		if m.EventID == first {
			t.Errorf("the new node stored the event the first one had stored")
		}
	}
	if ents, _ := os.ReadDir(other.Env.StateDir); len(ents) != 0 {
		t.Errorf("the new node's state directory holds %d files, want none", len(ents))
	}
	adaptertest.Stop(t, second, wait)
}

// In rooms, only mentions pass: by m.mentions, user id or display name.
// Own messages, notices and edits never pass; threads carry the root.
func TestRoomRules(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.fake.Members(room, 5)
	text := func(body string, extra map[string]any) string {
		c := map[string]any{"msgtype": "m.text", "body": body}
		for k, v := range extra {
			c[k] = v
		}
		return h.fake.Push(room, matrixtest.Event{Sender: ann, Content: c})
	}
	text("no mention", nil)
	h.fake.Push(room, matrixtest.Event{Sender: matrixtest.DefaultUserID, Content: map[string]any{"msgtype": "m.text", "body": "herald's own, Herald"}})
	h.fake.Push(room, matrixtest.Event{Sender: ann, Content: map[string]any{"msgtype": "m.notice", "body": "Herald notice"}})
	text("* Herald edited", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.replace", "event_id": "$x"}})
	// A file's name is not a mention, only its caption is.
	h.fake.Push(room, matrixtest.Event{Sender: ann, Content: map[string]any{"msgtype": "m.image", "body": "Herald.png", "url": "mxc://fake.test/x"}})
	h.fake.Push(room, matrixtest.Event{Sender: ann, Content: map[string]any{"msgtype": "m.server_notice", "body": "Herald"}})
	byPill := text("hi there", map[string]any{"m.mentions": map[string]any{"user_ids": []string{matrixtest.DefaultUserID}}})
	byName := text("herald: what time is it", nil)
	inThread := text("@herald:fake.test in a thread", map[string]any{"m.relates_to": map[string]any{
		"rel_type": "m.thread", "event_id": "$root", "is_falling_back": true, "m.in_reply_to": map[string]any{"event_id": "$root"}}})

	msgs := h.Inbox.WaitN(t, 3, wait)
	if len(msgs) != 3 || msgs[0].EventID != byPill || msgs[1].EventID != byName || msgs[2].EventID != inThread {
		t.Fatalf("stored %d messages: %+v", len(msgs), msgs)
	}
	for _, m := range msgs {
		if m.ChatType != message.ChatGroup {
			t.Errorf("%s: chat type %q, want group", m.EventID, m.ChatType)
		}
	}
	if msgs[2].ThreadID != "$root" || msgs[0].ThreadID != "" {
		t.Errorf("thread ids %q, %q", msgs[0].ThreadID, msgs[2].ThreadID)
	}
	for reason, n := range map[string]int{reasonNotMention: 2, reasonOwn: 1, reasonUnsupported: 2, reasonEdit: 1} {
		if got := h.Metrics.Rejections(reason); got != n {
			t.Errorf("Rejected(%s) = %d, want %d", reason, got, n)
		}
	}
}

func TestRequireMentionOff(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequireMention = false })
	h.start(t)
	h.fake.Members(room, 5)
	id := h.fake.Text(room, ann, "no mention")
	if m := h.Inbox.WaitN(t, 1, wait)[0]; m.EventID != id || m.ChatType != message.ChatGroup {
		t.Fatalf("stored %+v", m)
	}
}

// Invites from join_invites_from are joined (a direct invite makes a
// direct chat); others are declined.
func TestInvites(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	const dmRoom, spam = "!dm:fake.test", "!spam:fake.test"
	h.fake.Invite(spam, "@mallory:fake.test", false)
	h.fake.Invite(dmRoom, ann, true)
	h.fake.Wait(t, wait, "a join and a leave", func() bool { return len(h.fake.Joins()) == 1 && len(h.fake.Leaves()) == 1 })
	if j, l := h.fake.Joins()[0], h.fake.Leaves()[0]; j != dmRoom || l != spam {
		t.Fatalf("joined %s, left %s", j, l)
	}
	if n := h.Metrics.Rejections(reasonInvite); n != 1 {
		t.Fatalf("Rejected(invite_declined) = %d", n)
	}
	id := h.fake.Text(dmRoom, ann, "hi, no mention needed")
	if m := h.Inbox.WaitN(t, 1, wait)[0]; m.EventID != id || m.ChatType != message.ChatDirect {
		t.Fatalf("stored %+v", m)
	}
}

// An encrypted room is told once, also across a restart, and its events
// are counted.
func TestEncryptedRoom(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	enc := matrixtest.Event{Type: "m.room.encrypted", Sender: ann, Content: map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA"}}
	h.fake.Push(room, enc)
	h.fake.Push(room, enc)
	h.fake.Wait(t, wait, "two encrypted events counted", func() bool { return h.Metrics.Rejections(reasonEncrypted) == 2 })
	adaptertest.Stop(t, h.a, wait)

	h.a = h.build(t)
	h.start(t)
	h.fake.Push(room, enc)
	h.fake.Wait(t, wait, "the third encrypted event counted", func() bool { return h.Metrics.Rejections(reasonEncrypted) == 3 })
	sent := h.fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d messages sent, want one notice", len(sent))
	}
	if s := sent[0]; s.Room != room || s.Content["msgtype"] != "m.notice" || s.Body() != DefaultEncryptedNotice {
		t.Fatalf("sent %+v", s)
	}
	if len(h.Inbox.Messages()) != 0 {
		t.Fatal("an encrypted event was stored")
	}
}

// An expired token stops intake as fatal with the adapter-fatal event.
func TestExpiredToken(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.fake.Expire()
	st := h.St.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Fatalf("fatal with %v, want ErrUnauthorized", st.Err)
	}
	adaptertest.RequireEvent(t, h.Logs, logging.MsgAdapterFatal)
}

// 429 M_LIMIT_EXCEEDED on /sync: the wait is retry_after_ms, clamped.
func TestSyncRateLimited(t *testing.T) {
	h := newHarness(t)
	h.fake.RateLimit("sync", 30, 1e10)
	if err := h.a.Start(t.Context(), h.Inbox); err != nil {
		t.Fatal(err)
	}
	st := h.St.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if !errors.Is(st.Err, adapter.ErrRateLimited) {
		t.Fatalf("reconnecting with %v", st.Err)
	}
	h.fake.Wait(t, wait, "a clamped retry_after_ms", func() bool { return len(adaptertest.Clamps(h.Logs)) == 1 })
	if c := adaptertest.Clamps(h.Logs)[0]; c["used"] != adapter.MaxRetryAfter.String() {
		t.Fatalf("clamp %v", c)
	}
	// The reconnect after the clamped answer is logged after the clamp.
	var waits []any
	h.fake.Wait(t, wait, "two reconnect waits logged", func() bool {
		waits = waits[:0]
		for _, e := range h.Logs.AllEntries() {
			if d, ok := e.Data["retry_in"]; ok {
				waits = append(waits, d)
			}
		}
		return len(waits) >= 2
	})
	if len(waits) != 2 || waits[0] != "30ms" || waits[1] != "1h0m0s" {
		t.Fatalf("waits %v, want retry_after_ms 30ms then the clamped 1h", waits)
	}
}

// A /sync that never returns is cut at poll_timeout + request_timeout and
// the next one gets the event.
func TestBlackholedSync(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.fake.Blackhole()
	h.fake.Wait(t, wait, "a held sync", func() bool { return h.fake.Blackholed() == 1 })
	h.fake.Members(room, 2)
	id := h.fake.Text(room, ann, "after the silence")
	if m := h.Inbox.WaitN(t, 1, wait)[0]; m.EventID != id {
		t.Fatalf("stored %+v", m)
	}
}
