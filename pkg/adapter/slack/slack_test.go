// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestReceiveAndReply(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.connected()
	p := h.fake.PushEvent(slacktest.Event{Channel: "D1", ChannelType: "im", User: "U1", Text: "hi &lt;there&gt;"})
	msgs := h.inbox.WaitN(t, 1, wait)
	h.fake.WaitAck(t, p.EventID, wait)
	got := msgs[0]
	if got.EventID != p.EventID || got.ChatID != "D1" || got.ChatType != message.ChatDirect || got.SenderID != "U1" || got.Text != "hi <there>" {
		t.Fatalf("inbound = %+v", got)
	}
	out := got.ReplyTo()
	out.Text = "a < b & c"
	res, err := h.a.Send(context.Background(), &out)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := h.fake.WaitMessages(t, 1, wait)[0]
	if m.TS != res.MessageID || m.Channel != "D1" || m.ThreadTS != "" || m.Display() != "a < b & c" || m.Text != "a &lt; b &amp; c" {
		t.Fatalf("posted %+v, result %+v", m, res)
	}
}
