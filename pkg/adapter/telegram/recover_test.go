// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/message"
)

// heldSend makes a send whose message Telegram creates but whose answer
// never comes: the outcome herald cannot know.
func heldSend(t *testing.T, h *harness) *message.Outbound {
	t.Helper()
	out := &message.Outbound{ChatID: "555", Text: "the answer", IdempotencyKey: "k-1"}
	h.fake.Script("sendMessage", telegramtest.Hold())
	if _, err := h.a.Send(context.Background(), out); !errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("held send: %v, want ErrAmbiguous", err)
	}
	if got := h.fake.Transcript("555"); len(got) != 1 {
		t.Fatalf("transcript %q, want the held message", got)
	}
	return out
}

func TestRecoverResendMarked(t *testing.T) {
	h := newHarness(t)
	out := heldSend(t, h)
	res, err := h.a.Recover(context.Background(), out, time.Now())
	if err != nil || res.MessageID == "" {
		t.Fatalf("Recover: %+v %v", res, err)
	}
	got := h.fake.Transcript("555")
	if len(got) != 2 || got[0] != "the answer" || got[1] != RecoveredMark+"\nthe answer" {
		t.Fatalf("transcript %q, want the answer and its marked resend", got)
	}
	if !h.logged(logrus.WarnLevel, "sent again, marked") {
		t.Error("the marked resend was not logged at warning")
	}
}

func TestRecoverAtMostOnce(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.InterruptedSend = AtMostOnce })
	out := heldSend(t, h)
	n := h.fake.Count("sendMessage")
	_, err := h.a.Recover(context.Background(), out, time.Now())
	if !errors.Is(err, adapter.ErrNotResent) || adapter.Retryable(err) || !strings.Contains(err.Error(), AtMostOnce) {
		t.Fatalf("Recover: %v, want a final ErrNotResent naming the policy", err)
	}
	if h.fake.Count("sendMessage") != n || len(h.fake.Transcript("555")) != 1 {
		t.Fatal("at_most_once sent the reply again")
	}
}

// A marked resend whose outcome is unknown too is not sent a third time.
func TestRecoverMarkedResendHeld(t *testing.T) {
	h := newHarness(t)
	out := heldSend(t, h)
	h.fake.Script("sendMessage", telegramtest.Hold())
	_, err := h.a.Recover(context.Background(), out, time.Now())
	if !errors.Is(err, adapter.ErrNotResent) || adapter.Retryable(err) {
		t.Fatalf("Recover with a held resend: %v, want a final ErrNotResent", err)
	}
	if got := h.fake.Transcript("555"); len(got) != 2 {
		t.Fatalf("transcript %q", got)
	}
}
