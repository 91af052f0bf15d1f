// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/message"
)

// A prompt in a channel thread carries the buttons; a press of one comes
// back, acknowledged, as a message from the presser in the same session
// as the conversation, keyed by the interaction.
func TestButtonsRoundTrip(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	if !h.a.SendsButtons() {
		t.Fatal("SendsButtons false")
	}
	h.connected()
	h.fake.PushEvent(slacktest.Event{Type: "app_mention", Channel: "C1", User: "U1", Text: "<@UBOT> delete it", TS: "10.1"})
	in := h.inbox.WaitN(t, 1, wait)[0]
	out := in.ReplyTo()
	out.Text = "The agent asks to run rm <x> & more"
	out.Buttons = adaptertest.ApprovalButtons()
	if _, err := h.a.Send(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	m := h.fake.WaitMessages(t, 1, wait)[0]
	want := fmt.Sprint([]slacktest.Button{
		{Text: "Approve", ActionID: "herald_button_0", Value: "hr1:a:xyz", Style: "primary"},
		{Text: "Deny", ActionID: "herald_button_1", Value: "hr1:d:xyz", Style: "danger"},
	})
	if fmt.Sprint(m.Buttons) != want || m.ThreadTS != "10.1" || m.Display() != out.Text {
		t.Fatalf("prompt %+v, want buttons %s in thread 10.1", m, want)
	}

	p := h.fake.PushPress(slacktest.Press{User: "U1", Channel: "C1", MessageTS: m.TS, ThreadTS: m.ThreadTS, ActionID: "herald_button_1", Value: "hr1:d:xyz"})
	h.fake.WaitAck(t, p.EventID, wait)
	got := h.inbox.WaitN(t, 2, wait)[1]
	if got.EventID != p.EventID || got.Button != "hr1:d:xyz" || got.Text != "" || got.SenderID != "U1" || got.ChatID != "C1" || got.MessageID != m.TS {
		t.Fatalf("press %+v", got)
	}
	if got.SessionKey(true) != in.SessionKey(true) {
		t.Fatalf("press session %q, conversation %q", got.SessionKey(true), in.SessionKey(true))
	}
	// A redelivered press is stored once.
	h.fake.Redeliver(p.EventID)
	waitAcks(t, h, p.EventID, 2)
	if n := len(h.inbox.Messages()); n != 2 {
		t.Fatalf("%d messages after a redelivered press", n)
	}
}

// A text too long for a section block goes out without buttons (its text
// says how to answer); a message without buttons has no blocks.
func TestButtonsTextTooLong(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	long := strings.Repeat("y", maxSectionText+1)
	for _, text := range []string{long, "plain"} {
		var b []message.Button
		if text == long {
			b = adaptertest.ApprovalButtons()
		}
		if _, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "D1", Text: text, Buttons: b}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range h.fake.WaitMessages(t, 2, wait) {
		if len(m.Buttons) != 0 {
			t.Fatalf("buttons %+v", m.Buttons)
		}
	}
}

// Interactions that are not presses of herald's buttons are acknowledged
// and not stored.
func TestForeignInteractionsSkipped(t *testing.T) {
	h := newHarness(t, slacktest.Options{RedeliverAfter: time.Minute}, nil)
	id := h.connected()
	skipped := []slacktest.Pushed{
		h.fake.PushInteractive(),
		h.fake.PushPress(slacktest.Press{User: "U1", Channel: "C1", MessageTS: "1.1", ActionID: "other_app_button", Value: "v"}),
	}
	for _, p := range skipped {
		h.fake.WaitAck(t, p.EventID, wait)
	}
	h.sync(id)
	if n := len(h.inbox.Messages()); n != 0 {
		t.Fatalf("stored %+v", h.inbox.Messages())
	}
}
