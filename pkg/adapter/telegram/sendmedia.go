// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Bot API upload limits for multipart uploads: 10 MB for a photo, 50 MB
// for any other file; captions are 0-1024 characters.
const (
	maxPhotoUpload = 10 << 20
	maxFileUpload  = 50 << 20
	// MaxCaptionUnits bounds a caption, in UTF-16 code units.
	MaxCaptionUnits = 1024
	// uploadRate is the slowest upload speed herald waits for, on top of
	// request_timeout: a 50 MB file gets request_timeout + 400 s.
	uploadRate = 128 << 10
)

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: every kind has a native call.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// uploadMethod picks the Bot API method and its file field for m: sendPhoto
// for an image within the photo limit, sendVoice for an OGG/Opus voice
// note, sendAudio for MP3 or M4A audio, sendVideo for MP4 video, and
// sendDocument for everything else (Telegram shows the others badly or
// refuses them).
func uploadMethod(m *message.OutboundMedia) (method, field string, limit int64) {
	mime := strings.ToLower(m.MIME)
	switch {
	case m.Kind == message.MediaImage && m.Size <= maxPhotoUpload && (mime == "image/jpeg" || mime == "image/png" || mime == "image/webp"):
		return "sendPhoto", "photo", maxPhotoUpload
	case m.Kind == message.MediaVoice && mime == "audio/ogg":
		return "sendVoice", "voice", maxFileUpload
	case (m.Kind == message.MediaAudio || m.Kind == message.MediaVoice) && (mime == "audio/mpeg" || mime == "audio/mp4" || mime == "audio/x-m4a"):
		return "sendAudio", "audio", maxFileUpload
	case m.Kind == message.MediaVideo && mime == "video/mp4":
		return "sendVideo", "video", maxFileUpload
	}
	return "sendDocument", "document", maxFileUpload
}

// sendMedia uploads msg.Media with its native call, a multipart request
// streaming the file from Media.Path. The caption is Media.Caption, after
// msg.Text when that is set (Recover's mark), sent as plain text like a
// text part and cut at 1024 UTF-16 code units. Errors are classified as for
// sendMessage (a written upload whose answer was lost is ErrAmbiguous, and
// Recover handles it by interrupted_send); a file over the upload limit is
// ErrTooLarge before any upload, and so is Telegram's 413 or "file is too
// big".
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound, t target) (adapter.SendResult, error) {
	m := *msg.Media
	f, err := os.Open(m.Path)
	if err != nil {
		kind := adapter.ErrTemporary
		if errors.Is(err, fs.ErrNotExist) {
			kind = adapter.ErrPermanent
		}
		return adapter.SendResult{}, fmt.Errorf("telegram: send media: %w: %w", kind, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("telegram: send media: %w: %w", adapter.ErrTemporary, err)
	}
	size := st.Size()
	m.Size = size // the file's, not the declared size
	method, field, limit := uploadMethod(&m)
	if size > limit {
		return adapter.SendResult{}, fmt.Errorf("telegram: %s: %w: %w: %d bytes, Telegram accepts at most %d",
			method, adapter.ErrPermanent, adapter.ErrTooLarge, size, limit)
	}
	fields := []adapter.FormField{{Name: "chat_id", Value: fmt.Sprint(t.chat)}}
	if t.thread != 0 {
		fields = append(fields, adapter.FormField{Name: "message_thread_id", Value: strconv.FormatInt(t.thread, 10)})
	}
	if t.replyTo != 0 {
		fields = append(fields, adapter.FormField{Name: "reply_parameters",
			Value: fmt.Sprintf(`{"message_id":%d,"allow_sending_without_reply":true}`, t.replyTo)})
	}
	if c := caption(msg.Text, m.Caption); c != "" {
		fields = append(fields, adapter.FormField{Name: "caption", Value: c})
	}
	name := m.Name
	if name == "" {
		name = "file"
	}
	body, ct, length, err := adapter.MultipartFile(fields, adapter.FormFile{Field: field, Name: name, ContentType: m.MIME}, f, size)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("telegram: %s: %w: %w", method, adapter.ErrPermanent, err)
	}
	cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout+time.Duration(size/uploadRate)*time.Second)
	defer cancel()
	var sent sentMessage
	if err := a.api.do(cctx, method, body, ct, length, &sent); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && (ae.Code == 413 || strings.Contains(strings.ToLower(ae.Description), "too big") || strings.Contains(strings.ToLower(ae.Description), "too large")) {
			return adapter.SendResult{}, fmt.Errorf("telegram: %s: %w: %w: %v", method, adapter.ErrPermanent, adapter.ErrTooLarge, ae)
		}
		return adapter.SendResult{}, classify(method, err, true)
	}
	return adapter.SendResult{MessageID: strconv.FormatInt(sent.MessageID, 10)}, nil
}

// caption joins a text (Recover's mark) and a media caption, bounded by
// MaxCaptionUnits.
func caption(text, mediaCaption string) string {
	c := strings.TrimSpace(strings.TrimSpace(text) + "\n" + strings.TrimSpace(mediaCaption))
	if utf16Len(c) <= MaxCaptionUnits {
		return c
	}
	return splitUnits(c, MaxCaptionUnits-1)[0] + "…"
}
