// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"math"
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// msgFlagVoiceMessage is the message flag IS_VOICE_MESSAGE (1 << 13): the
// message's one attachment is a voice note (audio/ogg, with duration_secs
// and a waveform).
const msgFlagVoiceMessage = 1 << 13

// attachmentData is the part of an attachment object herald reads.
type attachmentData struct {
	ID          string  `json:"id"`
	Filename    string  `json:"filename"`
	ContentType string  `json:"content_type"`
	Size        int64   `json:"size"`
	URL         string  `json:"url"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	Duration    float64 `json:"duration_secs"`
}

// metaAttachmentID names, in Attachment.Meta, the attachment's snowflake:
// with the message's channel and id it finds the attachment again when its
// signed CDN URL has expired.
const metaAttachmentID = "attachment_id"

// attachments maps the files, stickers and polls of m to attachments and
// the names of unsupported kinds.
func attachments(m *messageData) (atts []message.Attachment, unsupported []string) {
	for _, a := range m.Attachments {
		if a.URL == "" || len(atts) == message.MaxAttachments {
			continue
		}
		att := message.Attachment{
			Kind: attachmentKind(a.ContentType, m.Flags&msgFlagVoiceMessage != 0),
			Ref:  a.URL, Name: a.Filename, MIME: a.ContentType,
			Size: max(a.Size, 0), Width: max(a.Width, 0), Height: max(a.Height, 0),
		}
		if a.Duration > 0 && a.Duration < math.MaxInt32 {
			att.Duration = int(math.Ceil(a.Duration))
		}
		if a.ID != "" {
			att.Meta = map[string]string{metaAttachmentID: a.ID}
		}
		atts = append(atts, att)
	}
	if len(m.StickerItems) > 0 {
		unsupported = append(unsupported, "sticker")
	}
	if len(m.Poll) > 0 && string(m.Poll) != "null" {
		unsupported = append(unsupported, "poll")
	}
	return atts, unsupported
}

// attachmentKind classifies an attachment by its declared content type; the
// core sniffs the bytes later and does not trust it.
func attachmentKind(contentType string, voice bool) message.MediaKind {
	major, _, _ := strings.Cut(strings.ToLower(contentType), "/")
	switch {
	case voice:
		return message.MediaVoice
	case major == "image":
		return message.MediaImage
	case major == "audio":
		return message.MediaAudio
	case major == "video":
		return message.MediaVideo
	}
	return message.MediaFile
}
