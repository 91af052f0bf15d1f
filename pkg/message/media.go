// SPDX-License-Identifier: Apache-2.0

package message

import (
	"fmt"
	"strings"
)

// MediaKind says what an attachment is, as far as the agent cares.
type MediaKind string

const (
	// MediaImage is a photo or picture the agent can look at.
	MediaImage MediaKind = "image"
	// MediaFile is a document or any other file, video included.
	MediaFile MediaKind = "file"
	// MediaVoice is a voice note recorded in the chat.
	MediaVoice MediaKind = "voice"
	// MediaAudio is an audio file.
	MediaAudio MediaKind = "audio"
	// MediaVideo is a video; the agent gets it as a file.
	MediaVideo MediaKind = "video"
)

// Valid reports whether k is one of the kinds above.
func (k MediaKind) Valid() bool {
	switch k {
	case MediaImage, MediaFile, MediaVoice, MediaAudio, MediaVideo:
		return true
	}
	return false
}

// MaxAttachments bounds the attachments of one inbound message.
const MaxAttachments = 20

// MaxRefBytes bounds an attachment's reference and each of its strings.
const MaxRefBytes = 4 << 10

// Attachment is one media item of an inbound message. It holds the
// platform's reference, not the bytes: it is stored with the message, so it
// is durable before the platform gets its acknowledgement, and the core
// fetches the bytes afterwards (through adapter.MediaFetcher, or the guarded
// HTTP client for a plain URL).
type Attachment struct {
	Kind MediaKind `json:"kind"`
	// Ref is what the adapter needs to fetch the bytes: a Telegram file_id,
	// a Feishu image_key or file_key, a Slack url_private, a Discord CDN
	// URL, a webhook sender's URL. Required.
	Ref string `json:"ref"`
	// Name is the file name as the platform gives it; may be empty.
	Name string `json:"name,omitempty"`
	// MIME is the media type the platform declared; the core sniffs the
	// bytes and does not trust it.
	MIME string `json:"mime,omitempty"`
	// Size is the size the platform declared, 0 if unknown. A declared size
	// over media.max_bytes is refused without a download.
	Size int64 `json:"size,omitempty"`
	// Width, Height and Duration (seconds) as the platform declared them.
	Width    int `json:"width,omitempty"`
	Height   int `json:"height,omitempty"`
	Duration int `json:"duration,omitempty"`
	// Meta is adapter-private data needed to fetch (a Feishu message_id).
	// Never secrets: it is stored.
	Meta map[string]string `json:"meta,omitempty"`
}

// validate checks one attachment of an inbound message.
func (a *Attachment) validate() error {
	if !a.Kind.Valid() {
		return fmt.Errorf("%w: attachment kind %q", ErrInvalid, a.Kind)
	}
	if a.Ref == "" {
		return fmt.Errorf("%w: attachment without ref", ErrInvalid)
	}
	for _, s := range []string{a.Ref, a.Name, a.MIME} {
		if len(s) > MaxRefBytes {
			return fmt.Errorf("%w: attachment field of %d bytes, limit %d", ErrInvalid, len(s), MaxRefBytes)
		}
	}
	if a.Size < 0 || a.Width < 0 || a.Height < 0 || a.Duration < 0 {
		return fmt.Errorf("%w: negative attachment size", ErrInvalid)
	}
	return nil
}

// validateMedia checks the media fields of an inbound message.
func (m *Inbound) validateMedia() error {
	if len(m.Attachments) > MaxAttachments {
		return fmt.Errorf("%w: %d attachments, limit %d", ErrInvalid, len(m.Attachments), MaxAttachments)
	}
	for i := range m.Attachments {
		if err := m.Attachments[i].validate(); err != nil {
			return err
		}
	}
	if len(m.Unsupported) > MaxAttachments {
		return fmt.Errorf("%w: %d unsupported items, limit %d", ErrInvalid, len(m.Unsupported), MaxAttachments)
	}
	for _, u := range m.Unsupported {
		if u == "" || len(u) > 32 || strings.ContainsAny(u, " \n\t") {
			return fmt.Errorf("%w: unsupported kind %q", ErrInvalid, u)
		}
	}
	return nil
}

// OutboundMedia is a file in a reply part. The core fetched it (from an
// http(s) URL or a path under media.outbound_dirs) into its media store
// before the part reaches an adapter.
type OutboundMedia struct {
	// Kind is MediaImage, MediaFile, MediaVoice, MediaAudio or MediaVideo,
	// from the sniffed type.
	Kind MediaKind `json:"kind"`
	// Source is where the reply pointed: a URL or a local path. Shown to the
	// user when the upload fails.
	Source string `json:"source"`
	// Name is the file name to upload under.
	Name string `json:"name"`
	// MIME is the sniffed media type.
	MIME string `json:"mime"`
	// Size in bytes.
	Size int64 `json:"size"`
	// SHA256 (hex) names the bytes in the media store.
	SHA256 string `json:"sha256"`
	// Caption is the alt text of a Markdown image, or empty.
	Caption string `json:"caption,omitempty"`
	// Path is the file holding the bytes, set by the core before each send
	// (not stored: the media store's location is the instance's).
	Path string `json:"-"`
	// URL is an expiring, signed herald URL serving the bytes, set by the
	// core before each send when herald has a URL to offer (the webhook
	// platform puts it in its payload; others may ignore it).
	URL string `json:"-"`
}
