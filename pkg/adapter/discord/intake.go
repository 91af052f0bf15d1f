// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Message types herald reads: DEFAULT and REPLY. The others are system
// messages (member joined, pin added, thread created …).
const (
	msgTypeDefault = 0
	msgTypeReply   = 19
)

// Skip reasons, logged at debug level. They are not rejections: the event
// is valid, herald just does not answer it.
const (
	skipBot       = "author is a bot"
	skipWebhook   = "webhook message"
	skipSystem    = "system message"
	skipNoMention = "guild message without mention of or reply to the bot"
	skipEmpty     = "no text, attachment or sticker"
)

// intake turns MESSAGE_CREATE data into an Inbound. It is a pure function of
// its inputs so that it can be tested and fuzzed without a connection.
type intake struct {
	platform       string
	botID          string
	requireMention bool
	// isThread reports whether a channel id is a known thread.
	isThread func(string) bool
}

// inbound converts m, or returns a skip reason. The result is not yet
// validated (message.Inbound.Validate).
func (in *intake) inbound(m *messageData, now time.Time) (*message.Inbound, string) {
	switch {
	case m.Author.Bot:
		return nil, skipBot
	case m.WebhookID != "":
		return nil, skipWebhook
	case m.Type != msgTypeDefault && m.Type != msgTypeReply:
		return nil, skipSystem
	}
	chatType := message.ChatDirect
	if m.GuildID != "" {
		chatType = message.ChatGroup
		if in.requireMention && !in.addressed(m) {
			return nil, skipNoMention
		}
	}
	text := in.stripMention(m.Content)
	atts, unsupported := attachments(m)
	if text == "" && len(atts) == 0 && len(unsupported) == 0 {
		return nil, skipEmpty
	}
	msg := &message.Inbound{
		Platform:   in.platform,
		EventID:    m.ID,
		ChatID:     m.ChannelID,
		ChatType:   chatType,
		SenderID:   m.Author.ID,
		SenderName: m.Author.GlobalName,
		MessageID:  m.ID,
		Text:       text,
		ReceivedAt: now,

		Attachments: atts,
		Unsupported: unsupported,
	}
	if msg.SenderName == "" {
		msg.SenderName = m.Author.Username
	}
	// A thread is a channel with its own id: replies to ChatID land in the
	// thread. ThreadID repeats it so that the core keys one shared session
	// per thread rather than one per user.
	if m.GuildID != "" && (m.Position != nil || (in.isThread != nil && in.isThread(m.ChannelID))) {
		msg.ThreadID = m.ChannelID
	}
	return msg, ""
}

// addressed reports whether a guild message mentions the bot or replies to
// one of its messages.
func (in *intake) addressed(m *messageData) bool {
	if in.botID == "" {
		return false
	}
	for _, u := range m.Mentions {
		if u.ID == in.botID {
			return true
		}
	}
	if r := m.ReferencedMessage; r != nil && r.Author.ID == in.botID {
		return true
	}
	return false
}

// stripMention removes <@id> and the legacy <@!id> mentions of the bot.
func (in *intake) stripMention(s string) string {
	if in.botID != "" && strings.Contains(s, "<@") {
		s = strings.ReplaceAll(s, "<@"+in.botID+">", "")
		s = strings.ReplaceAll(s, "<@!"+in.botID+">", "")
	}
	return strings.TrimSpace(s)
}
