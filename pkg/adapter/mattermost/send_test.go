// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/message"
)

func reply(chat string, ct message.ChatType, thread, replyTo, text string) *message.Outbound {
	return &message.Outbound{Platform: TypeName, ChatID: chat, ChatType: ct, ThreadID: thread, ReplyTo: replyTo,
		Text: text, IdempotencyKey: message.IdempotencyKey(TypeName, replyTo+thread+text, 1), Part: 1, Parts: 1}
}

func TestSendThreadsKeyAndNeutralizes(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	ctx := context.Background()
	cases := []struct {
		msg      *message.Outbound
		wantRoot string
	}{
		{reply("town", message.ChatChannel, "", "p1", "@channel look, @HERE and @all: done"), "p1"},
		{reply("town", message.ChatChannel, "root9", "p2", "in the thread"), "root9"},
		{reply("dm", message.ChatDirect, "", "p3", "flat"), ""},
	}
	for i, c := range cases {
		res, err := h.a.Send(ctx, c.msg)
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		sent := h.fake.Sent()
		p := sent[len(sent)-1]
		if p.ID != res.MessageID || p.RootID != c.wantRoot || p.ChannelID != c.msg.ChatID {
			t.Errorf("Send %d: post %+v, result %q, want root %q", i, p, res.MessageID, c.wantRoot)
		}
		if p.PendingPostID != c.msg.IdempotencyKey || p.Props[keyProp] != c.msg.IdempotencyKey {
			t.Errorf("Send %d: pending_post_id %q, props %v; want the key %q", i, p.PendingPostID, p.Props, c.msg.IdempotencyKey)
		}
	}
	if got, want := h.fake.Sent()[0].Message, "@\u200bchannel look, @\u200bHERE and @\u200ball: done"; got != want {
		t.Errorf("sent %q, want %q", got, want)
	}
}

func TestNeutralize(t *testing.T) {
	for in, want := range map[string]string{
		"@channel":          "@\u200bchannel",
		"hi @here.":         "hi @\u200bhere.",
		"@All":              "@\u200bAll",
		"@channels @alice":  "@channels @alice",
		"mail@here":         "mail@\u200bhere",
		"nothing to change": "nothing to change",
	} {
		if got := Neutralize(in); got != want {
			t.Errorf("Neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}

// Within the server's 30 seconds, a repeated pending_post_id returns the
// first post.
func TestSendRepeatWithinPendingWindow(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	msg := reply("town", message.ChatChannel, "", "p1", "once")
	a, err := h.a.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.a.Send(context.Background(), msg)
	if err != nil || a != b || len(h.fake.Sent()) != 1 {
		t.Fatalf("second send %v %v, %d posts", b, err, len(h.fake.Sent()))
	}
}

func TestSendRateLimited(t *testing.T) {
	for _, c := range []struct {
		retryAfter, reset string
		want              time.Duration
		clamped           bool
	}{
		{"", "3", 3 * time.Second, false},
		{"2", "50", 2 * time.Second, false},
		{"9999999", "", adapter.MaxRetryAfter, true},
		{"", "", minRateWait, false},
		{"", "0", minRateWait, true},
		{"soon", "", minRateWait, false},
		{"", strconv.FormatInt(time.Now().Add(time.Hour+time.Minute).Unix(), 10), adapter.MaxRetryAfter, true},
	} {
		h := newHarness(t, nil, "", nil)
		logs := adaptertest.Logs(adapter.Env{Log: h.a.Log})
		h.fake.RateLimit(1, c.retryAfter, c.reset)
		_, err := h.a.Send(context.Background(), reply("town", message.ChatChannel, "", "p", "x"))
		d, ok := adapter.RetryAfter(err)
		if !errors.Is(err, adapter.ErrRateLimited) || !ok || d != c.want {
			t.Errorf("Retry-After %q, reset %q: %v (wait %v), want rate limited for %v", c.retryAfter, c.reset, err, d, c.want)
		}
		if got := len(adaptertest.Clamps(logs)) == 1; got != c.clamped {
			t.Errorf("Retry-After %q: clamp logged %v, want %v", c.retryAfter, got, c.clamped)
		}
	}
}

func TestSendErrors(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	_, err := h.a.Send(context.Background(), reply("nowhere", message.ChatChannel, "", "p", "x"))
	if !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("unknown channel: %v, want permanent", err)
	}
	h.fake.Expire()
	_, err = h.a.Send(context.Background(), reply("town", message.ChatChannel, "", "p", "x"))
	if !errors.Is(err, adapter.ErrUnauthorized) {
		t.Errorf("expired token: %v, want unauthorized", err)
	}
}

// A send whose answer was lost is settled by Recover: the post it created
// is found by its key, after the server's 30 seconds are over, and not
// posted again.
func TestRecoverFindsInterruptedSend(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	h.fake.LoseAnswers(1)
	msg := reply("town", message.ChatChannel, "", "p1", "maybe sent")
	since := time.Now()
	_, err := h.a.Send(context.Background(), msg)
	if !errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("lost answer: %v, want ambiguous", err)
	}
	h.fake.SetPendingTTL(0) // the server has forgotten the pending_post_id
	res, err := h.a.Recover(context.Background(), msg, since)
	sent := h.fake.Sent()
	if err != nil || len(sent) != 1 || res.MessageID != sent[0].ID {
		t.Fatalf("Recover = %v, %v; %d posts", res, err, len(sent))
	}
}

func TestRecoverSendsWhenNothingArrived(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	h.fake.Post("town", mmBot(), "an older reply of the bot", "")
	msg := reply("town", message.ChatChannel, "", "p1", "never arrived")
	res, err := h.a.Recover(context.Background(), msg, time.Now())
	sent := h.fake.Sent()
	if err != nil || len(sent) != 2 || res.MessageID != sent[1].ID || sent[1].Message != "never arrived" {
		t.Fatalf("Recover = %v, %v; posts %+v", res, err, sent)
	}
}
