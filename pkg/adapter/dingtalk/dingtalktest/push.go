// SPDX-License-Identifier: Apache-2.0

package dingtalktest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Msg is a message sent to the robot.
type Msg struct {
	MsgID          string
	ConversationID string // default "cidfakeconversation"
	Group          bool   // conversationType "2", else "1"
	StaffID        string // default "staff-1"
	Nick           string
	Text           string
	// Msgtype defaults to "text".
	Msgtype string
	// Content is the content of a picture, file, audio, video or richText
	// message (see the Content helpers).
	Content any
	// WebhookTTL is how long the session webhook stays valid (default 90
	// minutes); negative: already expired.
	WebhookTTL time.Duration
}

// Data returns the bot message JSON, the data of its CALLBACK frame.
func (s *Server) Data(m Msg) string {
	if m.ConversationID == "" {
		m.ConversationID = "cidfakeconversation"
	}
	if m.StaffID == "" {
		m.StaffID = "staff-1"
	}
	if m.Msgtype == "" {
		m.Msgtype = "text"
	}
	if m.WebhookTTL == 0 {
		m.WebhookTTL = 90 * time.Minute
	}
	ct := "1"
	if m.Group {
		ct = "2"
	}
	now := time.Now()
	d := map[string]any{
		"conversationId":            m.ConversationID,
		"conversationType":          ct,
		"msgId":                     m.MsgID,
		"senderNick":                m.Nick,
		"senderStaffId":             m.StaffID,
		"senderId":                  "$:LWCP_v1:$" + m.StaffID,
		"chatbotUserId":             "$:LWCP_v1:$robot",
		"robotCode":                 s.opts.ClientID,
		"sessionWebhook":            s.URL + "/robot/sendBySession?session=" + m.ConversationID,
		"sessionWebhookExpiredTime": now.Add(m.WebhookTTL).UnixMilli(),
		"createAt":                  now.UnixMilli(),
		"isInAtList":                true,
		"msgtype":                   m.Msgtype,
	}
	if m.Msgtype == "text" {
		d["text"] = map[string]string{"content": m.Text}
	}
	if m.Content != nil {
		d["content"] = m.Content
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// Push sends a bot message on the stream (or on the next connection if
// none is open) and keeps it until it is acknowledged. Pushing the same
// MsgID again is a redelivery: a new frame carrying the same message. It
// returns the frame's messageId.
func (s *Server) Push(m Msg) string {
	return s.PushFrame("CALLBACK", "/v1.0/im/bot/messages/get", s.Data(m))
}

// PushFrame sends any frame and keeps it until it is acknowledged.
func (s *Server) PushFrame(typ, topic, data string) string {
	id, b := s.frame(typ, topic, data)
	s.mu.Lock()
	s.pending = append(s.pending, pushed{id: id, frame: b})
	s.changedLocked()
	s.mu.Unlock()
	s.send(b)
	return id
}

// Ping sends a SYSTEM ping carrying opaque and returns its messageId; the
// answer shows in Acks.
func (s *Server) Ping(opaque string) (string, bool) {
	id, b := s.frame("SYSTEM", "ping", fmt.Sprintf(`{"opaque":%q}`, opaque))
	return id, s.send(b)
}

// Disconnect sends a SYSTEM disconnect: the client is to reconnect.
// Unacknowledged frames are sent again on the next connection.
func (s *Server) Disconnect() (string, bool) {
	id, b := s.frame("SYSTEM", "disconnect", `{"reason":"server maintenance"}`)
	return id, s.send(b)
}

// RejectCredentials makes connections/open and oauth2/accessToken refuse
// the client id and secret.
func (s *Server) RejectCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = true
}

// ExpireTokens invalidates every access token handed out so far.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
}

// LimitAPI answers the next n robot sends with the flow-control error.
func (s *Server) LimitAPI(n int) { fakeserver.Set(&s.mu, &s.limitAPI, n) }

// LimitWebhook answers the next n session webhook sends with errcode
// 130101 (send too fast).
func (s *Server) LimitWebhook(n int) { fakeserver.Set(&s.mu, &s.limitHook, n) }

// HoldWebhook makes the session webhook show each message (it is recorded
// in Sent) but never answer, until the client gives up or hold is false.
func (s *Server) HoldWebhook(hold bool) { fakeserver.Set(&s.mu, &s.holdHook, hold) }

// ExpireWebhooks makes every session webhook answer that it expired.
func (s *Server) ExpireWebhooks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooksDead = true
}

// Sent returns the replies accepted so far.
func (s *Server) Sent() []Sent { return fakeserver.Copy(&s.mu, &s.sent) }

// Acks returns the acknowledgements received so far.
func (s *Server) Acks() []Ack { return fakeserver.Copy(&s.mu, &s.acks) }

// Pending is the number of frames not acknowledged yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Connected reports whether a stream connection is open.
func (s *Server) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// Dials is the number of stream connections accepted so far.
func (s *Server) Dials() int { return fakeserver.Get(&s.mu, &s.dials) }

// Opens is the number of connections/open calls so far.
func (s *Server) Opens() int { return fakeserver.Get(&s.mu, &s.opens) }

// TokenRequests is the number of oauth2/accessToken calls so far.
func (s *Server) TokenRequests() int { return fakeserver.Get(&s.mu, &s.tokenReqs) }

// Subscriptions returns the subscriptions of the last connections/open.
func (s *Server) Subscriptions() []json.RawMessage { return fakeserver.Get(&s.mu, &s.subs) }

// Acked reports whether the frame id was acknowledged with code 200.
func (s *Server) Acked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.acks {
		if a.MessageID == id && a.Code == 200 {
			return true
		}
	}
	return false
}
