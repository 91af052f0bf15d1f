// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/message"
)

// Buttons are one action row on the message (the last one of a split
// text); a press is stored as a message from the presser in that channel,
// then acknowledged with a deferred update.
func TestButtonsRoundTrip(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv, func(c *Config) { c.MaxMessageLen = 10 })
	if !h.a.SendsButtons() {
		t.Fatal("SendsButtons false")
	}
	h.connected(t)
	if _, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "200000000000000001", Text: "0123456789abc", Buttons: adaptertest.ApprovalButtons()}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	want := fmt.Sprint([]discordtest.Button{{Label: "Approve", Style: 1, CustomID: "hr1:a:xyz"}, {Label: "Deny", Style: 4, CustomID: "hr1:d:xyz"}})
	if len(msgs) != 2 || len(msgs[0].Buttons) != 0 || fmt.Sprint(msgs[1].Buttons) != want {
		t.Fatalf("messages %+v, want the buttons %s on the second", msgs, want)
	}

	id := srv.PushPress(discordtest.Press{GuildID: guild, ChannelID: "500000000000000009", ThreadType: 11, UserID: "31", MessageID: msgs[1].ID, CustomID: "hr1:d:xyz"})
	got := h.inbox.WaitN(t, 1, wait)[0]
	if got.EventID != "interaction:"+id || got.Button != "hr1:d:xyz" || got.Text != "" || got.SenderID != "31" ||
		got.ChatID != "500000000000000009" || got.ThreadID != "500000000000000009" || got.ChatType != message.ChatGroup || got.MessageID != msgs[1].ID {
		t.Fatalf("press %+v", got)
	}
	srv.Await(t, "press acknowledged", wait, func() bool { return len(srv.Interactions()[id].Callbacks) == 1 })
	if cb := srv.Interactions()[id].Callbacks; cb[0] != 6 {
		t.Fatalf("callbacks %v, want one deferred update (6)", cb)
	}
}

// A press the inbox refuses for good is still acknowledged; one it could
// not store is not, and is replayed after a resume, then acknowledged.
func TestButtonPressAcknowledgedOnceStoredOrRefused(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)
	h.inbox.SetFail(fmt.Errorf("dispatch: %w: not a button of herald's", message.ErrInvalid))
	refused := srv.PushPress(discordtest.Press{CustomID: "other"})
	srv.Await(t, "refused press acknowledged", wait, func() bool { return len(srv.Interactions()[refused].Callbacks) == 1 })

	h.inbox.SetFail(errors.New("disk full"))
	id := srv.PushPress(discordtest.Press{CustomID: "hr1:a:xyz"})
	srv.Await(t, "resume after the failed delivery", wait, func() bool { return len(srv.Resumes()) >= 1 })
	if n := len(srv.Interactions()[id].Callbacks); n != 0 {
		t.Fatalf("%d callbacks for a press that was not stored", n)
	}
	h.inbox.SetFail(nil)
	if got := h.inbox.WaitN(t, 1, wait)[0]; got.EventID != "interaction:"+id {
		t.Fatalf("stored %+v", got)
	}
	srv.Await(t, "stored press acknowledged", wait, func() bool { return len(srv.Interactions()[id].Callbacks) == 1 })
}
