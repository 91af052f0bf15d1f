// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldgw/herald/pkg/message"
)

// maxResourceBytes is the message-resource API's download limit: 100 MB.
const maxResourceBytes = 100 << 20

// metaMessageID and metaType are the Attachment.Meta keys FetchMedia needs:
// the message holding the resource and the resource API's type parameter.
const (
	metaMessageID = "message_id"
	metaType      = "type"
)

// mediaContent is the content of image, file, audio and media messages
// (SDK service/im/v1 message content): keys, a name, a duration in ms.
type mediaContent struct {
	ImageKey string `json:"image_key"`
	FileKey  string `json:"file_key"`
	FileName string `json:"file_name"`
	Duration int    `json:"duration"`
}

// resource is one attachment of message messageID.
func resource(messageID string, kind message.MediaKind, key, typ, name string, durationMS int) message.Attachment {
	return message.Attachment{
		Kind: kind, Ref: key, Name: name, Duration: durationMS / 1000,
		Meta: map[string]string{metaMessageID: messageID, metaType: typ},
	}
}

// postImages returns the images embedded in a post (img elements).
func postImages(messageID, content string) []message.Attachment {
	var p postBody
	if json.Unmarshal([]byte(content), &p) != nil {
		return nil
	}
	var out []message.Attachment
	for _, para := range p.Content {
		for _, e := range para {
			if e.Tag == "img" && e.ImageKey != "" && len(out) < message.MaxAttachments {
				out = append(out, resource(messageID, message.MediaImage, e.ImageKey, "image", "", 0))
			}
		}
	}
	return out
}

// messageMedia decodes the attachments of a message of type msgType, and
// the kind of what herald cannot pass on ("sticker", "share_chat", ...).
// Text and post are handled by messageText; post images come from
// postImages.
func messageMedia(messageID, msgType, content string) ([]message.Attachment, string, error) {
	switch msgType {
	case "text":
		return nil, "", nil
	case "post":
		return postImages(messageID, content), "", nil
	case "image", "file", "audio", "media":
	default:
		return nil, msgType, nil
	}
	var c mediaContent
	if err := json.Unmarshal([]byte(content), &c); err != nil {
		return nil, "", fmt.Errorf("%s content: %w", msgType, err)
	}
	switch msgType {
	case "image":
		if c.ImageKey == "" {
			return nil, "", errors.New("image content without image_key")
		}
		return []message.Attachment{resource(messageID, message.MediaImage, c.ImageKey, "image", "", 0)}, "", nil
	}
	if c.FileKey == "" {
		return nil, "", fmt.Errorf("%s content without file_key", msgType)
	}
	kind := message.MediaFile
	switch msgType {
	case "audio":
		// Audio messages are voice notes recorded in the client (opus).
		kind = message.MediaVoice
	case "media":
		kind = message.MediaVideo
	}
	return []message.Attachment{resource(messageID, kind, c.FileKey, "file", c.FileName, c.Duration)}, "", nil
}
