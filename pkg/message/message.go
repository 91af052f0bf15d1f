// SPDX-License-Identifier: Apache-2.0

package message

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ChatType says what kind of conversation a message arrived in. It decides
// how the session key is built: direct messages are keyed by chat, group
// chats optionally by chat and sender.
type ChatType string

const (
	ChatDirect  ChatType = "dm"
	ChatGroup   ChatType = "group"
	ChatChannel ChatType = "channel"
)

// MaxTextBytes bounds the text of one inbound message. Adapters reject larger
// messages before they reach the store; the webhook adapter answers 413.
const MaxTextBytes = 64 << 10

// Inbound is one message received from a platform.
//
// (Platform, EventID) identifies the message for deduplication: a platform
// that redelivers an event (Feishu and Slack after a missed ack, Telegram
// after an unconfirmed offset) gives the same EventID again, and the core
// stores it only once.
type Inbound struct {
	// Platform is the configured platform instance name ("telegram",
	// "hooks-ci"), not necessarily the adapter type.
	Platform string `json:"platform"`
	// EventID is the platform's stable id of this delivery: Feishu
	// header.event_id, Telegram update_id, Slack event_id, a webhook's
	// webhook-id. Required.
	EventID string `json:"event_id"`
	// ChatID identifies the conversation on the platform. Required.
	ChatID   string   `json:"chat_id"`
	ChatType ChatType `json:"chat_type"`
	// ThreadID is the platform's thread (Feishu thread_id, Slack thread_ts,
	// Telegram message_thread_id); empty outside threads.
	ThreadID string `json:"thread_id,omitempty"`
	// SenderID is the platform's user id of the author. Required; it is what
	// allowlists match.
	SenderID   string `json:"sender_id"`
	SenderName string `json:"sender_name,omitempty"`
	// MessageID is the platform's id of the message itself, used to reply to
	// it. It may equal EventID.
	MessageID string `json:"message_id,omitempty"`
	Text      string `json:"text"`
	// Attachments are the message's images, files and voice notes, by
	// reference; a caption is Text.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Unsupported names what the message carried that herald cannot pass
	// to the agent ("sticker", "location", "poll"), one entry per item.
	// The core tells the sender and counts it; it never vanishes silently.
	Unsupported []string `json:"unsupported,omitempty"`
	// Meta carries adapter-private routing data that the adapter needs again
	// to reply (a webhook's reply_url, a Slack channel). It is stored with the
	// message and copied onto every Outbound answering it. Never secrets.
	Meta map[string]string `json:"meta,omitempty"`
	// Button is the Data of the native button (Outbound.Buttons) the sender
	// pressed; the press arrives as a message of its own with an empty
	// Text, its EventID the platform's id of the interaction, so pressing
	// is deduplicated like a message. The core checks the data, which it
	// signed, before acting on it.
	Button     string    `json:"button,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// MaxButtonData bounds Button.Data: Telegram's callback_data takes at most
// 64 bytes, the smallest limit of the platforms with buttons.
const MaxButtonData = 64

// Button is a native button under a message. Adapters that implement
// adapter.ButtonSender show it; a press comes back as an Inbound with
// Button set to Data.
type Button struct {
	Label string `json:"label"`
	// Data is opaque to the adapter, at most MaxButtonData bytes.
	Data string `json:"data"`
	// Style is "primary", "danger" or "" (the platform's default look).
	Style string `json:"style,omitempty"`
}

// ErrInvalid reports an Inbound that lacks a required field or is too large.
var ErrInvalid = errors.New("invalid message")

// Validate reports whether m can be stored. Adapters call it before handing
// a message to the core so that malformed platform events are rejected at the
// edge with a clear reason.
func (m *Inbound) Validate() error {
	var missing []string
	if m.Platform == "" {
		missing = append(missing, "platform")
	}
	if m.EventID == "" {
		missing = append(missing, "event_id")
	}
	if m.ChatID == "" {
		missing = append(missing, "chat_id")
	}
	if m.SenderID == "" {
		missing = append(missing, "sender_id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInvalid, strings.Join(missing, ", "))
	}
	if len(m.Button) > MaxButtonData {
		return fmt.Errorf("%w: button data is %d bytes, limit %d", ErrInvalid, len(m.Button), MaxButtonData)
	}
	if len(m.Text) > MaxTextBytes {
		return fmt.Errorf("%w: text is %d bytes, limit %d", ErrInvalid, len(m.Text), MaxTextBytes)
	}
	if err := m.validateMedia(); err != nil {
		return err
	}
	switch m.ChatType {
	case ChatDirect, ChatGroup, ChatChannel:
	case "":
		return fmt.Errorf("%w: missing chat_type", ErrInvalid)
	default:
		return fmt.Errorf("%w: unknown chat_type %q", ErrInvalid, m.ChatType)
	}
	return nil
}

// SessionKey returns the conversation key of m: one agent turn runs at a time
// per key, and history is kept per key.
//
// Direct messages are keyed by chat (and thread). In group chats and channels
// each sender has their own session when perUserInGroups is set (the
// default: one member's conversation does not leak into another's), while
// threads are shared.
func (m *Inbound) SessionKey(perUserInGroups bool) string {
	var b strings.Builder
	b.WriteString(m.Platform)
	b.WriteByte(':')
	b.WriteString(string(m.ChatType))
	b.WriteByte(':')
	b.WriteString(m.ChatID)
	if m.ThreadID != "" {
		b.WriteString(":t:")
		b.WriteString(m.ThreadID)
	} else if perUserInGroups && m.ChatType != ChatDirect {
		b.WriteString(":u:")
		b.WriteString(m.SenderID)
	}
	return b.String()
}

// Outbound is one reply herald asks an adapter to deliver.
type Outbound struct {
	Platform string   `json:"platform"`
	ChatID   string   `json:"chat_id"`
	ChatType ChatType `json:"chat_type,omitempty"`
	ThreadID string   `json:"thread_id,omitempty"`
	// ReplyTo is the platform message id being answered, empty for
	// unsolicited messages.
	ReplyTo string `json:"reply_to,omitempty"`
	// RecipientID is the user the reply is meant for (the inbound sender).
	RecipientID string `json:"recipient_id,omitempty"`
	Text        string `json:"text"`
	// Media, when set, makes this part a file: Text is then empty (a
	// caption travels in Media.Caption). Adapters that implement
	// adapter.MediaSender upload it natively; to others the core sends a
	// text line with the link instead.
	Media *OutboundMedia `json:"media,omitempty"`
	// Buttons, when set, are shown under the text as native buttons by
	// adapters that implement adapter.ButtonSender; others send the text
	// alone, which always says how to answer without them.
	Buttons []Button `json:"buttons,omitempty"`
	// IdempotencyKey is stable across retries and across herald restarts for
	// the same logical reply part. Adapters pass it to platforms that
	// deduplicate (Feishu uuid, webhook Idempotency-Key and webhook-id) so a
	// retried delivery is never shown twice.
	IdempotencyKey string `json:"idempotency_key"`
	// Part and Parts number the chunks of one reply, 1-based.
	Part  int               `json:"part"`
	Parts int               `json:"parts"`
	Meta  map[string]string `json:"meta,omitempty"`
}

// ReplyTo builds the Outbound skeleton answering m. The caller sets Text,
// Part, Parts and IdempotencyKey.
func (m *Inbound) ReplyTo() Outbound {
	meta := make(map[string]string, len(m.Meta))
	for k, v := range m.Meta {
		meta[k] = v
	}
	return Outbound{
		Platform:    m.Platform,
		ChatID:      m.ChatID,
		ChatType:    m.ChatType,
		ThreadID:    m.ThreadID,
		ReplyTo:     m.MessageID,
		RecipientID: m.SenderID,
		Meta:        meta,
		Part:        1,
		Parts:       1,
	}
}

// IdempotencyKey derives the key of reply part `part` to the inbound message
// (platform, eventID). It is at most 40 characters, within Feishu's 50-char
// uuid limit, and the same in every herald instance.
func IdempotencyKey(platform, eventID string, part int) string {
	h := sha256.Sum256([]byte(platform + "\x00" + eventID))
	return fmt.Sprintf("hr-%s-%d", hex.EncodeToString(h[:16]), part)
}
