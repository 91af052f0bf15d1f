// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

func TestNeutralise(t *testing.T) {
	for in, want := range map[string]string{
		"@room look":          "@\u2060room look",
		"hey @ROOM and @Room": "hey @\u2060ROOM and @\u2060Room",
		"@roomba":             "@\u2060roomba",
		"mail a@b.c":          "mail a@b.c",
	} {
		if got := neutralise(in); got != want {
			t.Errorf("neutralise(%q) = %q, want %q", in, got, want)
		}
	}
}

// A reply in a thread: the m.thread relation with the reply fallback, the
// idempotency key as transaction id, @room broken, nobody mentioned.
func TestSendInThread(t *testing.T) {
	h := newHarness(t)
	res, err := h.a.Send(t.Context(), &message.Outbound{ChatID: room, ThreadID: "$root", ReplyTo: "$q", Text: "@room done", IdempotencyKey: "key-1"})
	if err != nil {
		t.Fatal(err)
	}
	sent := h.fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d sent", len(sent))
	}
	s := sent[0]
	rel, root, reply := s.Relation()
	if s.TxnID != "key-1" || s.EventID != res.MessageID || rel != "m.thread" || root != "$root" || reply != "$q" {
		t.Fatalf("sent %+v (relation %s %s %s), result %+v", s, rel, root, reply, res)
	}
	if strings.Contains(s.Body(), "@room") {
		t.Errorf("body %q still pings the room", s.Body())
	}
	if m, ok := s.Content["m.mentions"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("m.mentions = %v, want {}", s.Content["m.mentions"])
	}
}

func TestSendReply(t *testing.T) {
	h := newHarness(t)
	if _, err := h.a.Send(t.Context(), &message.Outbound{ChatID: room, ReplyTo: "$q", RecipientID: ann, Text: "answer @room", IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	s := h.fake.Sent()[0]
	if rel, _, reply := s.Relation(); rel != "" || reply != "$q" {
		t.Fatalf("relation %q, in reply to %q", rel, reply)
	}
	// The asker, and only the asker, is mentioned.
	m, _ := s.Content["m.mentions"].(map[string]any)
	if ids, _ := m["user_ids"].([]any); len(m) != 1 || len(ids) != 1 || ids[0] != ann {
		t.Fatalf("m.mentions = %v, want the asker only", m)
	}
}

// The same idempotency key twice: the homeserver shows one message, and
// both sends return its id.
func TestSendDeduplicated(t *testing.T) {
	h := newHarness(t)
	msg := &message.Outbound{ChatID: room, Text: "once", IdempotencyKey: "same"}
	a, err := h.a.Send(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.a.Send(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if a.MessageID != b.MessageID || len(h.fake.Sent()) != 1 {
		t.Fatalf("ids %q %q, %d sent", a.MessageID, b.MessageID, len(h.fake.Sent()))
	}
	if !adapter.DeduplicatesSends(TypeName) {
		t.Fatal("matrix is not registered as deduplicating sends")
	}
}

func TestSendErrors(t *testing.T) {
	h := newHarness(t)
	send := func(chat string) error {
		_, err := h.a.Send(t.Context(), &message.Outbound{ChatID: chat, Text: "x", IdempotencyKey: "e"})
		return err
	}
	if err := send("#alias:fake.test"); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("alias as chat id: %v", err)
	}
	h.fake.RateLimit("send", 1500)
	err := send(room)
	if d, ok := adapter.RetryAfter(err); !ok || d != 1500*time.Millisecond || !errors.Is(err, adapter.ErrRateLimited) {
		t.Errorf("429: %v", err)
	}
	h.fake.Expire()
	if err := send(room); !errors.Is(err, adapter.ErrUnauthorized) {
		t.Errorf("expired token: %v", err)
	}
}
