// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/message"
)

// The subset of the Bot API's Update herald reads. Unknown fields are
// ignored, so new Bot API versions do not break parsing.
type update struct {
	UpdateID      *int64         `json:"update_id"`
	Message       *tgMessage     `json:"message"`
	CallbackQuery *callbackQuery `json:"callback_query"`
}

type tgMessage struct {
	MessageID       int64      `json:"message_id"`
	MessageThreadID int64      `json:"message_thread_id"`
	IsTopicMessage  bool       `json:"is_topic_message"`
	From            *user      `json:"from"`
	Chat            chat       `json:"chat"`
	Text            string     `json:"text"`
	Entities        []entity   `json:"entities"`
	ReplyToMessage  *tgMessage `json:"reply_to_message"`
	tgMedia
}

type chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// entity is a MessageEntity; Offset and Length count UTF-16 code units.
type entity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	User   *user  `json:"user"`
}

var errNoUpdateID = errors.New("update without a positive update_id")

// parseUpdate decodes one entry of a getUpdates answer.
func parseUpdate(raw []byte) (update, error) {
	var u update
	if err := json.Unmarshal(raw, &u); err != nil {
		return update{}, err
	}
	if u.UpdateID == nil || *u.UpdateID <= 0 {
		return update{}, errNoUpdateID
	}
	return u, nil
}

// peekUpdateID returns the update_id of an update that failed to parse as a
// whole, or 0.
func peekUpdateID(raw []byte) int64 {
	var head struct {
		UpdateID int64 `json:"update_id"`
	}
	if json.Unmarshal(raw, &head) != nil || head.UpdateID < 0 {
		return 0
	}
	return head.UpdateID
}

// Labels for Metrics.Rejected: why an update was skipped.
const (
	reasonMalformed    = "malformed"     // the update's JSON could not be read
	reasonUnsupported  = "unsupported"   // not a message update, or no text
	reasonFromBot      = "from_bot"      // sent by a bot: answering could loop
	reasonNotAddressed = "not_addressed" // group message not for this bot
	reasonInvalid      = "invalid"       // message.ErrInvalid
)

// filter turns updates into inbound messages for one bot.
type filter struct {
	platform string
	// botID and username come from getMe.
	botID            int64
	username         string
	groupMentionOnly bool
}

// inbound maps u to a message, or returns nil and the reason (a
// Metrics.Rejected label) with a detail for the log.
func (f *filter) inbound(u *update, now time.Time) (msg *message.Inbound, reason, detail string) {
	if u.CallbackQuery != nil {
		return f.pressed(u.CallbackQuery, now)
	}
	if u.Message == nil {
		return nil, reasonUnsupported, "not a message update"
	}
	mc := *u.Message
	m := &mc
	if m.Text == "" && m.Caption != "" {
		// A caption is the text of a media message, its entities those of
		// the text: mentions and commands work the same.
		m.Text, m.Entities = m.Caption, m.CaptionEntities
	}
	atts, unsupported := m.attachments()
	switch {
	case m.Text == "" && len(atts) == 0 && len(unsupported) == 0:
		return nil, reasonUnsupported, "message without text or media"
	case m.From != nil && m.From.IsBot:
		return nil, reasonFromBot, "sent by a bot"
	}
	ct := chatType(m.Chat.Type)
	text := m.Text
	isGroup := ct == message.ChatGroup
	if isGroup && f.groupMentionOnly && !f.mentioned(m) && !f.repliesToBot(m) && !isCommand(text, f.username) {
		return nil, reasonNotAddressed, "group message without mention, reply or command"
	}
	text = stripLeadingMention(text, f.username)
	text, other := stripCommandSuffix(text, f.username)
	if other && isGroup {
		return nil, reasonNotAddressed, "command for another bot"
	}
	msg = &message.Inbound{
		Platform:   f.platform,
		EventID:    strconv.FormatInt(*u.UpdateID, 10),
		ChatID:     strconv.FormatInt(m.Chat.ID, 10),
		ChatType:   ct,
		MessageID:  strconv.FormatInt(m.MessageID, 10),
		Text:       text,
		ReceivedAt: now,

		Attachments: atts,
		Unsupported: unsupported,
	}
	if m.IsTopicMessage && m.MessageThreadID != 0 {
		msg.ThreadID = strconv.FormatInt(m.MessageThreadID, 10)
	}
	if m.From != nil && m.From.ID != 0 {
		msg.SenderID = strconv.FormatInt(m.From.ID, 10)
		msg.SenderName = displayName(m.From)
	}
	if m.Chat.ID == 0 {
		msg.ChatID = ""
	}
	if err := msg.Validate(); err != nil {
		return nil, reasonInvalid, err.Error()
	}
	return msg, "", ""
}

func chatType(t string) message.ChatType {
	switch t {
	case "private":
		return message.ChatDirect
	case "group", "supergroup":
		return message.ChatGroup
	case "channel":
		return message.ChatChannel
	}
	return "" // Validate rejects it
}

func displayName(u *user) string {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" && u.Username != "" {
		name = "@" + u.Username
	}
	return name
}

// mentioned reports whether m mentions the bot: a mention entity with its
// @username, or a text_mention of its user id. Entity offsets are UTF-16.
func (f *filter) mentioned(m *tgMessage) bool {
	var units []uint16
	for _, e := range m.Entities {
		switch e.Type {
		case "mention":
			if f.username == "" {
				continue
			}
			if units == nil {
				units = utf16.Encode([]rune(m.Text))
			}
			if e.Offset < 0 || e.Length <= 0 || e.Offset > len(units) || e.Length > len(units)-e.Offset {
				continue
			}
			if strings.EqualFold(string(utf16.Decode(units[e.Offset:e.Offset+e.Length])), "@"+f.username) {
				return true
			}
		case "text_mention":
			if e.User != nil && f.botID != 0 && e.User.ID == f.botID {
				return true
			}
		}
	}
	return false
}

// repliesToBot reports whether m answers one of the bot's messages. In forum
// topics every message replies to the topic's first message; that does not
// count, even when the bot opened the topic.
func (f *filter) repliesToBot(m *tgMessage) bool {
	r := m.ReplyToMessage
	if r == nil || r.From == nil || f.botID == 0 || r.From.ID != f.botID {
		return false
	}
	return !(m.IsTopicMessage && r.MessageID == m.MessageThreadID)
}

// parseCommand splits a leading bot command "/name[@target]" off text.
// Names follow Telegram's rule (letters, digits, underscore, at most 32).
func parseCommand(text string) (name, target string, end int, ok bool) {
	if !strings.HasPrefix(text, "/") {
		return "", "", 0, false
	}
	end = strings.IndexFunc(text, isSpace)
	if end < 0 {
		end = len(text)
	}
	name, target, hasTarget := strings.Cut(text[1:end], "@")
	if !validWord(name, 32) || hasTarget && !validWord(target, 64) {
		return "", "", 0, false
	}
	return name, target, end, true
}

// isCommand reports whether text is a command this bot should see: without
// a target or with this bot as target.
func isCommand(text, username string) bool {
	_, target, _, ok := parseCommand(text)
	return ok && (target == "" || strings.EqualFold(target, username))
}

// stripCommandSuffix turns "/status@gw_bot args" into "/status args".
// other reports a command addressed to another bot (left unchanged).
func stripCommandSuffix(text, username string) (out string, other bool) {
	name, target, end, ok := parseCommand(text)
	switch {
	case !ok || target == "":
		return text, false
	case username != "" && strings.EqualFold(target, username):
		return "/" + name + text[end:], false
	default:
		return text, true
	}
}

// stripLeadingMention turns "@gw_bot what now" into "what now"; a message
// that is only the mention is kept as it is.
func stripLeadingMention(text, username string) string {
	at := "@" + username
	if username == "" || len(text) <= len(at) || !strings.EqualFold(text[:len(at)], at) {
		return text
	}
	r, _ := utf8.DecodeRuneInString(text[len(at):])
	if !isSpace(r) && r != ',' && r != ':' {
		return text // "@gw_botany" is someone else
	}
	rest := strings.TrimLeftFunc(text[len(at):], func(r rune) bool { return isSpace(r) || r == ',' || r == ':' })
	if rest == "" {
		return text
	}
	return rest
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x85, 0xA0, 0x2028, 0x2029, 0x3000:
		return true
	}
	return false
}

func validWord(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
