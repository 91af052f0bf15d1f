// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// sync makes sure the fake has read everything the client wrote to
// connection id so far (see slacktest.Server.Sync).
func (h *harness) sync(id int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.fake.Sync(ctx, id); err != nil {
		h.t.Fatalf("sync with connection %d: %v", id, err)
	}
}

func (h *harness) acksOf(eventID string) []slacktest.Ack {
	var out []slacktest.Ack
	for _, a := range h.fake.Acks() {
		if a.EventID == eventID {
			out = append(out, a)
		}
	}
	return out
}

// waitCalls waits until Deliver has been called n times.
func (h *harness) waitCalls(n int) {
	h.t.Helper()
	testwait.For(h.t, fmt.Sprintf("%d Deliver calls", n), func() bool { return h.inbox.Calls() >= n })
}

func dm(text string) slacktest.Event {
	return slacktest.Event{Channel: "D1", ChannelType: "im", User: "U1", Text: text}
}

func TestAckOnlyAfterStore(t *testing.T) {
	h := newHarness(t, slacktest.Options{RedeliverAfter: time.Minute}, nil)
	id := h.connected()
	release := h.inbox.Block()
	p := h.fake.PushEvent(dm("slow store"))
	h.waitCalls(1)
	h.sync(id)
	if acks := h.acksOf(p.EventID); len(acks) != 0 {
		t.Fatalf("acknowledged while Deliver was still running: %+v", acks)
	}
	release()
	a := h.fake.WaitAck(t, p.EventID, wait)
	if a.EnvelopeID != p.EnvelopeID || a.Conn != id {
		t.Fatalf("ack %+v, want envelope %s on connection %d", a, p.EnvelopeID, id)
	}
	if got := h.inbox.Messages(); len(got) != 1 || got[0].EventID != p.EventID {
		t.Fatalf("stored %+v", got)
	}
}

func TestDeliverFailureIsNotAcknowledged(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	id := h.connected()
	h.inbox.SetFail(errors.New("disk full"))
	p := h.fake.PushEvent(dm("keep me"))
	h.waitCalls(1)
	h.sync(id)
	if acks := h.acksOf(p.EventID); len(acks) != 0 {
		t.Fatalf("acknowledged although Deliver failed: %+v", acks)
	}
	// Slack redelivers the unacknowledged envelope (retry_attempt 1 after
	// 300 ms); once the store works again it is stored and acknowledged.
	h.inbox.SetFail(nil)
	a := h.fake.WaitAck(t, p.EventID, wait)
	if a.RetryAttempt < 1 || a.EnvelopeID == p.EnvelopeID {
		t.Fatalf("ack %+v: want the redelivered envelope (retry_attempt >= 1), not %s", a, p.EnvelopeID)
	}
	for _, a := range h.fake.Acks() {
		if a.EnvelopeID == p.EnvelopeID {
			t.Fatalf("the failed delivery %s was acknowledged", p.EnvelopeID)
		}
	}
	if got := h.inbox.WaitN(t, 1, wait); got[0].Text != "keep me" {
		t.Fatalf("stored %+v", got[0])
	}
}

func TestRedeliveryIsDeduplicated(t *testing.T) {
	h := newHarness(t, slacktest.Options{RedeliverAfter: time.Minute}, nil)
	h.connected()
	p := h.fake.PushEvent(dm("once"))
	h.fake.WaitAck(t, p.EventID, wait)
	// The ack was lost on the way: Slack sends the event again.
	r := h.fake.Redeliver(p.EventID)
	waitAcks(t, h, p.EventID, 2)
	if h.inbox.Calls() != 2 {
		t.Fatalf("Deliver called %d times, want 2 (once per delivery)", h.inbox.Calls())
	}
	msgs := h.inbox.Messages()
	if len(msgs) != 1 || msgs[0].EventID != p.EventID {
		t.Fatalf("stored %+v, want one message with event id %s", msgs, p.EventID)
	}
	if acks := h.acksOf(p.EventID); acks[1].EnvelopeID != r.EnvelopeID || acks[1].RetryAttempt != 1 {
		t.Fatalf("acks %+v, want the redelivery %s acknowledged", acks, r.EnvelopeID)
	}
}

func waitAcks(t *testing.T, h *harness, eventID string, n int) {
	t.Helper()
	testwait.For(t, fmt.Sprintf("%d acks of %s", n, eventID), func() bool { return len(h.acksOf(eventID)) >= n })
}

// Envelopes herald does not store are still acknowledged, so Slack does
// not redeliver them.
func TestSkippedEnvelopesAreAcknowledged(t *testing.T) {
	h := newHarness(t, slacktest.Options{RedeliverAfter: time.Minute}, nil)
	id := h.connected()
	skipped := []slacktest.Pushed{
		h.fake.PushEvent(slacktest.Event{Channel: "D1", ChannelType: "im", User: "UBOT", BotID: "B1", Text: "my own reply"}),
		h.fake.PushEvent(slacktest.Event{Channel: "D1", ChannelType: "im", User: "U1", Subtype: "message_changed"}),
		h.fake.PushEvent(slacktest.Event{Channel: "C1", ChannelType: "channel", User: "U1", Text: "chatter"}),
		h.fake.PushInteractive(),
		h.fake.PushEvent(dm(strings.Repeat("x", message.MaxTextBytes+1))),
	}
	stored := h.fake.PushEvent(slacktest.Event{Type: "app_mention", Channel: "C1", User: "U1", Text: "<@UBOT> hello"})
	for _, p := range skipped {
		h.fake.WaitAck(t, p.EventID, wait)
	}
	h.fake.WaitAck(t, stored.EventID, wait)
	if err := h.fake.PushRaw(`{"envelope_id":`); err != nil {
		t.Fatal(err)
	}
	h.sync(id)
	msgs := h.inbox.Messages()
	if len(msgs) != 1 || msgs[0].EventID != stored.EventID || msgs[0].Text != "hello" || msgs[0].ThreadID != msgs[0].MessageID {
		t.Fatalf("stored %+v, want only the mention, threaded under itself", msgs)
	}
	if h.inbox.Calls() != 1 {
		t.Fatalf("Deliver called %d times, want 1", h.inbox.Calls())
	}
	if n := h.m.Rejections("too_large"); n != 1 {
		t.Errorf("too_large rejections = %d, want 1", n)
	}
	if n := h.m.Rejections("malformed"); n != 1 {
		t.Errorf("malformed rejections = %d, want 1", n)
	}
}

func TestSlashCommand(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.connected()
	p := h.fake.PushSlash(slacktest.SlashCommand{Command: "/stop", ChannelID: "D1", ChannelName: "directmessage", UserID: "U1", UserName: "ann"})
	h.fake.WaitAck(t, p.EventID, wait)
	got := h.inbox.WaitN(t, 1, wait)[0]
	if got.Text != "/stop" || got.EventID != p.EventID || got.ChatType != message.ChatDirect || got.SenderID != "U1" {
		t.Fatalf("stored %+v", got)
	}
	out := got.ReplyTo()
	out.Text = "stopped"
	if _, err := h.a.Send(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if m := h.fake.WaitMessages(t, 1, wait)[0]; m.Channel != "D1" || m.ThreadTS != "" {
		t.Fatalf("reply %+v", m)
	}
}

// An event the store refuses as invalid is acknowledged (Slack would
// redeliver it forever) and counted.
func TestStoreRejectsInvalid(t *testing.T) {
	h := newHarness(t, slacktest.Options{RedeliverAfter: time.Minute}, nil)
	h.connected()
	h.inbox.SetFail(message.ErrInvalid)
	p := h.fake.PushEvent(dm("x"))
	h.fake.WaitAck(t, p.EventID, wait)
	if n := h.m.Rejections("malformed"); n != 1 {
		t.Fatalf("malformed rejections = %d, want 1", n)
	}
}

// A slow store does not make the link look dead: the reader keeps
// answering Slack's pings and herald's pings keep succeeding while the
// intake worker spends several ping timeouts in Deliver.
func TestSlowStoreKeepsLinkAlive(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
	id := h.connected()
	release := h.inbox.Block()
	defer release()
	for range 5 {
		h.fake.PushEvent(dm("slow")) // each Deliver times out after 200 ms
	}
	h.waitCalls(1)
	fromClient, answered := h.fake.Pings(id)
	testwait.For(t, "5 pings from herald and 2 Slack pings answered while Deliver blocked", func() bool {
		f, a := h.fake.Pings(id)
		return f >= fromClient+5 && a >= answered+2
	})
	if n := h.fake.Opens(); n != 1 {
		t.Fatalf("reconnected while the store was slow (%d opens)", n)
	}
}

// Frames above coder/websocket's default 32 KiB read limit are read.
func TestLargeFrame(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.connected()
	text := strings.Repeat("long line of text\n", 3000) // 54 KB, under the 64 KiB text limit
	p := h.fake.PushEvent(dm(text))
	h.fake.WaitAck(t, p.EventID, wait)
	if got := h.inbox.WaitN(t, 1, wait)[0].Text; got != strings.TrimSpace(text) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(strings.TrimSpace(text)))
	}
	if n := h.fake.Opens(); n != 1 {
		t.Fatalf("the large frame cost a reconnection (%d opens)", n)
	}
}
