// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/message"
)

// Every reply carries herald's idempotency key in its metadata.
func TestSendTagsReplyWithKey(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	out := message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, Text: "answer", IdempotencyKey: "k-1"}
	if _, err := h.a.Send(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	m := h.fake.WaitMessages(t, 1, wait)[0]
	if m.Metadata == nil || m.Metadata.EventType != "herald_reply" || m.Metadata.EventPayload["key"] != "k-1" {
		t.Fatalf("posted metadata %+v, want event_type herald_reply with key k-1", m.Metadata)
	}
}

// The send is created but its answer never comes (the adapter's view of
// herald dying during it): Recover finds the message and does not post it
// again, at the top level (conversations.history) and in a thread
// (conversations.replies).
func TestRecoverFindsHeldSend(t *testing.T) {
	for _, tt := range []struct {
		name string
		out  message.Outbound
	}{
		{"channel", message.Outbound{ChatID: "D1", ChatType: message.ChatDirect}},
		{"thread", message.Outbound{ChatID: "C1", ChatType: message.ChatChannel, ThreadID: "1700000000.000100"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fastOptions(), nil)
			// Another reply earlier in the conversation, tagged with another key.
			other := tt.out
			other.Text, other.IdempotencyKey = "earlier", "k-0"
			if _, err := h.a.Send(context.Background(), &other); err != nil {
				t.Fatal(err)
			}
			out := tt.out
			out.Text, out.IdempotencyKey = "answer", "k-1"
			h.fake.Inject(slacktest.Post, fakeserver.Blackhole())
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			since := time.Now()
			_, err := h.a.Send(ctx, &out)
			cancel()
			if !errors.Is(err, adapter.ErrAmbiguous) {
				t.Fatalf("held send: %v, want ErrAmbiguous", err)
			}
			h.fake.Heal(slacktest.Post)
			held := h.fake.WaitMessages(t, 2, wait)[1]
			res, err := h.a.Recover(context.Background(), &out, since)
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			if res.MessageID != held.TS {
				t.Fatalf("Recover returned %q, want the held message %q", res.MessageID, held.TS)
			}
			if n := len(h.fake.Messages()); n != 2 {
				t.Fatalf("the conversation shows %d messages, want 2", n)
			}
		})
	}
}

// A send that never reached Slack is posted by Recover, once, tagged.
func TestRecoverPostsWhenAbsent(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	out := message.Outbound{ChatID: "C1", ChatType: message.ChatChannel, ThreadID: "1700000000.000100", Text: "answer", IdempotencyKey: "k-1"}
	h.fake.Inject(slacktest.Post, fakeserver.Reject(503).Times(1))
	if _, err := h.a.Send(context.Background(), &out); !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("failed send: %v", err)
	}
	res, err := h.a.Recover(context.Background(), &out, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msgs := h.fake.WaitMessages(t, 1, wait)
	if len(msgs) != 1 || msgs[0].TS != res.MessageID || msgs[0].Metadata == nil {
		t.Fatalf("messages %+v, result %+v", msgs, res)
	}
	// Recover is safe to repeat: it now finds what it posted.
	again, err := h.a.Recover(context.Background(), &out, time.Now())
	if err != nil || again.MessageID != res.MessageID || len(h.fake.Messages()) != 1 {
		t.Fatalf("second Recover: %+v %v, %d messages", again, err, len(h.fake.Messages()))
	}
}

// The search pages through the conversation, and gives up (not resent)
// past its bound instead of guessing.
func TestRecoverPagesAndBounds(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	since := time.Now()
	send := func(key string) {
		t.Helper()
		out := message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, Text: "x", IdempotencyKey: key}
		if _, err := h.a.Send(context.Background(), &out); err != nil {
			t.Fatal(err)
		}
	}
	send("target")
	for i := 0; i < recoverPageSize+10; i++ { // the target is on the second page
		send(fmt.Sprint("filler-", i))
	}
	target := message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, Text: "x", IdempotencyKey: "target"}
	res, err := h.a.Recover(context.Background(), &target, since)
	if err != nil || res.MessageID != h.fake.Messages()[0].TS {
		t.Fatalf("Recover: %+v %v, want the first message", res, err)
	}
	for i := 0; i < recoverPageSize*(recoverPages-1); i++ {
		send(fmt.Sprint("more-", i))
	}
	n := len(h.fake.Messages())
	missing := message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, Text: "x", IdempotencyKey: "missing"}
	if _, err := h.a.Recover(context.Background(), &missing, since); !errors.Is(err, adapter.ErrNotResent) {
		t.Fatalf("Recover past the bound: %v, want ErrNotResent", err)
	}
	if len(h.fake.Messages()) != n {
		t.Fatal("Recover posted although it could not search the whole window")
	}
}

// A lookup Slack refuses (a token without the history scope) is not
// retried and posts nothing.
func TestRecoverLookupRefused(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.a.botToken = mustRead(t, tokenFile(t, "other", "xoxb-other"))
	out := message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, Text: "x", IdempotencyKey: "k"}
	_, err := h.a.Recover(context.Background(), &out, time.Now())
	if !errors.Is(err, adapter.ErrUnauthorized) || adapter.Retryable(err) {
		t.Fatalf("Recover with a refused lookup: %v", err)
	}
	if len(h.fake.Messages()) != 0 {
		t.Fatal("posted although the lookup failed")
	}
}
