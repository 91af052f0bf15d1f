// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/testsupport/testnet"
)

// Send and Edit need no connection: the adapter is not started.
func TestReplyThread(t *testing.T) {
	tests := []struct {
		name     string
		inThread bool // reply_in_thread
		out      message.Outbound
		want     string // thread_ts
	}{
		{"thread of the message", true, message.Outbound{ChatID: "C1", ChatType: message.ChatChannel, ThreadID: "5.0", ReplyTo: "5.5"}, "5.0"},
		{"new thread under a channel message", true, message.Outbound{ChatID: "C1", ChatType: message.ChatChannel, ReplyTo: "5.5"}, "5.5"},
		{"no thread when reply_in_thread is off", false, message.Outbound{ChatID: "C1", ChatType: message.ChatChannel, ReplyTo: "5.5"}, ""},
		{"thread kept when reply_in_thread is off", false, message.Outbound{ChatID: "C1", ChatType: message.ChatChannel, ThreadID: "5.0", ReplyTo: "5.5"}, "5.0"},
		{"direct message inline", true, message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, ReplyTo: "5.5"}, ""},
		{"direct message thread kept", true, message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, ThreadID: "5.0", ReplyTo: "5.5"}, "5.0"},
		{"chat type from the channel id", true, message.Outbound{ChatID: "D9", ReplyTo: "5.5"}, ""},
		{"unsolicited", true, message.Outbound{ChatID: "C1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fastOptions(), func(c *Config) { c.ReplyInThread = tt.inThread })
			out := tt.out
			out.Text = "answer"
			res, err := h.a.Send(context.Background(), &out)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			m := h.fake.WaitMessages(t, 1, wait)[0]
			if m.ThreadTS != tt.want || m.Channel != out.ChatID || m.Text != "answer" || m.TS != res.MessageID {
				t.Fatalf("posted %+v (result %+v), want thread_ts %q", m, res, tt.want)
			}
		})
	}
}

// End to end: a top-level mention is answered in a thread under it, and a
// follow-up mention in that thread has the same session key.
func TestMentionThreadSession(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.connected()
	first := h.fake.PushEvent(slacktest.Event{Type: "app_mention", Channel: "C1", User: "U1", Text: "<@UBOT> start", TS: "10.1"})
	in := h.inbox.WaitN(t, 1, wait)[0]
	out := in.ReplyTo()
	out.Text = "started"
	if _, err := h.a.Send(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if m := h.fake.WaitMessages(t, 1, wait)[0]; m.ThreadTS != "10.1" {
		t.Fatalf("reply %+v, want thread_ts 10.1", m)
	}
	h.fake.PushEvent(slacktest.Event{Type: "app_mention", Channel: "C1", User: "U1", Text: "<@UBOT> more", TS: "10.2", ThreadTS: "10.1"})
	next := h.inbox.WaitN(t, 2, wait)[1]
	if in.SessionKey(true) != next.SessionKey(true) {
		t.Fatalf("session keys differ: %q (event %s) vs %q", in.SessionKey(true), first.EventID, next.SessionKey(true))
	}
}

func TestEdit(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	out := message.Outbound{ChatID: "D1", ChatType: message.ChatDirect, Text: "draft"}
	res, err := h.a.Send(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	out.Text = "final <answer>"
	if err := h.a.Edit(context.Background(), &out, res.MessageID); err != nil {
		t.Fatalf("Edit: %v", err)
	}
	m := h.fake.Messages()[0]
	if m.Display() != "final <answer>" || m.Edits != 1 {
		t.Fatalf("message after edit %+v", m)
	}
	err = h.a.Edit(context.Background(), &out, "999.9")
	if !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("Edit of an unknown message: %v, want ErrPermanent", err)
	}
	if err := h.a.Edit(context.Background(), &out, ""); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("Edit without ts: %v, want ErrPermanent", err)
	}
	h.fake.Inject(slacktest.Update, fakeserver.RateLimit(1, 4*time.Second))
	err = h.a.Edit(context.Background(), &out, res.MessageID)
	if ra, ok := adapter.RetryAfter(err); !errors.Is(err, adapter.ErrRateLimited) || !ok || ra != 4*time.Second {
		t.Fatalf("rate-limited Edit: %v", err)
	}
}

// An edit whose answer is lost is simply retried: it is idempotent.
func TestEditTimeoutIsTemporary(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
	out := message.Outbound{ChatID: "D1", Text: "draft"}
	res, err := h.a.Send(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	h.fake.Inject(slacktest.Post, fakeserver.Blackhole())
	h.fake.Inject(slacktest.Update, fakeserver.Blackhole())
	err = h.a.Edit(context.Background(), &out, res.MessageID)
	if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("Edit error = %v, want ErrTemporary only", err)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name       string
		fault      fakeserver.Fault
		badToken   bool
		chat       string
		want       error
		retryAfter time.Duration
	}{
		{name: "rate limited", fault: fakeserver.RateLimit(1, 7*time.Second).WithCode("ratelimited"), want: adapter.ErrRateLimited, retryAfter: 7 * time.Second},
		{name: "rate limited for 30 days", fault: fakeserver.RateLimit(1, 30*24*time.Hour), want: adapter.ErrRateLimited, retryAfter: adapter.MaxRetryAfter},
		{name: "rate limited without Retry-After", fault: fakeserver.RateLimit(1, 0), want: adapter.ErrRateLimited, retryAfter: time.Second},
		{name: "ratelimited in a 200", fault: fakeserver.Reject(http.StatusOK).WithCode("ratelimited").WithRetryAfter(3 * time.Second), want: adapter.ErrRateLimited, retryAfter: 3 * time.Second},
		{name: "channel not found", fault: fakeserver.Reject(http.StatusOK).WithCode("channel_not_found"), want: adapter.ErrPermanent},
		{name: "not in channel", fault: fakeserver.Reject(http.StatusOK).WithCode("not_in_channel"), want: adapter.ErrPermanent},
		{name: "message too long", fault: fakeserver.Reject(http.StatusOK).WithCode("msg_too_long"), want: adapter.ErrPermanent},
		{name: "revoked token", fault: fakeserver.Reject(http.StatusOK).WithCode("token_revoked"), want: adapter.ErrUnauthorized},
		{name: "wrong token", badToken: true, want: adapter.ErrUnauthorized},
		{name: "internal error", fault: fakeserver.Reject(http.StatusOK).WithCode("internal_error"), want: adapter.ErrTemporary},
		{name: "server error", fault: fakeserver.Reject(503), want: adapter.ErrTemporary},
		{name: "server error with Retry-After", fault: fakeserver.Reject(503).WithRetryAfter(2 * time.Second), want: adapter.ErrTemporary, retryAfter: 2 * time.Second},
		{name: "bad gateway page", fault: fakeserver.Reject(404), want: adapter.ErrPermanent},
		{name: "no chat id", chat: "-", want: adapter.ErrPermanent},
		{name: "timeout after the request was sent", fault: fakeserver.Blackhole(), want: adapter.ErrAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fastOptions(), func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
			if tt.fault.Kind != 0 {
				h.fake.Inject(slacktest.Post, tt.fault.Times(1))
			}
			if tt.badToken {
				h.a.botToken = mustRead(t, tokenFile(t, "bad", "xoxb-wrong"))
			}
			out := message.Outbound{ChatID: "C1", Text: "x"}
			if tt.chat == "-" {
				out.ChatID = ""
			}
			_, err := h.a.Send(context.Background(), &out)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send error = %v, want %v", err, tt.want)
			}
			if ra, ok := adapter.RetryAfter(err); ok != (tt.retryAfter > 0) || ra != tt.retryAfter {
				t.Fatalf("RetryAfter = %v, %v; want %v", ra, ok, tt.retryAfter)
			}
			if got := adapter.Retryable(err); got == (errors.Is(err, adapter.ErrPermanent) || errors.Is(err, adapter.ErrUnauthorized)) {
				t.Fatalf("Retryable(%v) = %v", err, got)
			}
			if tt.fault.Kind == fakeserver.KindBlackhole && len(h.fake.Messages()) != 1 {
				t.Fatalf("the ambiguous post should have reached the user: %+v", h.fake.Messages())
			}
		})
	}
}

// A connection that cannot be made is temporary: nothing was sent.
func TestSendRefused(t *testing.T) {
	addr := testnet.RefusedAddr(t)
	h := newHarness(t, fastOptions(), func(c *Config) { c.APIURL = "http://" + addr + "/api" })
	_, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "C1", Text: "x"})
	if !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("Send error = %v, want ErrTemporary", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want float64 // seconds
		ok   bool
	}{
		{"30", 30, true},
		{" 1 ", 1, true},
		{"0", 0, true},
		{"2592000", 2592000, true},
		{"99999999999999999999", math.Inf(1), true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{at.Add(90 * time.Second).Format(http.TimeFormat), 90, true},
		{at.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, at)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMaxMessageLen(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.MaxMessageLen = 1234 })
	var l adapter.Limiter = h.a
	if got := l.MaxMessageLen(); got != 1234 {
		t.Fatalf("MaxMessageLen = %d", got)
	}
	if got := NewConfig().MaxMessageLen; got != 39000 {
		t.Fatalf("default max_message_len = %d, want 39000", got)
	}
}

// TestSendNeutralisesMentions: the agent's text cannot notify anyone.
// Send and Edit escape <, > and &, so Slack shows mention markup as text.
func TestSendNeutralisesMentions(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	hostile := "<!channel> <!here> <!everyone> <!subteam^S1|@oncall> <@U123> <@W9|boss> @channel @here"
	out := message.Outbound{ChatID: "C1", ChatType: message.ChatChannel, Text: hostile}
	res, err := h.a.Send(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	m := h.fake.WaitMessages(t, 1, wait)[0]
	if got := m.Mentions(); len(got) != 0 || m.Display() != hostile {
		t.Fatalf("Slack shows %q with mentions %q, want the text as written and none", m.Display(), got)
	}
	out.Text = "edited " + hostile
	if err := h.a.Edit(context.Background(), &out, res.MessageID); err != nil {
		t.Fatal(err)
	}
	if m := h.fake.Messages()[0]; len(m.Mentions()) != 0 || m.Display() != out.Text {
		t.Fatalf("after Edit Slack shows %q with mentions %q", m.Display(), m.Mentions())
	}
}
