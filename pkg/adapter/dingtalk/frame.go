// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Frame types and topics of the stream protocol.
const (
	typeSystem   = "SYSTEM"
	typeEvent    = "EVENT"
	typeCallback = "CALLBACK"

	topicPing       = "ping"
	topicDisconnect = "disconnect"
	// TopicBotMessage is the CALLBACK topic of messages sent to the robot.
	TopicBotMessage = "/v1.0/im/bot/messages/get"
)

// Meta keys of an Inbound (copied to its replies' Outbound.Meta).
const (
	// MetaSessionWebhook is the message's sessionWebhook URL.
	MetaSessionWebhook = "session_webhook"
	// MetaSessionWebhookExpires is sessionWebhookExpiredTime, Unix
	// milliseconds.
	MetaSessionWebhookExpires = "session_webhook_expires"
	// MetaRobotCode is the robotCode the message was sent to.
	MetaRobotCode = "robot_code"
	// MetaStaffID is the sender's staff id (userId), the address of a 1:1
	// reply through the robot API.
	MetaStaffID = "staff_id"
)

// frame is one message of the stream: data is a JSON document in a string.
type frame struct {
	SpecVersion string            `json:"specVersion"`
	Type        string            `json:"type"`
	Headers     map[string]string `json:"headers"`
	Data        string            `json:"data"`
}

func (f *frame) topic() string     { return f.Headers["topic"] }
func (f *frame) messageID() string { return f.Headers["messageId"] }

// ackFrame acknowledges one frame: code 200 with the frame's messageId.
type ackFrame struct {
	Code    int               `json:"code"`
	Headers map[string]string `json:"headers"`
	Message string            `json:"message"`
	Data    string            `json:"data"`
}

// Data of the acknowledgements: a callback answers {"response": null} (no
// synchronous reply), an event {"status": "SUCCESS"}, a ping echoes its
// data.
const (
	ackCallbackData = `{"response":null}`
	ackEventData    = `{"status":"SUCCESS","message":"success"}`
)

func newAck(messageID string, code int, msg, data string) ackFrame {
	return ackFrame{
		Code:    code,
		Headers: map[string]string{"contentType": "application/json", "messageId": messageID},
		Message: msg,
		Data:    data,
	}
}

// botMessage is the data of a TopicBotMessage frame.
type botMessage struct {
	ConversationID            string                   `json:"conversationId"`
	ConversationType          string                   `json:"conversationType"` // "1" 1:1, "2" group
	ConversationTitle         string                   `json:"conversationTitle"`
	MsgID                     string                   `json:"msgId"`
	SenderNick                string                   `json:"senderNick"`
	SenderStaffID             string                   `json:"senderStaffId"`
	SenderID                  string                   `json:"senderId"`
	SessionWebhook            string                   `json:"sessionWebhook"`
	SessionWebhookExpiredTime int64                    `json:"sessionWebhookExpiredTime"`
	CreateAt                  int64                    `json:"createAt"`
	RobotCode                 string                   `json:"robotCode"`
	Msgtype                   string                   `json:"msgtype"`
	Text                      struct{ Content string } `json:"text"`
	Content                   json.RawMessage          `json:"content"`
}

// Rejection reasons (Metrics.Rejected).
const (
	reasonMalformed = "malformed"
	reasonInvalid   = "invalid"
	reasonTopic     = "unsupported_topic"
	reasonEmpty     = "empty"
)

// rejectError is a bot message that can never become an Inbound; it is
// acknowledged and counted under reason.
type rejectError struct {
	reason string
	err    error
}

func (e *rejectError) Error() string { return e.err.Error() }

func reject(reason, format string, args ...any) error {
	return &rejectError{reason: reason, err: fmt.Errorf(format, args...)}
}

// inbound turns the data of a bot message frame into an Inbound.
func inbound(platform, data string, now time.Time) (*message.Inbound, error) {
	var m botMessage
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return nil, reject(reasonMalformed, "bot message data: %v", err)
	}
	if m.MsgID == "" || m.ConversationID == "" {
		return nil, reject(reasonMalformed, "bot message without msgId or conversationId")
	}
	var ct message.ChatType
	switch m.ConversationType {
	case "1":
		ct = message.ChatDirect
	case "2":
		ct = message.ChatGroup
	default:
		return nil, reject(reasonMalformed, "bot message %s: unknown conversationType %q", m.MsgID, m.ConversationType)
	}
	text, atts, unsupported, err := messageContent(&m)
	if err != nil {
		return nil, err
	}
	sender := m.SenderStaffID
	if sender == "" {
		sender = m.SenderID
	}
	at := now
	if m.CreateAt > 0 {
		at = time.UnixMilli(m.CreateAt)
	}
	meta := map[string]string{}
	if m.SessionWebhook != "" {
		meta[MetaSessionWebhook] = m.SessionWebhook
		meta[MetaSessionWebhookExpires] = strconv.FormatInt(m.SessionWebhookExpiredTime, 10)
	}
	if m.RobotCode != "" {
		meta[MetaRobotCode] = m.RobotCode
	}
	if m.SenderStaffID != "" {
		meta[MetaStaffID] = m.SenderStaffID
	}
	return &message.Inbound{
		Platform:    platform,
		EventID:     m.MsgID,
		ChatID:      m.ConversationID,
		ChatType:    ct,
		SenderID:    sender,
		SenderName:  m.SenderNick,
		MessageID:   m.MsgID,
		Text:        text,
		Attachments: atts,
		Unsupported: unsupported,
		Meta:        meta,
		ReceivedAt:  at,
	}, nil
}

var errDisconnect = errors.New("DingTalk asked to reconnect (SYSTEM disconnect)")
