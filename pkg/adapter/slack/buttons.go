// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/message"
)

// Buttons are Block Kit: a message with buttons is posted with blocks, a
// section block holding the text (Slack then shows the blocks, and the
// top-level text only in notifications) and an actions block with one
// button element per button: {type: button, text: plain_text label,
// action_id, value, style}. A press arrives over Socket Mode as an
// interactive envelope whose payload has type block_actions, with the
// presser (user.id), the channel, the message carrying the buttons
// (container.message_ts, message.thread_ts) and the pressed element
// (actions[].action_id and value); it is acknowledged by its envelope_id
// like any envelope.

// buttonActionPrefix starts the action_id of herald's buttons; a
// block_actions payload without one is not for herald.
const buttonActionPrefix = "herald_button_"

// maxSectionText is Slack's limit on a section block's text, in characters.
const maxSectionText = 3000

type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type block struct {
	Type     string          `json:"type"`
	Text     *textObject     `json:"text,omitempty"`
	Elements []buttonElement `json:"elements,omitempty"`
}

type buttonElement struct {
	Type     string     `json:"type"`
	Text     textObject `json:"text"`
	ActionID string     `json:"action_id"`
	Value    string     `json:"value"`
	Style    string     `json:"style,omitempty"`
}

// blocks returns the blocks of a message with text (already escaped) and
// buttons, nil without buttons or when the text does not fit a section
// block: the message then goes out as text alone, which says how to answer
// without buttons.
func blocks(text string, buttons []message.Button) []block {
	if len(buttons) == 0 || utf8.RuneCountInString(text) > maxSectionText {
		return nil
	}
	row := make([]buttonElement, len(buttons))
	for i, b := range buttons {
		row[i] = buttonElement{
			Type:     "button",
			Text:     textObject{Type: "plain_text", Text: b.Label},
			ActionID: fmt.Sprintf("%s%d", buttonActionPrefix, i),
			Value:    b.Data,
		}
		if b.Style == "primary" || b.Style == "danger" {
			row[i].Style = b.Style
		}
	}
	return []block{{Type: "section", Text: &textObject{Type: "mrkdwn", Text: text}}, {Type: "actions", Elements: row}}
}

// SendsButtons implements adapter.ButtonSender.
func (a *Adapter) SendsButtons() bool { return true }

// blockActions is the part of a block_actions payload herald reads.
type blockActions struct {
	Type      string `json:"type"`
	TriggerID string `json:"trigger_id"`
	User      struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		MessageTS string `json:"message_ts"`
		ChannelID string `json:"channel_id"`
		ThreadTS  string `json:"thread_ts"`
	} `json:"container"`
	Message struct {
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
	} `json:"message"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
		ActionTS string `json:"action_ts"`
	} `json:"actions"`
}

// pressed maps an interactive envelope: a press of one of herald's buttons
// becomes a message from the presser in the channel (and thread) of the
// message carrying it; anything else is skipped.
func (m mapper) pressed(env envelope, now time.Time) (*message.Inbound, string, error) {
	var ba blockActions
	if err := json.Unmarshal(env.Payload, &ba); err != nil {
		return nil, "", fmt.Errorf("%w interactive payload: %v", errMalformed, err)
	}
	if ba.Type != "block_actions" {
		return nil, "interactive payload type " + ba.Type, nil
	}
	data := ""
	for _, act := range ba.Actions {
		if strings.HasPrefix(act.ActionID, buttonActionPrefix) {
			data = act.Value
			break
		}
	}
	if data == "" {
		return nil, "block_actions without a button of herald's", nil
	}
	channel := ba.Channel.ID
	if channel == "" {
		channel = ba.Container.ChannelID
	}
	thread := ba.Message.ThreadTS
	if thread == "" {
		thread = ba.Container.ThreadTS
	}
	id := ba.TriggerID
	if id == "" {
		id = env.EnvelopeID
	}
	return &message.Inbound{
		Platform:   m.platform,
		EventID:    "action:" + id,
		ChatID:     channel,
		ChatType:   chatType("", channel),
		ThreadID:   thread,
		SenderID:   ba.User.ID,
		SenderName: ba.User.Username,
		MessageID:  ba.Container.MessageTS,
		Button:     data,
		ReceivedAt: now,
	}, "", nil
}
