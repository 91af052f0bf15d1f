// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// mediaContent is the content of a picture, file, audio or video bot
// message, and of a picture in a richText one. downloadCode is what
// robot/messageFiles/download exchanges for a short-lived URL.
type mediaContent struct {
	Type         string          `json:"type"` // richText items: "picture", else text
	Text         string          `json:"text"` // richText items
	DownloadCode string          `json:"downloadCode"`
	FileName     string          `json:"fileName"`    // file
	Recognition  string          `json:"recognition"` // audio: DingTalk's transcript
	Duration     json.RawMessage `json:"duration"`    // audio, video: milliseconds
	VideoType    string          `json:"videoType"`   // video: "mp4"
}

// messageContent returns the text, attachments and unsupported kinds of a
// bot message. A msgtype herald does not know becomes an unsupported kind
// of that name, so the core answers it; a message with none of the three
// is rejected as empty.
func messageContent(m *botMessage) (text string, atts []message.Attachment, unsupported []string, err error) {
	var c mediaContent
	switch m.Msgtype {
	case "text":
		text = m.Text.Content
	case "richText":
		var rc struct {
			RichText []mediaContent `json:"richText"`
		}
		if err := json.Unmarshal(m.Content, &rc); err != nil {
			return "", nil, nil, reject(reasonMalformed, "bot message %s: richText content: %v", m.MsgID, err)
		}
		var parts []string
		for _, p := range rc.RichText {
			switch {
			case p.Type == "picture" && p.DownloadCode != "" && len(atts) < message.MaxAttachments:
				atts = append(atts, attachment(message.MediaImage, &p))
			case p.Type == "picture":
				unsupported = addKind(unsupported, "picture")
			case p.Text != "":
				parts = append(parts, p.Text)
			}
		}
		text = strings.Join(parts, "\n")
	case "picture", "file", "audio", "video":
		if err := json.Unmarshal(m.Content, &c); err != nil {
			return "", nil, nil, reject(reasonMalformed, "bot message %s: %s content: %v", m.MsgID, m.Msgtype, err)
		}
		if c.DownloadCode == "" || len(c.DownloadCode) > message.MaxRefBytes {
			unsupported = addKind(unsupported, m.Msgtype)
			break
		}
		att := attachment(mediaKinds[m.Msgtype], &c)
		atts = append(atts, att)
		if m.Msgtype == "audio" {
			// DingTalk's own transcript is the message's text; the
			// audio stays attached next to it.
			text = c.Recognition
		}
	case "":
		return "", nil, nil, reject(reasonMalformed, "bot message %s: no msgtype", m.MsgID)
	default:
		unsupported = addKind(unsupported, m.Msgtype)
	}
	// A group message starts with a space where the robot's @mention was.
	text = strings.TrimSpace(text)
	if text == "" && len(atts) == 0 && len(unsupported) == 0 {
		return "", nil, nil, reject(reasonEmpty, "bot message %s: no text", m.MsgID)
	}
	return text, atts, unsupported, nil
}

// mediaKinds maps the media msgtypes to herald's kinds. An audio message
// is a voice note recorded in the chat.
var mediaKinds = map[string]message.MediaKind{
	"picture": message.MediaImage,
	"file":    message.MediaFile,
	"audio":   message.MediaVoice,
	"video":   message.MediaVideo,
}

// attachment is the attachment of one downloadCode. DingTalk declares no
// size or MIME type; the core sniffs the bytes.
func attachment(kind message.MediaKind, c *mediaContent) message.Attachment {
	att := message.Attachment{Kind: kind, Ref: c.DownloadCode}
	if len(c.FileName) <= message.MaxRefBytes {
		att.Name = c.FileName
	}
	if ms := flexInt(c.Duration); ms > 0 && ms < 1<<40 {
		att.Duration = int((ms + 999) / 1000)
	}
	if kind == message.MediaVideo && c.VideoType != "" && len(c.VideoType) <= 16 && !strings.ContainsAny(c.VideoType, "/\\") {
		att.Name = "video." + c.VideoType
		att.MIME = "video/" + c.VideoType
	}
	return att
}

// flexInt reads a JSON number or a string holding one (DingTalk sends
// durations both ways); 0 if neither.
func flexInt(raw json.RawMessage) int64 {
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if v, err := n.Int64(); err == nil {
			return v
		}
		if f, err := n.Float64(); err == nil {
			return int64(f)
		}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		v, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return v
	}
	return 0
}

// addKind appends kind once, in the form the core accepts (at most 32
// bytes, no spaces).
func addKind(kinds []string, kind string) []string {
	kind = strings.Join(strings.Fields(kind), "_")
	if len(kind) > 32 {
		kind = kind[:32]
	}
	for _, k := range kinds {
		if k == kind {
			return kinds
		}
	}
	return append(kinds, kind)
}
