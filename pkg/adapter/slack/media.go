// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// slackFile is the part of a file object (in a message event's files)
// herald reads.
type slackFile struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Title              string `json:"title"`
	Mimetype           string `json:"mimetype"`
	Filetype           string `json:"filetype"`
	Size               int64  `json:"size"`
	Mode               string `json:"mode"`
	IsExternal         bool   `json:"is_external"`
	FileAccess         string `json:"file_access"`
	Subtype            string `json:"subtype"`
	URLPrivate         string `json:"url_private"`
	URLPrivateDownload string `json:"url_private_download"`
	OriginalW          int    `json:"original_w"`
	OriginalH          int    `json:"original_h"`
	DurationMS         int64  `json:"duration_ms"`
}

// metaFileID is the Attachment.Meta key of the Slack file id.
const metaFileID = "file_id"

// fileAttachments maps the files of a message event to attachments, and
// names those herald cannot download: files hidden by the workspace's plan
// ("hidden_by_limit"), deleted ones ("tombstone"), external files (Google
// Docs and the like) and Slack Connect files whose metadata needs
// files.info first.
func fileAttachments(files []slackFile) (atts []message.Attachment, unsupported []string) {
	for _, f := range files {
		ref := f.URLPrivateDownload
		if ref == "" {
			ref = f.URLPrivate
		}
		var skip string
		switch {
		case f.FileAccess == "check_file_info":
			skip = "slack_connect_file"
		case f.Mode == "hidden_by_limit":
			skip = "hidden_file"
		case f.Mode == "tombstone":
			skip = "deleted_file"
		case f.IsExternal || f.Mode == "external":
			skip = "external_file"
		case ref == "":
			skip = "file_without_url"
		}
		if skip != "" {
			if len(unsupported) < message.MaxAttachments {
				unsupported = append(unsupported, skip)
			}
			continue
		}
		if len(atts) == message.MaxAttachments {
			continue
		}
		name := f.Name
		if name == "" {
			name = f.Title
		}
		atts = append(atts, message.Attachment{
			Kind: fileKind(f), Ref: ref, Name: name, MIME: f.Mimetype, Size: max(f.Size, 0),
			Width: max(f.OriginalW, 0), Height: max(f.OriginalH, 0), Duration: int(max(f.DurationMS, 0) / 1000),
			Meta: map[string]string{metaFileID: f.ID},
		})
	}
	return atts, unsupported
}

// fileKind classifies a Slack file: a voice clip recorded in Slack is
// subtype slack_audio (its mimetype may say audio/mp4, audio/webm or even
// video/mp4), a video clip slack_video; otherwise the mimetype decides.
func fileKind(f slackFile) message.MediaKind {
	switch {
	case f.Subtype == "slack_audio":
		return message.MediaVoice
	case f.Subtype == "slack_video":
		return message.MediaVideo
	case strings.HasPrefix(f.Mimetype, "image/"):
		return message.MediaImage
	case strings.HasPrefix(f.Mimetype, "audio/"):
		return message.MediaAudio
	case strings.HasPrefix(f.Mimetype, "video/"):
		return message.MediaVideo
	}
	return message.MediaFile
}
