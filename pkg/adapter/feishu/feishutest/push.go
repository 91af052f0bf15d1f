// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
)

// Mention is one entry of message.mentions.
type Mention struct {
	Key    string // "@_user_1"
	OpenID string
	Name   string
}

// Event describes an im.message.receive_v1 event to push. Zero fields take
// defaults so that Event{Text: "hi"} is a direct message from a user.
type Event struct {
	EventID      string // default "ev_<n>"
	EventType    string // default "im.message.receive_v1"
	MessageID    string // default "om_<n>"
	ChatID       string // default "oc_chat"
	ChatType     string // default "p2p"
	ThreadID     string
	RootID       string
	SenderOpenID string // default "ou_user"
	SenderType   string // default "user"
	MessageType  string // default "text"
	// Text becomes content {"text": Text} unless Content is set.
	Text     string
	Content  string
	Mentions []Mention

	// Fragments splits the payload over that many frames (sum); default 1.
	Fragments int
	// Order is the order in which fragments are sent (seq values); default
	// ascending.
	Order []int
}

// Payload returns the v2 event JSON the platform would push for ev (after
// defaults are applied by Push).
func (ev Event) Payload() []byte {
	content := ev.Content
	if content == "" {
		b, _ := json.Marshal(map[string]string{"text": ev.Text})
		content = string(b)
	}
	mentions := []map[string]any{}
	for _, m := range ev.Mentions {
		mentions = append(mentions, map[string]any{
			"key":        m.Key,
			"id":         map[string]string{"open_id": m.OpenID, "union_id": "on_" + m.OpenID, "user_id": ""},
			"name":       m.Name,
			"tenant_key": "tenant",
		})
	}
	p := map[string]any{
		"schema": "2.0",
		"header": map[string]any{
			"event_id": ev.EventID, "event_type": ev.EventType, "create_time": "1700000000000",
			"token": "", "app_id": "cli_test", "tenant_key": "tenant",
		},
		"event": map[string]any{
			"sender": map[string]any{
				"sender_id":   map[string]string{"open_id": ev.SenderOpenID, "union_id": "on_" + ev.SenderOpenID, "user_id": "u1"},
				"sender_type": ev.SenderType,
				"tenant_key":  "tenant",
			},
			"message": map[string]any{
				"message_id": ev.MessageID, "root_id": ev.RootID, "parent_id": ev.RootID,
				"create_time": "1700000000000", "update_time": "1700000000000",
				"chat_id": ev.ChatID, "thread_id": ev.ThreadID, "chat_type": ev.ChatType,
				"message_type": ev.MessageType, "content": content, "mentions": mentions,
			},
		},
	}
	b, _ := json.Marshal(p)
	return b
}

type delivery struct {
	eventID   string
	payload   []byte
	fragments int
	order     []int
	timer     *time.Timer
	acked     bool
}

// attempt is one push of a delivery, named by its frame message_id.
type attempt struct {
	d      *delivery
	frames []*pbbp2.Frame
}

func (d *delivery) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}

// Push sends ev to the newest open connection (or to the next one that
// opens) and redelivers it until it is acknowledged. It returns the event_id.
func (s *Server) Push(ev Event) string {
	s.mu.Lock()
	s.eventIDs++
	n := s.eventIDs
	s.mu.Unlock()
	ev.EventID = cmp.Or(ev.EventID, fmt.Sprintf("ev_%d", n))
	ev.EventType = cmp.Or(ev.EventType, "im.message.receive_v1")
	ev.MessageID = cmp.Or(ev.MessageID, fmt.Sprintf("om_%d", n))
	ev.ChatID = cmp.Or(ev.ChatID, "oc_chat")
	ev.ChatType = cmp.Or(ev.ChatType, "p2p")
	ev.SenderOpenID = cmp.Or(ev.SenderOpenID, "ou_user")
	ev.SenderType = cmp.Or(ev.SenderType, "user")
	ev.MessageType = cmp.Or(ev.MessageType, "text")
	s.push(ev.EventID, ev.Payload(), ev.Fragments, ev.Order)
	return ev.EventID
}

// CardAction describes a press of a card button: a card.action.trigger
// callback.
type CardAction struct {
	EventID        string // default "ev_card_<n>"
	OperatorOpenID string // default "ou_user"
	ChatID         string // default "oc_chat"
	MessageID      string
	// Value is the pressed button's callback value.
	Value map[string]any
}

// PushCardAction sends the card.action.trigger callback of a button press
// as an event frame, redelivered until acknowledged, and returns its
// event_id.
func (s *Server) PushCardAction(ca CardAction) string {
	s.mu.Lock()
	s.eventIDs++
	n := s.eventIDs
	s.mu.Unlock()
	ca.EventID = cmp.Or(ca.EventID, fmt.Sprintf("ev_card_%d", n))
	ca.OperatorOpenID = cmp.Or(ca.OperatorOpenID, "ou_user")
	ca.ChatID = cmp.Or(ca.ChatID, "oc_chat")
	b, _ := json.Marshal(map[string]any{
		"schema": "2.0",
		"header": map[string]any{
			"event_id": ca.EventID, "event_type": "card.action.trigger", "create_time": "1700000000000000",
			"token": "", "app_id": "cli_test", "tenant_key": "tenant",
		},
		"event": map[string]any{
			"operator": map[string]any{"tenant_key": "tenant", "user_id": "u1", "open_id": ca.OperatorOpenID, "union_id": "on_" + ca.OperatorOpenID},
			"token":    "c-token",
			"action":   map[string]any{"value": ca.Value, "tag": "button"},
			"host":     "im_message",
			"context":  map[string]any{"open_message_id": ca.MessageID, "open_chat_id": ca.ChatID},
		},
	})
	s.push(ca.EventID, b, 1, nil)
	return ca.EventID
}

// PushPayload pushes an arbitrary event payload (malformed JSON, encrypted
// events, other event types) as a data frame, split into fragments like
// Push. eventID names it in Acks and Deliveries; it is not checked against
// the payload.
func (s *Server) PushPayload(eventID string, payload []byte, fragments int, order []int) {
	s.push(eventID, payload, fragments, order)
}

func (s *Server) push(eventID string, payload []byte, fragments int, order []int) {
	if fragments < 1 {
		fragments = 1
	}
	if order == nil {
		for i := range fragments {
			order = append(order, i)
		}
	}
	d := &delivery{eventID: eventID, payload: payload, fragments: fragments, order: order}
	s.send(d)
}

// send pushes one attempt of d, or queues it when no connection is open.
func (s *Server) send(d *delivery) {
	s.mu.Lock()
	if s.closed || d.acked {
		s.mu.Unlock()
		return
	}
	if len(s.conns) == 0 {
		s.queue = append(s.queue, d)
		s.mu.Unlock()
		return
	}
	wc := s.conns[len(s.conns)-1]
	s.frameIDs++
	frameID := fmt.Sprintf("fm_%d", s.frameIDs)
	s.deliveries[d.eventID]++
	chunk := (len(d.payload) + d.fragments - 1) / d.fragments
	parts := make([][]byte, d.fragments)
	for i := range d.fragments {
		lo, hi := min(i*chunk, len(d.payload)), min((i+1)*chunk, len(d.payload))
		parts[i] = d.payload[lo:hi]
	}
	var frames []*pbbp2.Frame
	for _, seq := range d.order {
		s.seq++
		f := &pbbp2.Frame{
			SeqID: s.seq, LogID: 1000 + s.seq, Service: s.opts.ServiceID, Method: pbbp2.MethodData,
			Headers: []pbbp2.Header{
				{Key: pbbp2.HeaderType, Value: pbbp2.TypeEvent},
				{Key: pbbp2.HeaderMessageID, Value: frameID},
				{Key: pbbp2.HeaderSum, Value: strconv.Itoa(d.fragments)},
				{Key: pbbp2.HeaderSeq, Value: strconv.Itoa(seq)},
				{Key: pbbp2.HeaderTraceID, Value: "trace-" + frameID},
				{Key: pbbp2.HeaderTimestamp, Value: strconv.FormatInt(time.Now().UnixMilli(), 10)},
			},
			Payload: append([]byte{}, parts[seq]...),
		}
		frames = append(frames, f)
	}
	s.pending[frameID] = &attempt{d: d, frames: frames}
	if s.opts.RedeliverAfter > 0 {
		d.stop()
		d.timer = time.AfterFunc(s.opts.RedeliverAfter, func() { s.send(d) })
	}
	s.changed()
	s.mu.Unlock()
	for _, f := range frames {
		s.write(wc, f.Marshal())
	}
}

// PushFrame sends raw bytes as one binary websocket message to the newest
// connection (for malformed-frame tests). It reports whether a connection
// was open.
func (s *Server) PushFrame(b []byte) bool {
	return s.pushRaw(websocket.MessageBinary, b)
}

// PushText sends a text websocket message, which the protocol never uses.
func (s *Server) PushText(text string) bool {
	return s.pushRaw(websocket.MessageText, []byte(text))
}

func (s *Server) pushRaw(typ websocket.MessageType, b []byte) bool {
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return false
	}
	wc := s.conns[len(s.conns)-1]
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	return wc.c.Write(ctx, typ, b) == nil
}

func (s *Server) handleAck(f *pbbp2.Frame) {
	frameID := f.Header(pbbp2.HeaderMessageID)
	var resp struct {
		Code    *int              `json:"code"`
		Headers map[string]string `json:"headers"`
		Data    []byte            `json:"data"`
	}
	if err := json.Unmarshal(f.Payload, &resp); err != nil || resp.Code == nil {
		s.t.Errorf("feishutest: ack payload %q is not a response {\"code\":...}: %v", f.Payload, err)
		return
	}
	if *resp.Code != 200 {
		s.t.Errorf("feishutest: ack for frame %s has code %d, want 200", frameID, *resp.Code)
	}
	if f.Type() != pbbp2.TypeEvent {
		s.t.Errorf("feishutest: ack for frame %s has type %q, want the pushed frame's headers echoed", frameID, f.Type())
	}
	if f.Header(pbbp2.HeaderBizRT) == "" {
		s.t.Errorf("feishutest: ack for frame %s lacks biz_rt", frameID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Frames sent with PushFrame are not tracked: their acks are recorded
	// with an empty EventID.
	eventID := ""
	if at := s.pending[frameID]; at != nil {
		d := at.d
		echoed := false
		for _, sent := range at.frames {
			if sent.SeqID == f.SeqID && sent.LogID == f.LogID {
				echoed = true
			}
		}
		if !echoed {
			s.t.Errorf("feishutest: ack for frame %s has SeqID %d LogID %d, matching no frame of that push", frameID, f.SeqID, f.LogID)
		}
		d.acked = true
		d.stop()
		eventID = d.eventID
	}
	s.acks = append(s.acks, Ack{
		EventID: eventID, FrameMessageID: frameID, Code: *resp.Code,
		SeqID: f.SeqID, LogID: f.LogID, BizRT: f.Header(pbbp2.HeaderBizRT), Data: resp.Data, Frame: f, AtTime: time.Now(),
	})
	s.changed()
}

// Acks returns the acknowledgements received so far.
func (s *Server) Acks() []Ack { return fakeserver.Copy(&s.mu, &s.acks) }

// AcksFor returns how many acks name eventID.
func (s *Server) AcksFor(eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.acks {
		if a.EventID == eventID {
			n++
		}
	}
	return n
}

// WaitAcks waits until n acks have been received.
func (s *Server) WaitAcks(t testing.TB, n int, timeout time.Duration) []Ack {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d acks", n), func() bool { return len(s.acks) >= n })
	return s.Acks()
}

// Deliveries returns how many times eventID was pushed (first delivery and
// redeliveries).
func (s *Server) Deliveries(eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliveries[eventID]
}

// WaitDeliveries waits until eventID has been pushed n times.
func (s *Server) WaitDeliveries(t testing.TB, eventID string, n int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("%d pushes of %s", n, eventID), func() bool { return s.deliveries[eventID] >= n })
}
