// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
	"github.com/heraldgw/herald/pkg/message"
)

// reply stores one message through the stream and returns the skeleton of
// its reply.
func (h *harness) reply(t *testing.T, m dingtalktest.Msg, text string) *message.Outbound {
	t.Helper()
	n := len(h.inbox.Messages()) + 1
	h.srv.Push(m)
	var in *message.Inbound
	for _, got := range h.inbox.WaitN(t, n, wait) {
		if got.EventID == m.MsgID {
			in = got
		}
	}
	if in == nil {
		t.Fatalf("message %s not stored", m.MsgID)
	}
	out := in.ReplyTo()
	out.Text = text
	return &out
}

func send(t *testing.T, a *Adapter, out *message.Outbound) (adapter.SendResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return a.Send(ctx, out)
}

func TestSendWebhookNeutralisesEveryone(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	out := h.reply(t, dingtalktest.Msg{MsgID: "m1", Group: true, Text: "hi"}, "ping @all and @所有人 and @EVERYONE")
	if _, err := send(t, h.a, out); err != nil {
		t.Fatal(err)
	}
	sent := h.srv.Sent()
	if len(sent) != 1 || sent[0].Via != "webhook" || sent[0].IsAtAll {
		t.Fatalf("sent %+v, want one webhook text with isAtAll false", sent)
	}
	if want := "ping @\u200ball and @\u200b所有人 and @\u200bEVERYONE"; sent[0].Text != want {
		t.Fatalf("text %q, want %q", sent[0].Text, want)
	}
}

func TestSendExpiredWebhookUsesRobotAPI(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	dm := h.reply(t, dingtalktest.Msg{MsgID: "m1", StaffID: "u42", Text: "hi", WebhookTTL: -time.Minute}, "one")
	group := h.reply(t, dingtalktest.Msg{MsgID: "m2", Group: true, ConversationID: "cidgroup", Text: "hi"}, "two")
	h.srv.ExpireWebhooks() // valid by its time, refused by DingTalk
	for _, out := range []*message.Outbound{dm, group} {
		res, err := send(t, h.a, out)
		if err != nil || res.MessageID == "" {
			t.Fatalf("Send = %+v, %v", res, err)
		}
	}
	sent := h.srv.Sent()
	if len(sent) != 2 || sent[0].Via != "batchSend" || sent[0].To != "u42" || sent[1].Via != "groupSend" || sent[1].To != "cidgroup" ||
		sent[0].Robot != dingtalktest.DefaultClientID {
		t.Fatalf("sent %+v", sent)
	}
	if n := h.srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests for two sends, want 1 (cached)", n)
	}
}

func TestSendExpiredTokenRefetched(t *testing.T) {
	h := newHarness(t, nil)
	out := &message.Outbound{Platform: TypeName, ChatID: "cidg", ChatType: message.ChatGroup, Text: "x"}
	if _, err := send(t, h.a, out); err != nil {
		t.Fatal(err)
	}
	h.srv.ExpireTokens()
	if _, err := send(t, h.a, out); err != nil {
		t.Fatalf("Send after the token expired: %v", err)
	}
	if n := h.srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	h := newHarness(t, nil)
	now := time.Now()
	h.a.api.now = func() time.Time { return now }
	out := &message.Outbound{Platform: TypeName, ChatID: "cidg", ChatType: message.ChatGroup, Text: "x"}
	if _, err := send(t, h.a, out); err != nil {
		t.Fatal(err)
	}
	now = now.Add(dingtalktest.TokenTTL*time.Second - tokenMargin - time.Second)
	if _, err := send(t, h.a, out); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests before the margin, want 1", n)
	}
	now = now.Add(2 * time.Second)
	if _, err := send(t, h.a, out); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.TokenRequests(); n != 2 {
		t.Fatalf("%d token requests past the margin, want 2", n)
	}
}

func TestSendFrequencyLimits(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	out := h.reply(t, dingtalktest.Msg{MsgID: "m1", Group: true, Text: "hi"}, "x")
	h.srv.LimitWebhook(1)
	_, err := send(t, h.a, out)
	if d, ok := adapter.RetryAfter(err); !ok || d <= 0 || !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("webhook errcode 130101: %v, want a RetryAfterError of ErrRateLimited", err)
	}
	api := &message.Outbound{Platform: TypeName, ChatID: "cidg", ChatType: message.ChatGroup, Text: "x"}
	h.srv.LimitAPI(1)
	_, err = send(t, h.a, api)
	if _, ok := adapter.RetryAfter(err); !ok || !errors.Is(err, adapter.ErrRateLimited) {
		t.Fatalf("QpsLimit: %v, want a RetryAfterError of ErrRateLimited", err)
	}
	if len(h.srv.Sent()) != 0 {
		t.Fatal("a limited send was recorded")
	}
	if _, err := send(t, h.a, api); err != nil {
		t.Fatalf("Send after the limit: %v", err)
	}
}

func TestSendRejectedCredentials(t *testing.T) {
	h := newHarness(t, nil)
	h.srv.RejectCredentials()
	_, err := send(t, h.a, &message.Outbound{Platform: TypeName, ChatID: "cidg", ChatType: message.ChatGroup, Text: "x"})
	if !errors.Is(err, adapter.ErrUnauthorized) {
		t.Fatalf("Send = %v, want ErrUnauthorized", err)
	}
}

func TestSendPermanent(t *testing.T) {
	h := newHarness(t, nil)
	for _, out := range []*message.Outbound{
		{Platform: TypeName, ChatID: "cidg", Text: "  "},
		{Platform: TypeName, ChatID: "cid", ChatType: message.ChatDirect, Text: "no staff id"},
	} {
		if _, err := send(t, h.a, out); !errors.Is(err, adapter.ErrPermanent) {
			t.Errorf("Send(%q) = %v, want ErrPermanent", out.Text, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{&apiError{Status: 429}, adapter.ErrRateLimited},
		{&apiError{Status: 403, Code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, adapter.ErrRateLimited},
		{&apiError{Status: 200, ErrCode: 130101}, adapter.ErrRateLimited},
		{&apiError{Status: 401, Code: "InvalidAuthentication"}, adapter.ErrUnauthorized},
		{&apiError{Status: 400, Code: "invalidClientSecret"}, adapter.ErrUnauthorized},
		{&apiError{Status: 400, Code: "InvalidParameter"}, adapter.ErrPermanent},
		{&apiError{Status: 503}, adapter.ErrTemporary},
		{&transportError{Written: true, Err: errors.New("reset")}, adapter.ErrAmbiguous},
		{&transportError{Err: errors.New("refused")}, adapter.ErrTemporary},
	} {
		if got := classify("op", c.err); !errors.Is(got, c.want) {
			t.Errorf("classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
