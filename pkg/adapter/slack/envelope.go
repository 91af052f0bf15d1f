// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Envelope types and disconnect reasons of the Socket Mode protocol.
const (
	typeHello         = "hello"
	typeDisconnect    = "disconnect"
	typeEventsAPI     = "events_api"
	typeSlashCommands = "slash_commands"
	typeInteractive   = "interactive"

	reasonWarning          = "warning"
	reasonRefreshRequested = "refresh_requested"
	reasonLinkDisabled     = "link_disabled"
)

// envelope is one Socket Mode frame. hello and disconnect frames carry no
// envelope_id; everything else must be acknowledged by it.
type envelope struct {
	Type                   string          `json:"type"`
	EnvelopeID             string          `json:"envelope_id"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt"`
	RetryReason            string          `json:"retry_reason"`
	// Reason is set on disconnect frames.
	Reason string `json:"reason"`
	// NumConnections is set on hello frames.
	NumConnections int `json:"num_connections"`
}

// errMalformed marks frames and payloads that cannot be understood.
var errMalformed = errors.New("malformed")

// decodeEnvelope parses one websocket text message.
func decodeEnvelope(data []byte) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return envelope{}, fmt.Errorf("%w envelope: %v", errMalformed, err)
	}
	if env.Type == "" {
		return envelope{}, fmt.Errorf("%w envelope: no type", errMalformed)
	}
	return env, nil
}

// eventCallback is the payload of an events_api envelope.
type eventCallback struct {
	Type           string          `json:"type"`
	TeamID         string          `json:"team_id"`
	EventID        string          `json:"event_id"`
	EventTime      int64           `json:"event_time"`
	Authorizations []authorization `json:"authorizations"`
	Event          json.RawMessage `json:"event"`
}

type authorization struct {
	UserID string `json:"user_id"`
	IsBot  bool   `json:"is_bot"`
}

// messageEvent is the part of message and app_mention events herald reads.
// Other event types are not decoded beyond their type: their fields differ
// (user_change carries a user object, for instance).
type messageEvent struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
	User        string `json:"user"`
	BotID       string `json:"bot_id"`
	Text        string `json:"text"`
	TS          string `json:"ts"`
	ThreadTS    string `json:"thread_ts"`
	// Files are set on subtype file_share (see fileAttachments).
	Files []slackFile `json:"files"`
}

// slashCommand is the payload of a slash_commands envelope.
type slashCommand struct {
	Command     string `json:"command"`
	Text        string `json:"text"`
	TeamID      string `json:"team_id"`
	ChannelID   string `json:"channel_id"`
	ChannelName string `json:"channel_name"`
	UserID      string `json:"user_id"`
	UserName    string `json:"user_name"`
	TriggerID   string `json:"trigger_id"`
}

// Subtypes of message events that are still a person writing: a message
// with files attached (the text is their caption) and a thread reply also
// sent to the channel. Every other subtype (message_changed,
// message_deleted, bot_message, channel_join, …) is skipped.
var userSubtypes = map[string]bool{"file_share": true, "thread_broadcast": true}

// mapper turns envelopes into inbound messages. It holds only configuration,
// so it is safe for concurrent use.
type mapper struct {
	platform      string
	replyInThread bool
}

// inbound maps an events_api, slash_commands or interactive envelope. A nil message with
// a nil error means the envelope is valid but not for herald (skip names
// why); it must still be acknowledged. An error wrapping errMalformed means
// the payload could not be understood.
func (m mapper) inbound(env envelope, now time.Time) (msg *message.Inbound, skip string, err error) {
	switch env.Type {
	case typeEventsAPI:
		return m.event(env.Payload, now)
	case typeSlashCommands:
		return m.slash(env, now)
	case typeInteractive:
		return m.pressed(env, now)
	default:
		return nil, "envelope type " + env.Type, nil
	}
}

func (m mapper) event(payload json.RawMessage, now time.Time) (*message.Inbound, string, error) {
	var cb eventCallback
	if err := json.Unmarshal(payload, &cb); err != nil {
		return nil, "", fmt.Errorf("%w events_api payload: %v", errMalformed, err)
	}
	if cb.Type != "event_callback" {
		return nil, "payload type " + cb.Type, nil
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(cb.Event, &head); err != nil {
		return nil, "", fmt.Errorf("%w event: %v", errMalformed, err)
	}
	if head.Type != "message" && head.Type != "app_mention" {
		return nil, "event type " + head.Type, nil
	}
	var ev messageEvent
	if err := json.Unmarshal(cb.Event, &ev); err != nil {
		return nil, "", fmt.Errorf("%w %s event: %v", errMalformed, head.Type, err)
	}
	switch {
	case ev.BotID != "":
		return nil, "bot message", nil
	case ev.Subtype != "" && !userSubtypes[ev.Subtype]:
		return nil, "message subtype " + ev.Subtype, nil
	}
	ct := chatType(ev.ChannelType, ev.Channel)
	switch {
	case ev.Type == "message" && ct != message.ChatDirect:
		// Channels are served through app_mention only: a message.channels
		// subscription would deliver every mention twice (as message and as
		// app_mention, with different event ids).
		return nil, "channel message without mention", nil
	case ev.Type == "app_mention" && ct == message.ChatDirect:
		// message.im covers direct messages.
		return nil, "mention in a direct message", nil
	}
	var bots []string
	for _, a := range cb.Authorizations {
		if a.IsBot && a.UserID != "" {
			bots = append(bots, a.UserID)
		}
	}
	msg := &message.Inbound{
		Platform:   m.platform,
		EventID:    cb.EventID,
		ChatID:     ev.Channel,
		ChatType:   ct,
		ThreadID:   ev.ThreadTS,
		SenderID:   ev.User,
		MessageID:  ev.TS,
		Text:       cleanText(ev.Text, bots, ev.Type == "app_mention"),
		ReceivedAt: now,
	}
	msg.Attachments, msg.Unsupported = fileAttachments(ev.Files)
	if msg.ThreadID == "" && m.replyInThread && ct != message.ChatDirect {
		// The reply opens a thread under this message (see Send); keying the
		// session by that thread now keeps the first message and the
		// follow-ups in the thread in one conversation.
		msg.ThreadID = ev.TS
	}
	return msg, "", nil
}

func (m mapper) slash(env envelope, now time.Time) (*message.Inbound, string, error) {
	var sc slashCommand
	if err := json.Unmarshal(env.Payload, &sc); err != nil {
		return nil, "", fmt.Errorf("%w slash_commands payload: %v", errMalformed, err)
	}
	if sc.Command == "" {
		return nil, "", fmt.Errorf("%w slash_commands payload: no command", errMalformed)
	}
	id := sc.TriggerID
	if id == "" {
		id = env.EnvelopeID
	}
	ct := chatType("", sc.ChannelID)
	if sc.ChannelName == "directmessage" {
		ct = message.ChatDirect
	}
	return &message.Inbound{
		Platform:   m.platform,
		EventID:    "slash:" + id,
		ChatID:     sc.ChannelID,
		ChatType:   ct,
		SenderID:   sc.UserID,
		SenderName: sc.UserName,
		Text:       strings.TrimSpace(sc.Command + " " + strings.TrimSpace(unescape(sc.Text))),
		ReceivedAt: now,
	}, "", nil
}

// chatType maps Slack's channel_type, or when it is absent (app_mention
// events, slash commands) the channel id prefix: D… direct message, G…
// private channel or group DM, C… channel.
func chatType(channelType, channel string) message.ChatType {
	switch channelType {
	case "im":
		return message.ChatDirect
	case "mpim", "group":
		return message.ChatGroup
	case "channel":
		return message.ChatChannel
	}
	switch {
	case strings.HasPrefix(channel, "D"):
		return message.ChatDirect
	case strings.HasPrefix(channel, "G"):
		return message.ChatGroup
	default:
		return message.ChatChannel
	}
}

// cleanText removes mentions of the bot (<@U123> or <@U123|name>) and
// decodes the three entities Slack escapes (&amp; &lt; &gt;). When the
// bot's user id is unknown (no authorizations in the payload), an
// app_mention's leading mention is the bot's and is removed.
func cleanText(text string, bots []string, mention bool) string {
	for _, id := range bots {
		text = removeMention(text, id)
	}
	if len(bots) == 0 && mention {
		t := strings.TrimLeft(text, " ")
		if strings.HasPrefix(t, "<@") {
			if end := strings.IndexByte(t, '>'); end > 0 {
				text = t[end+1:]
			}
		}
	}
	return strings.TrimSpace(unescape(text))
}

func removeMention(text, id string) string {
	prefix := "<@" + id
	out := make([]byte, 0, len(text))
	for {
		i := strings.Index(text, prefix)
		if i < 0 {
			return string(append(out, text...))
		}
		rest := text[i+len(prefix):]
		end := -1
		switch {
		case strings.HasPrefix(rest, ">"):
			end = 0
		case strings.HasPrefix(rest, "|"):
			end = strings.IndexByte(rest, '>')
		}
		if end < 0 {
			// <@U1234> while removing U12: another user.
			out = append(out, text[:i+len(prefix)]...)
			text = rest
			continue
		}
		// Join the text around the mention with at most one space.
		out = bytes.TrimRight(append(out, text[:i]...), " ")
		text = strings.TrimLeft(rest[end+1:], " ")
		if len(out) > 0 && text != "" && !isSpace(out[len(out)-1]) && !isSpace(text[0]) {
			out = append(out, ' ')
		}
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

var (
	unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	escaper   = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
)

func unescape(s string) string { return unescaper.Replace(s) }

// escape prepares plain text for chat.postMessage: Slack reads <…> as links
// and mentions and & as the start of an entity, so the three characters are
// sent as entities and the agent's text is shown as written.
func escape(s string) string { return escaper.Replace(s) }
