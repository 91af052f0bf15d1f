// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"strings"
)

// Event is a message or app_mention event to push.
type Event struct {
	// EventID defaults to a generated Ev… id.
	EventID string
	// Type defaults to "message".
	Type        string
	Channel     string
	ChannelType string
	User        string
	Text        string
	// TS defaults to a generated timestamp.
	TS       string
	ThreadTS string
	BotID    string
	Subtype  string
	// Files are file objects (see Server.AddFile) for a file_share message.
	Files []map[string]any
}

// SlashCommand is a slash_commands payload to push.
type SlashCommand struct {
	Command     string
	Text        string
	ChannelID   string
	ChannelName string
	UserID      string
	UserName    string
	TriggerID   string
}

// Pushed identifies a pushed envelope.
type Pushed struct {
	EnvelopeID string
	EventID    string
}

// Ack is an acknowledgement received from the client.
type Ack struct {
	EnvelopeID   string
	EventID      string // "" if the envelope is unknown
	RetryAttempt int
	Conn         int
}

// Message is a message posted with chat.postMessage, as it stands after
// chat.update calls.
type Message struct {
	Channel  string
	Text     string // as sent (Slack mrkdwn, entities escaped)
	ThreadTS string
	TS       string
	Edits    int
	// Metadata is the message metadata posted with it, if any.
	Metadata *Metadata
	// FileIDs are the files the message shares (files.completeUploadExternal).
	FileIDs []string
	// Buttons are the button elements of its actions blocks.
	Buttons []Button
}

// Button is a Block Kit button element.
type Button struct {
	Text     string // the plain_text label
	ActionID string
	Value    string
	Style    string
}

// Press is a user pressing a button of a message.
type Press struct {
	User      string
	Channel   string
	MessageTS string
	// ThreadTS is the thread the message is in, "" if none.
	ThreadTS string
	ActionID string
	Value    string
}

// Metadata is Slack's message metadata: an event type and a free-form
// payload.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Display is the text as a Slack user sees it: entities decoded.
func (m Message) Display() string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(m.Text)
}
