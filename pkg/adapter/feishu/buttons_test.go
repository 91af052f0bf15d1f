// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/message"
)

// A message with buttons is a card 2.0 with the text and two callback
// buttons; a press comes back over the long connection as
// card.action.trigger, is stored as a message from the operator in the
// conversation's session and acknowledged with the callback answer {}.
func TestCardButtonsRoundTrip(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, func(c *Config) { c.RequireMention = false })
	if !h.a.SendsButtons() {
		t.Fatal("SendsButtons false")
	}
	h.connect()
	h.fake.Push(feishutest.Event{Text: "delete it", MessageID: "om_1", ChatID: "oc_g", ChatType: "group", ThreadID: "omt_1", SenderOpenID: "ou_ann"})
	in := h.inbox.WaitN(t, 1, wait)[0]
	out := in.ReplyTo()
	out.Text = "The agent asks to run rm -rf /tmp/x"
	out.Buttons = adaptertest.ApprovalButtons()
	out.IdempotencyKey = "hr-key-1"
	if _, err := h.a.Send(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	m := h.fake.WaitMessages(t, 1, wait)[0]
	if m.MsgType != "interactive" || m.Text != out.Text || len(m.Buttons) != 2 || m.Buttons[0].Label != "Approve" || m.Buttons[0].Type != "primary" ||
		m.Buttons[1].Type != "danger" || m.Buttons[1].Value["herald"] != "hr1:d:xyz" || m.ReplyTo != "om_1" || m.UUID == "" {
		t.Fatalf("card %+v", m)
	}

	id := h.fake.PushCardAction(feishutest.CardAction{OperatorOpenID: "ou_ann", ChatID: "oc_g", MessageID: m.MessageID, Value: m.Buttons[1].Value})
	got := h.inbox.WaitN(t, 2, wait)[1]
	if got.EventID != id || got.Button != "hr1:d:xyz" || got.Text != "" || got.SenderID != "ou_ann" || got.ChatID != "oc_g" || got.MessageID != m.MessageID {
		t.Fatalf("press %+v", got)
	}
	if got.SessionKey(true) != in.SessionKey(true) {
		t.Fatalf("press session %q, conversation %q", got.SessionKey(true), in.SessionKey(true))
	}
	h.fake.WaitAcks(t, 2, wait)
	var ack *feishutest.Ack
	for _, a := range h.fake.Acks() {
		if a.EventID == id {
			a := a
			ack = &a
		}
	}
	if ack == nil || ack.Code != 200 || string(ack.Data) != "{}" {
		t.Fatalf("card callback ack %+v, want code 200 and data {}", ack)
	}
}

// A card callback herald cannot store is not acknowledged; another card's
// button is acknowledged and not stored.
func TestCardActionAckOnlyAfterStore(t *testing.T) {
	h := newHarness(t, feishutest.Options{RedeliverAfter: 100 * time.Millisecond}, nil)
	h.connect()
	other := h.fake.PushCardAction(feishutest.CardAction{Value: map[string]any{"key": "value"}})
	h.fake.WaitAcks(t, 1, wait)
	if h.fake.AcksFor(other) != 1 || len(h.inbox.Messages()) != 0 {
		t.Fatalf("another card's press: acks %d, stored %+v", h.fake.AcksFor(other), h.inbox.Messages())
	}
	h.inbox.SetFail(errors.New("disk full"))
	id := h.fake.PushCardAction(feishutest.CardAction{Value: map[string]any{"herald": "hr1:a:xyz", "chat_type": "dm"}})
	h.fake.WaitDeliveries(t, id, 2, wait)
	if n := h.fake.AcksFor(id); n != 0 {
		t.Fatalf("%d acks while the store fails", n)
	}
	h.inbox.SetFail(nil)
	if got := h.inbox.WaitN(t, 1, wait)[0]; got.EventID != id || got.ChatType != message.ChatDirect {
		t.Fatalf("stored %+v", got)
	}
	h.fake.WaitAcks(t, 2, wait)
}
