// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

func acked(id string) func(*dingtalktest.Server) bool {
	return func(s *dingtalktest.Server) bool { return s.Acked(id) }
}

func TestSubscriptions(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	var got []subscription
	h.srv.Await(t, "connections/open", wait, func(s *dingtalktest.Server) bool {
		for _, raw := range s.Subscriptions() {
			var sub subscription
			if json.Unmarshal(raw, &sub) == nil {
				got = append(got, sub)
			}
		}
		return true
	})
	want := []subscription{{typeEvent, "*"}, {typeCallback, TopicBotMessage}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("subscriptions %+v, want %+v", got, want)
	}
}

func TestBotMessageStoredThenAcked(t *testing.T) {
	h := newHarness(t, nil)
	release := h.inbox.Block()
	h.start(t)
	id := h.srv.Push(dingtalktest.Msg{MsgID: "msg1", Text: " hello ", Nick: "Ann", Group: true})
	// Deliver is blocked: the frame must stay unacknowledged.
	waitCalls(t, h.inbox, 1)
	h.srv.Await(t, "pending frame", wait, func(s *dingtalktest.Server) bool { return !s.Acked(id) })
	release()
	h.srv.Await(t, "ack after store", wait, acked(id))
	msgs := h.inbox.WaitN(t, 1, wait)
	m := msgs[0]
	if m.EventID != "msg1" || m.Text != "hello" || m.ChatType != message.ChatGroup || m.ChatID != "cidfakeconversation" ||
		m.SenderID != "staff-1" || m.SenderName != "Ann" || m.Meta[MetaSessionWebhook] == "" || m.Meta[MetaStaffID] != "staff-1" {
		t.Fatalf("inbound %+v", m)
	}
	var ack dingtalktest.Ack
	for _, a := range h.srv.Acks() {
		if a.MessageID == id {
			ack = a
		}
	}
	if ack.Code != 200 || ack.Message != "OK" || ack.Data != ackCallbackData {
		t.Fatalf("ack %+v", ack)
	}
}

func TestStoreFailureNotAckedThenRedelivered(t *testing.T) {
	h := newHarness(t, nil)
	h.inbox.SetFail(errors.New("disk full"))
	h.start(t)
	id := h.srv.Push(dingtalktest.Msg{MsgID: "msgfail", Text: "x"})
	// The refused store closes the connection: the fake sees a second dial.
	h.srv.Await(t, "reconnect after store failure", wait, func(s *dingtalktest.Server) bool { return s.Dials() >= 2 })
	if h.srv.Pending() == 0 {
		t.Fatal("a message that was not stored was acknowledged")
	}
	h.inbox.SetFail(nil)
	h.inbox.WaitN(t, 1, wait)
	h.srv.Await(t, "pending drained", wait, func(s *dingtalktest.Server) bool { return len(s.Acks()) > 0 && s.Pending() == 0 })
	// The fake sends an unacknowledged frame again, unchanged, on the
	// next connection.
	if !h.srv.Acked(id) {
		t.Fatal("redelivered frame not acknowledged")
	}
}

func TestPingEchoed(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	var id string
	h.srv.Await(t, "stream", wait, (*dingtalktest.Server).Connected)
	id, ok := h.srv.Ping("op-42")
	if !ok {
		t.Fatal("ping not sent")
	}
	h.srv.Await(t, "ping answer", wait, acked(id))
	for _, a := range h.srv.Acks() {
		if a.MessageID == id && a.Data != `{"opaque":"op-42"}` {
			t.Fatalf("ping answer data %q", a.Data)
		}
	}
}

func TestDisconnectReconnectsWithoutLoss(t *testing.T) {
	h := newHarness(t, nil)
	release := h.inbox.Block()
	h.start(t)
	h.srv.Push(dingtalktest.Msg{MsgID: "before", Text: "a"})
	waitCalls(t, h.inbox, 1)
	// disconnect arrives while "before" is being stored, "after" behind it.
	dc, _ := h.srv.Disconnect()
	h.srv.Push(dingtalktest.Msg{MsgID: "after", Text: "b"})
	release()
	h.srv.Await(t, "disconnect acknowledged", wait, acked(dc))
	h.srv.Await(t, "new connection", wait, func(s *dingtalktest.Server) bool { return s.Dials() >= 2 })
	msgs := h.inbox.WaitN(t, 2, wait)
	if msgs[0].EventID != "before" || msgs[1].EventID != "after" {
		t.Fatalf("stored %s, %s", msgs[0].EventID, msgs[1].EventID)
	}
	h.srv.Await(t, "all acknowledged", wait, func(s *dingtalktest.Server) bool { return s.Pending() == 0 })
	if h.metrics.ReconnectCount() == 0 {
		t.Error("reconnect after disconnect not counted")
	}
}

func TestReplayStoredOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	a := h.srv.Push(dingtalktest.Msg{MsgID: "same", Text: "x"})
	b := h.srv.Push(dingtalktest.Msg{MsgID: "same", Text: "x"})
	h.srv.Await(t, "both acknowledged", wait, func(s *dingtalktest.Server) bool { return s.Acked(a) && s.Acked(b) })
	if n := len(h.inbox.Messages()); n != 1 || h.inbox.Calls() != 2 {
		t.Fatalf("%d deliveries stored %d messages", h.inbox.Calls(), n)
	}
}

func TestSkippedFramesAcked(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	pic := h.srv.Push(dingtalktest.Msg{MsgID: "pic", Text: "  "})
	bad := h.srv.PushFrame("CALLBACK", TopicBotMessage, "{not json")
	ev := h.srv.PushFrame("EVENT", "chat_update_title", `{"eventId":"e1"}`)
	other := h.srv.PushFrame("CALLBACK", "/v1.0/card/instances/callback", `{}`)
	h.srv.Await(t, "answers", wait, func(s *dingtalktest.Server) bool {
		return s.Acked(pic) && s.Acked(bad) && s.Acked(ev) && len(s.Acks()) >= 4
	})
	for _, a := range h.srv.Acks() {
		if a.MessageID == other && a.Code != 404 {
			t.Errorf("unsubscribed topic answered %d, want 404", a.Code)
		}
		if a.MessageID == ev && a.Data != ackEventData {
			t.Errorf("event answered %q", a.Data)
		}
	}
	if len(h.inbox.Messages()) != 0 {
		t.Fatal("a skipped frame was stored")
	}
	for reason, n := range map[string]int{reasonEmpty: 1, reasonMalformed: 1, reasonTopic: 2} {
		if got := h.metrics.Rejections(reason); got != n {
			t.Errorf("Rejected(%s) = %d, want %d", reason, got, n)
		}
	}
}

func TestRejectedCredentialsFatal(t *testing.T) {
	h := newHarness(t, nil)
	h.srv.RejectCredentials()
	logs := adaptertest.Logs(adapter.Env{Log: h.a.log})
	if err := h.a.Start(context.Background(), h.inbox); err != nil {
		t.Fatal(err)
	}
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Fatalf("fatal error %v does not wrap ErrUnauthorized", st.Err)
	}
	adaptertest.RequireEvent(t, logs, logging.MsgAdapterFatal)
	if n := h.metrics.ReconnectCount(); n != 0 {
		t.Errorf("%d reconnects after rejected credentials", n)
	}
}

func TestBlackholedSocketReplaced(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.PingInterval = time.Second
		c.RequestTimeout = 500 * time.Millisecond
	})
	h.start(t)
	h.srv.Await(t, "stream", wait, (*dingtalktest.Server).Connected)
	h.srv.Blackhole()
	h.srv.Await(t, "a new connection", wait, func(s *dingtalktest.Server) bool { return s.Dials() >= 2 })
	id := h.srv.Push(dingtalktest.Msg{MsgID: "afterhole", Text: "x"})
	h.srv.Await(t, "ack on the new connection", wait, acked(id))
}

// waitCalls waits until Deliver was called n times.
func waitCalls(t *testing.T, in *adaptertest.Inbox, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for in.Calls() < n {
		if time.Now().After(deadline) {
			t.Fatalf("Deliver called %d times, want %d", in.Calls(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
