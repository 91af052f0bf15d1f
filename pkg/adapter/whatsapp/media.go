// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// waMedia is the media object of an inbound image, document, audio, video
// or sticker message: the media id (valid for 7 days), the declared MIME
// type (a sha256 is declared too, and not needed), a caption (image, video, document), a file name
// (document), and the voice flag (audio recorded in the chat).
type waMedia struct {
	ID       string `json:"id"`
	MIMEType string `json:"mime_type"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	Voice    bool   `json:"voice"`
}

// inMedia holds the media fields of an inbound message, by type.
type inMedia struct {
	Image    *waMedia `json:"image"`
	Document *waMedia `json:"document"`
	Audio    *waMedia `json:"audio"`
	Video    *waMedia `json:"video"`
	// Voice is the older name of a voice note's object.
	Voice *waMedia `json:"voice"`
}

// media maps an inbound message that is not text to its attachment and
// caption, or to the name of a kind herald cannot pass on (sticker,
// location, contacts, reaction, interactive, button, order, system,
// unsupported …). A media object without an id is unsupported too: there
// is nothing to download.
func (m *inMessage) media() (att *message.Attachment, caption, unsupported string) {
	var f *waMedia
	kind := message.MediaFile
	switch m.Type {
	case "image":
		f, kind = m.Image, message.MediaImage
	case "document":
		f = m.Document
	case "audio":
		f, kind = m.Audio, message.MediaAudio
		if f != nil && f.Voice {
			kind = message.MediaVoice
		}
	case "voice":
		f, kind = m.Voice, message.MediaVoice
	case "video":
		f, kind = m.Video, message.MediaVideo
	}
	if f == nil || f.ID == "" || len(f.ID) > maxIDLen {
		return nil, "", unsupportedName(m.Type)
	}
	if kind == message.MediaFile && strings.HasPrefix(strings.ToLower(f.MIMEType), "video/") {
		kind = message.MediaVideo
	}
	att = &message.Attachment{Kind: kind, Ref: f.ID, Name: clip(f.Filename), MIME: clip(f.MIMEType)}
	return att, f.Caption, ""
}

// unsupportedName turns a message type into a name for Inbound.Unsupported:
// lowercase letters, digits and _, at most 32 bytes.
func unsupportedName(typ string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(typ) {
		if b.Len() == 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// clip bounds a declared string to what a stored attachment may hold.
func clip(s string) string {
	if len(s) <= message.MaxRefBytes {
		return s
	}
	return truncate(s, message.MaxRefBytes-len("…"))
}
