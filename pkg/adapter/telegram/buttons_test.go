// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// Buttons become one row of an inline keyboard; a text split into several
// messages carries them on the last one.
func TestSendButtons(t *testing.T) {
	h := newHarness(t)
	if !h.a.SendsButtons() {
		t.Fatal("SendsButtons false with callback_query in allowed_updates")
	}
	if _, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: "approve?", Buttons: adaptertest.ApprovalButtons()}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxTextUnits) + "tail"
	if _, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: long, Buttons: adaptertest.ApprovalButtons(), IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: "plain"}); err != nil {
		t.Fatal(err)
	}
	sent := h.fake.Sent()
	if len(sent) != 4 {
		t.Fatalf("%d messages sent", len(sent))
	}
	want := []telegramtest.InlineButton{{Text: "Approve", CallbackData: "hr1:a:xyz"}, {Text: "Deny", CallbackData: "hr1:d:xyz"}}
	for _, i := range []int{0, 2} {
		if fmt.Sprint(sent[i].Buttons) != fmt.Sprint(want) {
			t.Errorf("message %d buttons %+v, want %+v", i, sent[i].Buttons, want)
		}
	}
	if len(sent[1].Buttons) != 0 || len(sent[3].Buttons) != 0 {
		t.Errorf("buttons on the first piece of a split text or on a plain reply: %+v, %+v", sent[1].Buttons, sent[3].Buttons)
	}
	for _, r := range h.fake.Requests("sendMessage") {
		if rm := r.Params.Get("reply_markup"); rm != "" && !strings.Contains(rm, `"inline_keyboard":[[{"text":"Approve","callback_data":"hr1:a:xyz"}`) {
			t.Errorf("reply_markup %s", rm)
		}
	}
}

// Without callback_query in allowed_updates no press could come back: no
// buttons.
func TestNoButtonsWithoutCallbackUpdates(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AllowedUpdates = []string{"message"} })
	if h.a.SendsButtons() {
		t.Fatal("SendsButtons true without callback_query in allowed_updates")
	}
	// Telegram does not deliver what was not asked for: the press pushed
	// first never arrives, the text after it does.
	h.fake.PushCallback(dm, ann, 1, "hr1:a:xyz")
	last := h.fake.PushText(dm, ann, "after")
	h.start(t)
	if msgs := h.inbox.WaitN(t, 1, wait); len(msgs) != 1 || msgs[0].EventID != strconv.FormatInt(last, 10) {
		t.Fatalf("delivered %+v", msgs)
	}
}

// A press becomes an Inbound from the presser in the chat of the button's
// message, keyed by the callback query's id, and the query is answered
// once it is stored.
func TestButtonPress(t *testing.T) {
	h := newHarness(t)
	grp := telegramtest.Chat{ID: -100, Type: "supergroup"}
	up, cq := h.fake.PushCallback(grp, ann, 42, "hr1:a:xyz")
	h.start(t)
	got := h.inbox.WaitN(t, 1, wait)[0]
	if got.EventID != "cq:"+cq || got.Button != "hr1:a:xyz" || got.Text != "" || got.ChatID != "-100" ||
		got.ChatType != message.ChatGroup || got.SenderID != "555" || got.MessageID != "42" {
		t.Fatalf("press %+v", got)
	}
	h.fake.Wait(t, wait, "query answered and update confirmed", func() bool {
		return h.fake.Count("answerCallbackQuery") == 1 && h.fake.Confirmed() == up+1
	})
	if id := h.fake.Requests("answerCallbackQuery")[0].Params.Get("callback_query_id"); id != cq {
		t.Fatalf("answered %q, want %q", id, cq)
	}
}

// A press herald refuses (not a button of its own) is still answered, so
// the button stops spinning; a press the store could not take is answered
// only when it is fetched again and stored.
func TestButtonPressAnsweredWhateverBecomesOfIt(t *testing.T) {
	h := newHarness(t)
	in := &failingInbox{Inbox: h.inbox}
	bad, badID := h.fake.PushCallback(dm, ann, 1, "hr1:a:xyz")
	in.set("cq:"+badID, fmt.Errorf("dispatch: %w: not a button of herald's", message.ErrInvalid))
	if err := h.a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	h.fake.Wait(t, wait, "refused press answered", func() bool {
		return h.fake.Count("answerCallbackQuery") == 1 && h.fake.Confirmed() == bad+1
	})

	up, cq := h.fake.PushCallback(dm, ann, 1, "hr1:d:xyz")
	in.set("cq:"+cq, errors.New("store: disk full"))
	testwait.For(t, "press delivered three times", func() bool { return in.count("cq:"+cq) >= 3 })
	if n := h.fake.Count("answerCallbackQuery"); n != 1 {
		t.Fatalf("%d answers while the press was not stored", n)
	}
	in.set("", nil)
	h.fake.Wait(t, wait, "stored press answered", func() bool {
		return h.fake.Count("answerCallbackQuery") == 2 && h.fake.Confirmed() == up+1
	})
	if got := h.inbox.WaitN(t, 1, wait)[0]; got.EventID != "cq:"+cq {
		t.Fatalf("stored %+v", got)
	}
}

// An answer Telegram refuses (the query is too old) is logged, and intake
// goes on.
func TestStaleButtonAnswerRefused(t *testing.T) {
	h := newHarness(t)
	h.fake.Script("answerCallbackQuery", telegramtest.Error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid"))
	h.fake.PushCallback(dm, ann, 1, "hr1:a:xyz")
	next := h.fake.PushText(dm, ann, "after")
	h.start(t)
	msgs := h.inbox.WaitN(t, 2, wait)
	if msgs[1].EventID != strconv.FormatInt(next, 10) {
		t.Fatalf("messages %+v", msgs)
	}
	testwait.For(t, "refused answer logged", func() bool { return h.logged(4, "answerCallbackQuery failed") })
}
