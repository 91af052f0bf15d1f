// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// postTypeVoice is the type of a voice message post (the voice message
// plugin's): its one file is the recording.
const postTypeVoice = "custom_voice"

// customPostPrefix starts the types of posts made by plugins on behalf of
// a user, rendered by the plugin; herald cannot pass them on.
const customPostPrefix = "custom_"

// fileInfo is the part of a FileInfo herald reads, from a post's
// metadata.files and from an upload's answer.
type fileInfo struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Extension string `json:"extension"`
	Size      int64  `json:"size"`
	MimeType  string `json:"mime_type"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// postMetadata is the part of a post's metadata herald reads.
type postMetadata struct {
	Files []fileInfo `json:"files"`
}

// attachments maps the files of p to attachments, in file_ids order; a
// file without its FileInfo in metadata.files is passed on as a file of
// unknown type (the download's type is sniffed anyway). A plugin's post
// type other than a voice message is an unsupported kind.
func attachments(p *post) (atts []message.Attachment, unsupported []string) {
	infos := map[string]fileInfo{}
	var ids []string
	if p.Metadata != nil {
		for _, f := range p.Metadata.Files {
			if f.ID != "" {
				infos[f.ID] = f
			}
		}
	}
	ids = append(ids, p.FileIDs...)
	if len(ids) == 0 && p.Metadata != nil {
		for _, f := range p.Metadata.Files {
			ids = append(ids, f.ID)
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] || len(atts) == message.MaxAttachments {
			continue
		}
		seen[id] = true
		f := infos[id]
		atts = append(atts, message.Attachment{
			Kind: fileKind(f.MimeType, p.Type == postTypeVoice),
			Ref:  id, Name: f.Name, MIME: f.MimeType,
			Size: max(f.Size, 0), Width: max(f.Width, 0), Height: max(f.Height, 0),
		})
	}
	if strings.HasPrefix(p.Type, customPostPrefix) && p.Type != postTypeVoice {
		unsupported = append(unsupported, "plugin_post")
	}
	return atts, unsupported
}

// fileKind classifies a file by its declared MIME type; the one file of a
// voice message post is a voice note.
func fileKind(mimeType string, voice bool) message.MediaKind {
	if voice {
		return message.MediaVoice
	}
	return adapter.MediaKindOf(mimeType)
}
