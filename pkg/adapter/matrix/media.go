// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// mediaInfo is the info object of m.image, m.file, m.audio and m.video.
type mediaInfo struct {
	MimeType string  `json:"mimetype"`
	Size     float64 `json:"size"`
	W        float64 `json:"w"`
	H        float64 `json:"h"`
	// Duration is in milliseconds (m.audio, m.video).
	Duration float64 `json:"duration"`
}

// msgKinds maps the media msgtypes to herald's kinds.
var msgKinds = map[string]message.MediaKind{
	"m.image": message.MediaImage,
	"m.file":  message.MediaFile,
	"m.audio": message.MediaAudio,
	"m.video": message.MediaVideo,
}

// voiceKey marks an m.audio as a voice message (MSC3245, sent by Element):
// an empty object, a rendering hint.
const voiceKey = "org.matrix.msc3245.voice"

// mediaOf maps the content of a media message (msgtype m.image, m.file,
// m.audio or m.video) to an attachment and its caption. Since spec v1.10,
// body is a caption when filename is set and differs from it; otherwise
// body is the file name. A file in an encrypted room carries `file` (an
// EncryptedFile) instead of `url`: herald cannot decrypt it, and reports
// the kind unsupported.
func mediaOf(mc *messageContent, kind message.MediaKind) (att *message.Attachment, caption string, unsupported string) {
	name := mc.Body
	if mc.Filename != "" {
		name = mc.Filename
		if mc.Body != mc.Filename {
			caption = mc.Body
		}
	}
	if !strings.HasPrefix(mc.URL, "mxc://") {
		if rawSet(mc.File) {
			return nil, caption, "encrypted_file"
		}
		return nil, caption, ""
	}
	if kind == message.MediaAudio && rawSet(mc.Voice) {
		kind = message.MediaVoice
	}
	att = &message.Attachment{Kind: kind, Ref: mc.URL, Name: name}
	if in := mc.Info; in != nil {
		att.MIME = in.MimeType
		att.Size = int64(bounded(in.Size, 1<<53))
		att.Width, att.Height = int(bounded(in.W, math.MaxInt32)), int(bounded(in.H, math.MaxInt32))
		att.Duration = int(bounded(math.Ceil(in.Duration/1000), math.MaxInt32))
	}
	return att, caption, ""
}

// bounded keeps a declared number within [0, limit]; what a client
// declares is not trusted.
func bounded(f, limit float64) float64 {
	if math.IsNaN(f) || f < 0 {
		return 0
	}
	return min(f, limit)
}

// rawSet reports whether a raw JSON value is present and not null.
func rawSet(r json.RawMessage) bool { return len(r) > 0 && string(r) != "null" }
