// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// syncResponse is the part of a /sync answer herald reads.
type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]joinedRoom  `json:"join"`
		Invite map[string]invitedRoom `json:"invite"`
	} `json:"rooms"`
}

type joinedRoom struct {
	Summary struct {
		JoinedMembers *int `json:"m.joined_member_count"`
	} `json:"summary"`
	State struct {
		Events []json.RawMessage `json:"events"`
	} `json:"state"`
	Timeline struct {
		Events  []json.RawMessage `json:"events"`
		Limited bool              `json:"limited"`
	} `json:"timeline"`
}

type invitedRoom struct {
	InviteState struct {
		Events []event `json:"events"`
	} `json:"invite_state"`
}

// event is a room event (or a stripped state event of an invite).
type event struct {
	Type           string          `json:"type"`
	EventID        string          `json:"event_id"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key"`
	OriginServerTS int64           `json:"origin_server_ts"`
	Content        json.RawMessage `json:"content"`
}

// messageContent is the content of an m.room.message (and of an
// m.room.member, whose membership and is_direct share the struct).
type messageContent struct {
	MsgType   string `json:"msgtype"`
	Body      string `json:"body"`
	RelatesTo *struct {
		RelType   string `json:"rel_type"`
		EventID   string `json:"event_id"`
		InReplyTo *struct {
			EventID string `json:"event_id"`
		} `json:"m.in_reply_to"`
	} `json:"m.relates_to"`
	Mentions *struct {
		UserIDs []string `json:"user_ids"`
	} `json:"m.mentions"`
	Membership string `json:"membership"`
	IsDirect   bool   `json:"is_direct"`
	// Media messages (m.image, m.file, m.audio, m.video).
	URL      string          `json:"url"`
	File     json.RawMessage `json:"file"`
	Filename string          `json:"filename"`
	Info     *mediaInfo      `json:"info"`
	Voice    json.RawMessage `json:"org.matrix.msc3245.voice"`
}

// Reasons an event is not passed on, the labels of Metrics.Rejected.
const (
	reasonMalformed   = "malformed"
	reasonInvalid     = "invalid"
	reasonOwn         = "own_message"
	reasonNotMention  = "not_mentioned"
	reasonUnsupported = "unsupported_msgtype"
	reasonEdit        = "edit"
	reasonEncrypted   = "encrypted"
	reasonInvite      = "invite_declined"
)

// classifier turns timeline events into messages for one bot account.
type classifier struct {
	platform       string
	userID         string
	displayName    string
	requireMention bool
}

// inbound converts an m.room.message (or an m.sticker). It returns the
// message, or nil and the reason it is skipped. A media message becomes an
// attachment whose reference is its mxc:// URI, stored with the message
// before the sync position moves past it; its caption is the text.
// Stickers, locations and encrypted files are passed on as unsupported
// kinds, so that the core answers and counts them.
func (c *classifier) inbound(room string, ev *event, direct bool, now time.Time) (*message.Inbound, string) {
	if ev.EventID == "" || ev.Sender == "" {
		return nil, reasonMalformed
	}
	if ev.Sender == c.userID {
		return nil, reasonOwn
	}
	var mc messageContent
	if err := json.Unmarshal(ev.Content, &mc); err != nil {
		return nil, reasonMalformed
	}
	text := mc.Body
	var atts []message.Attachment
	var unsupported []string
	switch kind, media := msgKinds[mc.MsgType]; {
	case ev.Type == "m.sticker":
		// A sticker is its own event type: an image with a body that
		// describes it, not something the agent is asked about.
		text, unsupported = "", []string{"sticker"}
	case media:
		att, caption, unsup := mediaOf(&mc, kind)
		text = caption
		if att != nil {
			atts = append(atts, *att)
		}
		if unsup != "" {
			unsupported = append(unsupported, unsup)
		}
		if att == nil && unsup == "" {
			return nil, reasonMalformed
		}
	case mc.MsgType == "m.location":
		text, unsupported = "", []string{"location"}
	case mc.MsgType == "m.text", mc.MsgType == "m.emote":
	case mc.MsgType == "m.notice":
		// Notices are what bots send; answering them would start loops.
		return nil, reasonUnsupported
	default:
		return nil, reasonUnsupported
	}
	if mc.RelatesTo != nil && mc.RelatesTo.RelType == "m.replace" {
		return nil, reasonEdit
	}
	if !direct && c.requireMention && !c.mentioned(&mc, text) {
		return nil, reasonNotMention
	}
	msg := &message.Inbound{
		Platform:    c.platform,
		EventID:     ev.EventID,
		ChatID:      room,
		ChatType:    message.ChatGroup,
		SenderID:    ev.Sender,
		MessageID:   ev.EventID,
		Text:        text,
		Attachments: atts,
		Unsupported: unsupported,
		ReceivedAt:  now,
	}
	if direct {
		msg.ChatType = message.ChatDirect
	}
	if r := mc.RelatesTo; r != nil && r.RelType == "m.thread" && r.EventID != "" {
		msg.ThreadID = r.EventID
	}
	return msg, ""
}

// mentioned: m.mentions names the bot, or (for clients without
// intentional mentions) text (the body, or a file's caption: never its
// name) holds its user id or display name.
func (c *classifier) mentioned(mc *messageContent, text string) bool {
	if mc.Mentions != nil {
		for _, u := range mc.Mentions.UserIDs {
			if u == c.userID {
				return true
			}
		}
	}
	body := strings.ToLower(text)
	if strings.Contains(body, strings.ToLower(c.userID)) {
		return true
	}
	return c.displayName != "" && strings.Contains(body, strings.ToLower(c.displayName))
}

// inviter returns who invited the bot to a room, from the invite's
// stripped state, and whether the invite is for a direct chat.
func inviter(r *invitedRoom, self string) (sender string, direct bool) {
	for _, ev := range r.InviteState.Events {
		if ev.Type != "m.room.member" || ev.StateKey == nil || *ev.StateKey != self {
			continue
		}
		var mc messageContent
		if json.Unmarshal(ev.Content, &mc) == nil && mc.Membership == "invite" {
			return ev.Sender, mc.IsDirect
		}
	}
	return "", false
}
