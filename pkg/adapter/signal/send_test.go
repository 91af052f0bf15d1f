// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/message"
)

const groupID = "Z3JvdXAtaWQtMzItYnl0ZXMtbG9uZy4uLi4uLi4uLi4="

func TestSendDirect(t *testing.T) {
	h := newHarness(t)
	res, err := h.a.Send(t.Context(), &message.Outbound{ChatID: "+15550001", ReplyTo: "1700000000001", RecipientID: "+15550001", Text: "hello @everyone"})
	if err != nil {
		t.Fatal(err)
	}
	s := h.fake.Sent()
	if len(s) != 1 || len(s[0].Recipient) != 1 || s[0].Recipient[0] != "+15550001" || s[0].GroupID != "" || s[0].Message != "hello @everyone" {
		t.Fatalf("sent %+v", s)
	}
	if res.MessageID != strconv.FormatInt(s[0].Timestamp, 10) {
		t.Errorf("MessageID %q, want the send's timestamp %d", res.MessageID, s[0].Timestamp)
	}
	// No quote in a direct chat; no mention or style ranges ever: agent
	// text cannot notify anyone.
	if s[0].QuoteTimestamp != 0 || s[0].Mention != nil || s[0].TextStyle != nil || s[0].Account != "" {
		t.Errorf("sent %+v", s[0])
	}
}

func TestSendGroupQuotes(t *testing.T) {
	h := newHarness(t)
	_, err := h.a.Send(t.Context(), &message.Outbound{ChatID: GroupPrefix + groupID, ReplyTo: "1700000000001", RecipientID: "+15550001", Text: "hi all"})
	if err != nil {
		t.Fatal(err)
	}
	s := h.fake.Sent()
	if len(s) != 1 || s[0].GroupID != groupID || s[0].Recipient != nil || s[0].QuoteTimestamp != 1700000000001 || s[0].QuoteAuthor != "+15550001" {
		t.Fatalf("sent %+v", s)
	}
}

func TestSendErrors(t *testing.T) {
	dm := &message.Outbound{ChatID: "+15550001", Text: "x"}
	group := &message.Outbound{ChatID: GroupPrefix + groupID, Text: "x"}
	for _, tc := range []struct {
		name   string
		reply  signaltest.Reply
		msg    *message.Outbound
		want   error
		after  time.Duration
		notErr bool
	}{
		{name: "rate limit result with proof", reply: signaltest.Reply{Results: []string{"RATE_LIMIT_FAILURE"}, RetryAfter: 30}, want: adapter.ErrRateLimited, after: 30 * time.Second},
		{name: "rate limit result", reply: signaltest.Reply{Results: []string{"RATE_LIMIT_FAILURE"}}, want: adapter.ErrRateLimited},
		{name: "huge retry clamped", reply: signaltest.Reply{Results: []string{"RATE_LIMIT_FAILURE"}, RetryAfter: 1 << 40}, want: adapter.ErrRateLimited, after: adapter.MaxRetryAfter},
		{name: "rate limit error", reply: signaltest.Reply{Code: codeRateLimit, Message: "Failed to send message due to rate limiting"}, want: adapter.ErrRateLimited},
		{name: "rate limit in message", reply: signaltest.Reply{Code: -32603, Message: "RateLimitException: Rate limit exceeded: 413"}, want: adapter.ErrRateLimited},
		{name: "unregistered", reply: signaltest.Reply{Code: codeUserError, Message: "The user +15550001 is not registered."}, want: adapter.ErrPermanent},
		{name: "unregistered result", reply: signaltest.Reply{Results: []string{"UNREGISTERED_FAILURE"}}, want: adapter.ErrPermanent},
		{name: "untrusted", reply: signaltest.Reply{Code: codeUntrustedKey, Message: "untrusted"}, want: adapter.ErrPermanent},
		{name: "invalid params", reply: signaltest.Reply{Code: -32602, Message: "bad"}, want: adapter.ErrPermanent},
		{name: "network result", reply: signaltest.Reply{Results: []string{"NETWORK_FAILURE"}}, want: adapter.ErrTemporary},
		{name: "io error", reply: signaltest.Reply{Code: codeIOError, Message: "io"}, want: adapter.ErrAmbiguous},
		{name: "internal error", reply: signaltest.Reply{Code: -32603, Message: "boom"}, want: adapter.ErrAmbiguous},
		{name: "http 500", reply: signaltest.Reply{Status: 500}, want: adapter.ErrAmbiguous},
		{name: "http 415", reply: signaltest.Reply{Status: 415}, want: adapter.ErrPermanent},
		{name: "no answer", reply: signaltest.Reply{Hang: true}, want: adapter.ErrAmbiguous},
		{name: "partial group", reply: signaltest.Reply{Results: []string{"SUCCESS", "NETWORK_FAILURE", "UNREGISTERED_FAILURE"}}, msg: group, notErr: true},
		{name: "bad chat id", msg: &message.Outbound{ChatID: "group:", Text: "x"}, want: adapter.ErrPermanent},
		{name: "empty text", msg: &message.Outbound{ChatID: "+15550001", Text: " "}, want: adapter.ErrPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				if tc.reply.Hang {
					c.RequestTimeout = 200 * time.Millisecond
				}
			})
			h.fake.Script(tc.reply)
			msg := tc.msg
			if msg == nil {
				msg = dm
			}
			_, err := h.a.Send(t.Context(), msg)
			if tc.notErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
			d, ok := adapter.RetryAfter(err)
			if tc.after != d || ok != (tc.after != 0) {
				t.Errorf("retry after %v (%v), want %v", d, ok, tc.after)
			}
			if clamped := len(adaptertest.Clamps(h.Logs)) > 0; clamped != (tc.after == adapter.MaxRetryAfter) {
				t.Errorf("clamp logged: %v", clamped)
			}
		})
	}
}

func TestSendDaemonDown(t *testing.T) {
	h := newHarness(t)
	h.fake.Down()
	_, err := h.a.Send(t.Context(), &message.Outbound{ChatID: "+15550001", Text: "x"})
	if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("Send = %v, want ErrTemporary", err)
	}
}

func TestRecover(t *testing.T) {
	msg := &message.Outbound{ChatID: "+15550001", Text: "answer", IdempotencyKey: "k"}
	t.Run("resend marked", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.a.Recover(t.Context(), msg, time.Now()); err != nil {
			t.Fatal(err)
		}
		if s := h.fake.Sent(); len(s) != 1 || s[0].Message != RecoveredMark+"\nanswer" {
			t.Fatalf("sent %+v", s)
		}
	})
	t.Run("marked resend ambiguous", func(t *testing.T) {
		h := newHarness(t)
		h.fake.Script(signaltest.Reply{Status: 502})
		if _, err := h.a.Recover(t.Context(), msg, time.Now()); !errors.Is(err, adapter.ErrNotResent) {
			t.Fatalf("Recover = %v, want ErrNotResent", err)
		}
	})
	t.Run("at most once", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.InterruptedSend = AtMostOnce })
		_, err := h.a.Recover(t.Context(), msg, time.Now())
		if !errors.Is(err, adapter.ErrNotResent) || !strings.Contains(err.Error(), AtMostOnce) {
			t.Fatalf("Recover = %v", err)
		}
		if n := h.fake.Sends(); n != 0 {
			t.Errorf("%d sends", n)
		}
	})
}

func TestNotDeduplicating(t *testing.T) {
	if adapter.DeduplicatesSends(TypeName) {
		t.Error("signal is registered as deduplicating sends; Signal has no idempotency key")
	}
}
