// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestReplyThreading(t *testing.T) {
	h := newHarness(t)
	forum := telegramtest.Chat{ID: -1001, Type: "supergroup", IsForum: true}
	h.fake.Push(telegramtest.Update{Message: &telegramtest.Message{
		MessageThreadID: 17, IsTopicMessage: true, From: &ann, Chat: forum, Text: "/status@gw_bot now",
	}})
	h.start(t)
	in := h.inbox.WaitN(t, 1, wait)[0]
	if in.ThreadID != "17" || in.ChatType != message.ChatGroup || in.Text != "/status now" {
		t.Fatalf("inbound %+v", *in)
	}

	out := in.ReplyTo()
	out.Text, out.IdempotencyKey = "fine", message.IdempotencyKey(in.Platform, in.EventID, 1)
	res, err := h.a.Send(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	sent := h.fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d messages", len(sent))
	}
	s := sent[0]
	if s.ChatID != "-1001" || s.Text != "fine" || strconv.FormatInt(s.ReplyTo, 10) != in.MessageID ||
		!s.AllowSendingWithoutReply || s.ThreadID != 17 || res.MessageID != strconv.FormatInt(s.MessageID, 10) {
		t.Fatalf("sent %+v, result %+v", s, res)
	}
	req := h.fake.Requests("sendMessage")[0]
	if req.Encoding != "json" || req.Params.Has("parse_mode") {
		t.Errorf("request %v: want a JSON body without parse_mode", req.Params)
	}

	// No reply target, no thread: neither parameter is sent.
	if _, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: "plain"}); err != nil {
		t.Fatal(err)
	}
	p := h.fake.Requests("sendMessage")[1].Params
	if p.Has("reply_parameters") || p.Has("message_thread_id") {
		t.Errorf("unexpected params %v", p)
	}
}

func TestLimitAndSplit(t *testing.T) {
	h := newHarness(t)
	if got := h.a.MaxMessageLen(); got != 4096 {
		t.Fatalf("MaxMessageLen %d", got)
	}
	// 4096 code points of emoji are 8192 UTF-16 units: Telegram would
	// refuse them as one message.
	text := strings.Repeat("😀", 4000) + "\n" + strings.Repeat("x", 96)
	out := &message.Outbound{ChatID: "555", ReplyTo: "7", Text: text, IdempotencyKey: "k1"}
	if _, err := h.a.Send(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	sent := h.fake.Sent()
	if len(sent) < 2 || strings.Join(h.fake.Transcript("555"), "") != text {
		t.Fatalf("split into %d messages that do not add up to the text", len(sent))
	}
	for i, s := range sent {
		if n := len(utf16.Encode([]rune(s.Text))); n > MaxTextUnits {
			t.Errorf("piece %d has %d UTF-16 units", i, n)
		}
		if (i == 0) != (s.ReplyTo == 7) {
			t.Errorf("piece %d reply_to %d: only the first piece replies", i, s.ReplyTo)
		}
	}

	// A failure after the first piece: the retry sends only the rest.
	h.fake.Script("sendMessage", telegramtest.Pass(), telegramtest.ServerError())
	out2 := &message.Outbound{ChatID: "777", Text: text, IdempotencyKey: "k2"}
	if _, err := h.a.Send(context.Background(), out2); !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("second piece failing: %v", err)
	}
	res, err := h.a.Send(context.Background(), out2)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.fake.Transcript("777"); strings.Join(got, "") != text || len(got) != 2 {
		t.Fatalf("user sees %d messages; retry repeated or lost a piece", len(got))
	}
	if last := h.fake.Sent(); res.MessageID != strconv.FormatInt(last[len(last)-1].MessageID, 10) {
		t.Errorf("result %v is not the last piece", res)
	}
}

func TestSplitUnits(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"fits", "hello", 10, []string{"hello"}},
		{"exact astral", "😀😀", 4, []string{"😀😀"}},
		{"astral over", "😀😀😀", 4, []string{"😀😀", "😀"}},
		{"prefers newline", "aaaa\nbbbbbb", 8, []string{"aaaa\n", "bbbbbb"}},
		{"prefers space", "aaaa bbbbbb", 8, []string{"aaaa ", "bbbbbb"}},
		{"hard cut", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"drops blank piece", "abcd    ", 4, []string{"abcd"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := splitUnits(tc.in, tc.max)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("splitUnits(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

// hugeRetryAfter is a 429 whose retry_after overflows every integer type.
var hugeRetryAfter = telegramtest.Reply{Status: 429, Body: `{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":1e30}}`}

func TestSendErrors(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name      string
		reply     telegramtest.Reply
		is        error
		not       error
		retryable bool
		after     time.Duration
	}{
		{"429", telegramtest.RetryAfter(2), adapter.ErrRateLimited, nil, true, 2 * time.Second},
		{"429 asking for 30 days", telegramtest.RetryAfter(30 * 24 * 3600), adapter.ErrRateLimited, nil, true, adapter.MaxRetryAfter},
		{"429 asking for 1e30 s", hugeRetryAfter, adapter.ErrRateLimited, nil, true, adapter.MaxRetryAfter},
		{"429 with a negative retry_after", telegramtest.RetryAfter(-5), adapter.ErrRateLimited, nil, true, time.Second},
		{"message too long", telegramtest.TooLong(), adapter.ErrPermanent, nil, false, 0},
		{"chat not found", telegramtest.ChatNotFound(), adapter.ErrPermanent, nil, false, 0},
		{"blocked by the user", telegramtest.Blocked(), adapter.ErrPermanent, adapter.ErrUnauthorized, false, 0},
		{"token revoked", telegramtest.Unauthorized(), adapter.ErrUnauthorized, nil, false, 0},
		{"5xx", telegramtest.ServerError(), adapter.ErrTemporary, adapter.ErrAmbiguous, true, 0},
		{"connection closed after the request", telegramtest.Abort(), adapter.ErrAmbiguous, adapter.ErrTemporary, true, 0},
		{"timeout after the request", telegramtest.Blackhole(), adapter.ErrAmbiguous, adapter.ErrTemporary, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.fake.Script("sendMessage", tc.reply)
			_, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: "hi"})
			if !errors.Is(err, tc.is) || tc.not != nil && errors.Is(err, tc.not) {
				t.Fatalf("err %v: want %v and not %v", err, tc.is, tc.not)
			}
			if adapter.Retryable(err) != tc.retryable {
				t.Errorf("Retryable(%v) = %v", err, !tc.retryable)
			}
			if after, ok := adapter.RetryAfter(err); after != tc.after || ok != (tc.after != 0) {
				t.Errorf("RetryAfter = %v, %v; want %v", after, ok, tc.after)
			}
			if !strings.HasPrefix(err.Error(), "telegram: sendMessage: ") || strings.Contains(err.Error(), h.fake.Token) {
				t.Errorf("error text %q", err)
			}
		})
	}
	t.Run("local checks", func(t *testing.T) {
		n := h.fake.Count("sendMessage")
		for _, out := range []message.Outbound{
			{ChatID: "555", Text: "  "},
			{ChatID: "not a chat", Text: "x"},
			{ChatID: "555", ReplyTo: "abc", Text: "x"},
		} {
			if _, err := h.a.Send(context.Background(), &out); !errors.Is(err, adapter.ErrPermanent) {
				t.Errorf("Send(%+v): %v, want ErrPermanent", out, err)
			}
		}
		if h.fake.Count("sendMessage") != n {
			t.Error("invalid messages reached Telegram")
		}
	})
	t.Run("cancelled before sending", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.a.Send(ctx, &message.Outbound{ChatID: "555", Text: "x"})
		if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
			t.Fatalf("err %v: nothing was sent, want ErrTemporary", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		h.fake.Refuse()
		defer func() { _ = h.fake.Accept() }()
		// Drop pooled connections the server has just closed, so that the
		// call has to dial (and is refused) instead of racing the close.
		h.a.api.close()
		_, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: "x"})
		if !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
			t.Fatalf("err %v: nothing was sent, want ErrTemporary", err)
		}
	})
}

func TestEditAndTyping(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	out := &message.Outbound{ChatID: "555", ThreadID: "3", Text: "draft"}
	res, err := h.a.Send(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	out.Text = "final"
	if err := h.a.Edit(ctx, out, res.MessageID); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Edit(ctx, out, res.MessageID); err != nil {
		t.Fatalf("unchanged edit: %v, want success", err)
	}
	if got := h.fake.Transcript("555"); len(got) != 1 || got[0] != "final" || h.fake.Sent()[0].Edits != 1 {
		t.Fatalf("user sees %q", got)
	}
	if err := h.a.Edit(ctx, out, "99999"); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("edit of a missing message: %v", err)
	}
	n := h.fake.Count("editMessageText")
	long := &message.Outbound{ChatID: "555", Text: strings.Repeat("😀", 2049)}
	if err := h.a.Edit(ctx, long, res.MessageID); !errors.Is(err, adapter.ErrPermanent) || h.fake.Count("editMessageText") != n {
		t.Errorf("overlong edit: %v", err)
	}
	h.fake.Script("editMessageText", telegramtest.Abort())
	if err := h.a.Edit(ctx, out, res.MessageID); !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Errorf("edit with unknown outcome: %v, want ErrTemporary (edits are idempotent)", err)
	}

	if err := h.a.Typing(ctx, out); err != nil {
		t.Fatal(err)
	}
	p := h.fake.Requests("sendChatAction")[0].Params
	if p.Get("action") != "typing" || p.Get("chat_id") != "555" || p.Int("message_thread_id") != 3 {
		t.Fatalf("sendChatAction %v", p)
	}
	h.fake.Script("sendChatAction", telegramtest.RetryAfter(1))
	if err := h.a.Typing(ctx, out); !errors.Is(err, adapter.ErrRateLimited) {
		t.Errorf("typing 429: %v", err)
	}
}

// TestNoMentionMarkup: replies and edits go out as plain text, without
// parse_mode or entities, so the agent's text cannot form a text_mention or
// a tg://user link; Telegram has no mention of everyone.
func TestNoMentionMarkup(t *testing.T) {
	h := newHarness(t)
	hostile := `<a href="tg://user?id=555">Ann</a> [Ann](tg://user?id=555) @all @everyone <at user_id="all"></at>`
	res, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "-1001", Text: hostile})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.a.Edit(context.Background(), &message.Outbound{ChatID: "-1001", Text: hostile + " (edited)"}, res.MessageID); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"sendMessage", "editMessageText"} {
		reqs := h.fake.Requests(method)
		if len(reqs) != 1 {
			t.Fatalf("%d %s requests, want 1", len(reqs), method)
		}
		p := reqs[0].Params
		if p.Has("parse_mode") || p.Has("entities") || !strings.HasPrefix(p.Get("text"), hostile) {
			t.Errorf("%s sent %v: want the text as written, without parse_mode or entities", method, p)
		}
	}
}
