// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// MediaKindOf classifies a file by its declared MIME type: image/*,
// audio/* and video/* by their major type, anything else a file. The core
// sniffs the bytes later and does not trust it.
func MediaKindOf(mimeType string) message.MediaKind {
	major, _, _ := strings.Cut(strings.ToLower(mimeType), "/")
	switch major {
	case "image":
		return message.MediaImage
	case "audio":
		return message.MediaAudio
	case "video":
		return message.MediaVideo
	}
	return message.MediaFile
}
