// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"encoding/json"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// attachmentData is an attachment of a dataMessage as signal-cli writes it:
// contentType, filename, id (the file's name in the daemon's attachment
// store), size, width, height, caption and uploadTimestamp, each possibly
// null.
type attachmentData struct {
	ContentType string `json:"contentType"`
	Filename    string `json:"filename"`
	ID          string `json:"id"`
	Size        int64  `json:"size"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Caption     string `json:"caption"`
}

// media maps the attachments of dm to herald's (the kind by the declared
// content type: signal-cli does not say whether audio was recorded as a
// voice note, so audio is audio), and the kinds herald cannot
// pass on (reaction, sticker, contact, payment, poll) to their names. An
// attachment without an id (the daemon did not store it) cannot be fetched:
// it is named as "attachment" in unsupported, so the sender hears of it.
func (dm *dataMessage) media() (atts []message.Attachment, unsupported []string, caption string) {
	for _, raw := range dm.Attachments {
		var a attachmentData
		if json.Unmarshal(raw, &a) != nil || a.ID == "" || len(a.ID) > message.MaxRefBytes {
			unsupported = append(unsupported, "attachment")
			continue
		}
		if len(atts) == message.MaxAttachments {
			continue
		}
		atts = append(atts, message.Attachment{
			Kind: adapter.MediaKindOf(a.ContentType), Ref: a.ID,
			Name: clip(a.Filename), MIME: clip(a.ContentType),
			Size: max(a.Size, 0), Width: max(a.Width, 0), Height: max(a.Height, 0),
		})
		if caption == "" {
			caption = strings.TrimSpace(a.Caption)
		}
	}
	for _, k := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"reaction", dm.Reaction}, {"sticker", dm.Sticker}, {"contact", dm.Contacts},
		{"payment", dm.Payment}, {"poll", dm.PollCreate},
	} {
		if len(k.raw) > 0 && string(k.raw) != "null" {
			unsupported = append(unsupported, k.name)
		}
	}
	if len(unsupported) > message.MaxAttachments {
		unsupported = unsupported[:message.MaxAttachments]
	}
	return atts, unsupported, caption
}

// clip bounds a declared string to what a stored attachment may hold.
func clip(s string) string {
	if len(s) <= message.MaxRefBytes {
		return s
	}
	s = s[:message.MaxRefBytes]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}
