// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Cloud API media limits by message type, and the caption limit.
const (
	maxImageUpload    = 5 << 20   // image/jpeg, image/png
	maxAudioUpload    = 16 << 20  // aac, amr, mpeg, mp4, ogg (opus)
	maxVideoUpload    = 16 << 20  // video/mp4, video/3gpp
	maxDocumentUpload = 100 << 20 // any other type
	// MaxCaptionLen bounds a media caption, in characters.
	MaxCaptionLen = 1024
)

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: every kind is sent as an
// image, audio, video or document message.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// mediaBody is the media object of an outbound message: the uploaded
// media id, a caption (image, video, document) and a file name (document).
type mediaBody struct {
	ID       string `json:"id"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// messageType picks the message type for m (size bytes): image for a JPEG
// or PNG within 5 MB, audio for a supported audio type within 16 MB
// (without a caption, which audio messages cannot carry), video for MP4 or
// 3GPP within 16 MB, and document for everything else, up to 100 MB.
func messageType(m *message.OutboundMedia, size int64, caption string) (typ string, limit int64) {
	mime := strings.ToLower(m.MIME)
	switch {
	case (mime == "image/jpeg" || mime == "image/png") && size <= maxImageUpload:
		return "image", maxImageUpload
	case caption == "" && size <= maxAudioUpload && (mime == "audio/aac" || mime == "audio/amr" ||
		mime == "audio/mpeg" || mime == "audio/mp4" || mime == "audio/ogg"):
		return "audio", maxAudioUpload
	case (mime == "video/mp4" || mime == "video/3gpp") && size <= maxVideoUpload:
		return "video", maxVideoUpload
	}
	return "document", maxDocumentUpload
}

// sendMedia uploads msg.Media (POST /{phone-number-id}/media, multipart:
// messaging_product, type, file streamed from Media.Path), then sends a
// message of the chosen type with the media id, the caption
// (Media.Caption after msg.Text, cut at 1024 characters) and, for a
// document, the file name. The media id is remembered for the part (its
// idempotency key) until the message is sent, so that a retry after a
// failed message call does not upload again. The window rules are those of text, except
// that there is no template for a file: a push outside the window is
// refused. A file over its type's limit, a 413 answer and Graph's "too
// large" are ErrTooLarge; the message call is classified as for text (a
// lost answer is ErrAmbiguous).
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	const what = "send media"
	m := msg.Media
	if _, err := a.route(msg, true); err != nil {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w", what, err)
	}
	f, size, err := adapter.OpenMedia(m)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w", what, err)
	}
	defer f.Close()
	caption := captionText(msg.Text, m.Caption)
	typ, limit := messageType(m, size, caption)
	if size > limit {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w: %w: %d bytes, WhatsApp accepts at most %d for a %s",
			what, adapter.ErrPermanent, adapter.ErrTooLarge, size, limit, typ)
	}
	name := m.Name
	if name == "" {
		name = "file"
	}
	mime := m.MIME
	if mime == "" || typ == "document" && mediaMIME(mime) {
		// An image, audio or video type is held to its type's limit
		// when uploaded; as a document it is any file.
		mime = "application/octet-stream"
	}
	timeout := adapter.UploadTimeout(a.conf.RequestTimeout, size)
	id, ok := a.uploads.Get(msg.IdempotencyKey, msg.ChatID)
	if !ok {
		if id, err = a.upload(ctx, f, size, name, mime, timeout); err != nil {
			return adapter.SendResult{}, err
		}
		a.uploads.Put(msg.IdempotencyKey, msg.ChatID, id)
	}
	req := a.newRequest(msg)
	req.Type = typ
	body := &mediaBody{ID: id}
	if typ != "audio" {
		body.Caption = neutralise(caption, MaxCaptionLen)
	}
	switch typ {
	case "image":
		req.Image = body
	case "audio":
		req.Audio = body
	case "video":
		req.Video = body
	default:
		body.Filename = name
		req.Document = body
	}
	res, err := a.post(ctx, what, req, a.conf.RequestTimeout)
	if err == nil || errors.Is(err, adapter.ErrPermanent) || errors.Is(err, adapter.ErrAmbiguous) {
		// Shown, refused for good, or perhaps shown: never sent again
		// with this upload.
		a.uploads.Forget(msg.IdempotencyKey)
	}
	return res, err
}

// mediaMIME reports whether mime is an image, audio or video type.
func mediaMIME(mime string) bool {
	major, _, _ := strings.Cut(strings.ToLower(mime), "/")
	return major == "image" || major == "audio" || major == "video"
}

// upload sends the file with POST /{phone-number-id}/media and returns its
// media id. Uploading is invisible to the user, so a lost answer is only
// temporary.
func (a *Adapter) upload(ctx context.Context, f *os.File, size int64, name, mime string, timeout time.Duration) (string, error) {
	const what = "upload media"
	body, ct, length, err := adapter.MultipartFile(
		[]adapter.FormField{{Name: "messaging_product", Value: "whatsapp"}, {Name: "type", Value: mime}},
		adapter.FormFile{Field: "file", Name: name, ContentType: mime}, f, size)
	if err != nil {
		return "", fmt.Errorf("whatsapp: %s: %w: %w", what, adapter.ErrPermanent, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out struct {
		ID string `json:"id"`
	}
	if err := a.api.doRaw(cctx, http.MethodPost, "/"+a.conf.PhoneNumberID+"/media", body, ct, length, &out); err != nil {
		var ge *graphError
		if errors.As(err, &ge) && (ge.Status == http.StatusRequestEntityTooLarge ||
			strings.Contains(strings.ToLower(ge.Message+" "+ge.Data.Details), "too large")) {
			return "", fmt.Errorf("whatsapp: %s: %w: %w: %v", what, adapter.ErrPermanent, adapter.ErrTooLarge, ge)
		}
		err = classify(what, err, false, a.logClamp)
		if errors.Is(err, adapter.ErrUnauthorized) {
			a.rejected(err)
		}
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("whatsapp: %s: %w: no media id in the answer", what, adapter.ErrTemporary)
	}
	return out.ID, nil
}

// captionText joins a text (a resend's mark) and a media caption, bounded
// by MaxCaptionLen characters.
func captionText(text, caption string) string {
	c := strings.TrimSpace(strings.TrimSpace(text) + "\n" + strings.TrimSpace(caption))
	if utf8.RuneCountInString(c) <= MaxCaptionLen {
		return c
	}
	return string([]rune(c)[:MaxCaptionLen-1]) + "…"
}
