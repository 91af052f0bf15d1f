// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Buttons are a Feishu card (card JSON 2.0): a message of msg_type
// interactive whose content is {"schema":"2.0","body":{"elements":[…]}}, a
// div with the text as plain_text and one button per button, each with a
// callback behavior, {"type":"callback","value":{…}}; the SDK only passes
// object values. A press arrives over the same long connection as the
// messages, as an event frame of event_type card.action.trigger (the new
// card callback; the old message card callback cannot use the long
// connection): operator.open_id (who pressed), action.value (the button's
// value), context.open_message_id and context.open_chat_id. The platform
// wants the answer within 3 seconds: herald acknowledges the frame with a
// response whose data is {} (no toast, the card unchanged).

const eventCardAction = "card.action.trigger"

// cardValue is the callback value of herald's buttons: the button's data
// and what the callback does not say about the conversation (the chat type
// and thread), which the session key needs. A forged value gains nothing:
// the data is signed over the session.
type cardValue struct {
	Data     string `json:"herald"`
	ChatType string `json:"chat_type,omitempty"`
	Thread   string `json:"thread,omitempty"`
}

type cardText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

type cardBehavior struct {
	Type  string    `json:"type"`
	Value cardValue `json:"value"`
}

type cardElement struct {
	Tag       string         `json:"tag"`
	Text      *cardText      `json:"text,omitempty"`
	Type      string         `json:"type,omitempty"`
	Behaviors []cardBehavior `json:"behaviors,omitempty"`
}

// cardContent is the content of an interactive message showing text and
// buttons.
func cardContent(msg *message.Outbound) string {
	elements := []cardElement{{Tag: "div", Text: &cardText{Tag: "plain_text", Content: msg.Text}}}
	for _, b := range msg.Buttons {
		typ := "default"
		if b.Style == "primary" || b.Style == "danger" {
			typ = b.Style
		}
		elements = append(elements, cardElement{
			Tag: "button", Text: &cardText{Tag: "plain_text", Content: b.Label}, Type: typ,
			Behaviors: []cardBehavior{{Type: "callback", Value: cardValue{Data: b.Data, ChatType: string(msg.ChatType), Thread: msg.ThreadID}}},
		})
	}
	card := map[string]any{"schema": "2.0", "body": map[string]any{"elements": elements}}
	b, _ := json.Marshal(card)
	return string(b)
}

// SendsButtons implements adapter.ButtonSender.
func (a *Adapter) SendsButtons() bool { return true }

// cardAction is the event of card.action.trigger.
type cardAction struct {
	Operator struct {
		OpenID  string `json:"open_id"`
		UnionID string `json:"union_id"`
	} `json:"operator"`
	Action struct {
		Tag   string          `json:"tag"`
		Value json.RawMessage `json:"value"`
	} `json:"action"`
	Context struct {
		OpenMessageID string `json:"open_message_id"`
		OpenChatID    string `json:"open_chat_id"`
	} `json:"context"`
}

// cardAck is the response to a card callback: data is the callback's
// answer, {} (bytes, base64 in JSON, as the SDK sends them).
var cardAck = func() []byte {
	b, _ := json.Marshal(map[string]any{"code": 200, "headers": nil, "data": []byte("{}")})
	return b
}()

// pressed maps a card callback to a press of one of herald's buttons, or
// returns the reason (a Rejected label) why herald does not take it.
func (a *Adapter) pressed(eventID string, raw json.RawMessage) (*message.Inbound, string, error) {
	var ev cardAction
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, reasonMalformed, fmt.Errorf("card action: %w", err)
	}
	var v cardValue
	if len(ev.Action.Value) == 0 || json.Unmarshal(ev.Action.Value, &v) != nil || v.Data == "" {
		return nil, reasonUnsupported, nil // another card's button
	}
	chatType := message.ChatGroup
	if v.ChatType == string(message.ChatDirect) {
		chatType = message.ChatDirect
	}
	sender := ev.Operator.OpenID
	if sender == "" {
		sender = ev.Operator.UnionID
	}
	return &message.Inbound{
		Platform:   a.Name,
		EventID:    eventID,
		ChatID:     ev.Context.OpenChatID,
		ChatType:   chatType,
		ThreadID:   v.Thread,
		SenderID:   sender,
		MessageID:  ev.Context.OpenMessageID,
		Button:     v.Data,
		ReceivedAt: time.Now(),
	}, "", nil
}
