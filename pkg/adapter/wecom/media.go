// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// mediaKinds maps the media MsgTypes of a callback to herald's kinds. A
// voice message is a voice note recorded in WeCom.
var mediaKinds = map[string]message.MediaKind{
	"image": message.MediaImage,
	"voice": message.MediaVoice,
	"video": message.MediaVideo,
	"file":  message.MediaFile,
}

// voiceTypes are the MIME types of the voice Formats.
var voiceTypes = map[string]string{"amr": "audio/amr", "speex": "audio/speex"}

// content fills the text, attachments and unsupported kinds of in from
// m: text is the Content, an image, voice, video or file message an
// attachment by its MediaId (a voice's Recognition, WeCom's transcript,
// is the text), and any other type (location, link …) an unsupported
// kind of that name.
func content(m *inMessage, in *message.Inbound) {
	kind, media := mediaKinds[m.MsgType]
	switch {
	case m.MsgType == "text":
		in.Text = m.Content
	case media && m.MediaID != "" && len(m.MediaID) <= message.MaxRefBytes:
		att := message.Attachment{Kind: kind, Ref: m.MediaID}
		if m.MsgType == "voice" {
			format := strings.ToLower(m.Format)
			if mt, ok := voiceTypes[format]; ok {
				att.Name, att.MIME = "voice."+format, mt
			}
			in.Text = strings.TrimSpace(m.Recognition)
		}
		in.Attachments = []message.Attachment{att}
	default:
		kind := strings.Join(strings.Fields(m.MsgType), "_")
		if len(kind) > 32 {
			kind = kind[:32]
		}
		if kind != "" {
			in.Unsupported = []string{kind}
		}
	}
}
