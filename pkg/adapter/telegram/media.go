// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"encoding/json"

	"github.com/heraldgw/herald/pkg/message"
)

// maxDownloadBytes is the Bot API's limit for files a bot can download
// with getFile (20 MB); larger files get "file is too big".
const maxDownloadBytes = 20 << 20

// The media fields of a Message that herald reads. Every file object has a
// file_id (the Attachment's Ref) and an optional file_size.
type photoSize struct {
	FileID   string `json:"file_id"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	FileSize int64  `json:"file_size"`
}

type tgFile struct {
	FileID   string `json:"file_id"`
	FileName string `json:"file_name"`
	MIMEType string `json:"mime_type"`
	FileSize int64  `json:"file_size"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Duration int    `json:"duration"`
	// Length is a video note's diameter.
	Length int `json:"length"`
}

type tgMedia struct {
	Photo           []photoSize `json:"photo"`
	Document        *tgFile     `json:"document"`
	Voice           *tgFile     `json:"voice"`
	Audio           *tgFile     `json:"audio"`
	Video           *tgFile     `json:"video"`
	VideoNote       *tgFile     `json:"video_note"`
	Animation       *tgFile     `json:"animation"`
	Caption         string      `json:"caption"`
	CaptionEntities []entity    `json:"caption_entities"`

	// Kinds herald cannot pass to the agent; only their presence matters.
	Sticker   json.RawMessage `json:"sticker"`
	Location  json.RawMessage `json:"location"`
	Venue     json.RawMessage `json:"venue"`
	Contact   json.RawMessage `json:"contact"`
	Poll      json.RawMessage `json:"poll"`
	Dice      json.RawMessage `json:"dice"`
	Game      json.RawMessage `json:"game"`
	Story     json.RawMessage `json:"story"`
	PaidMedia json.RawMessage `json:"paid_media"`
	Invoice   json.RawMessage `json:"invoice"`
}

// attachments maps the media fields of m to attachments and the names of
// unsupported kinds.
func (m *tgMedia) attachments() (atts []message.Attachment, unsupported []string) {
	if p := largestPhoto(m.Photo); p != nil {
		atts = append(atts, message.Attachment{Kind: message.MediaImage, Ref: p.FileID,
			Size: p.FileSize, Width: p.Width, Height: p.Height})
	}
	file := func(kind message.MediaKind, f *tgFile) {
		if f == nil || f.FileID == "" {
			return
		}
		a := message.Attachment{Kind: kind, Ref: f.FileID, Name: f.FileName, MIME: f.MIMEType,
			Size: f.FileSize, Width: f.Width, Height: f.Height, Duration: f.Duration}
		if f.Length > 0 {
			a.Width, a.Height = f.Length, f.Length
		}
		atts = append(atts, a)
	}
	// An animation message also carries the same file as document, for
	// clients that predate animations: take it once.
	if m.Animation != nil {
		file(message.MediaVideo, m.Animation)
	} else {
		file(message.MediaFile, m.Document)
	}
	file(message.MediaVoice, m.Voice)
	file(message.MediaAudio, m.Audio)
	file(message.MediaVideo, m.Video)
	file(message.MediaVideo, m.VideoNote)
	for _, k := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"sticker", m.Sticker}, {"location", m.Location}, {"venue", m.Venue}, {"contact", m.Contact},
		{"poll", m.Poll}, {"dice", m.Dice}, {"game", m.Game}, {"story", m.Story},
		{"paid_media", m.PaidMedia}, {"invoice", m.Invoice},
	} {
		if len(k.raw) > 0 && string(k.raw) != "null" {
			unsupported = append(unsupported, k.name)
		}
	}
	return atts, unsupported
}

// largestPhoto picks the largest size of a photo that a bot may download:
// one whose declared size is over the download limit is passed over. When
// every size is over it, the smallest is kept, so that the download fails
// as too large and the user is told, rather than the photo vanishing.
func largestPhoto(sizes []photoSize) *photoSize {
	var best, smallest *photoSize
	for i := range sizes {
		p := &sizes[i]
		if p.FileID == "" {
			continue
		}
		if smallest == nil || p.FileSize < smallest.FileSize {
			smallest = p
		}
		if p.FileSize > maxDownloadBytes {
			continue
		}
		if best == nil || p.Width*p.Height >= best.Width*best.Height {
			best = p
		}
	}
	if best == nil {
		return smallest
	}
	return best
}
