// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Limits of media/upload: every file larger than 5 bytes; images (JPG,
// PNG) up to 10 MB, voice (AMR) 2 MB, video (MP4) 10 MB, any file 20 MB.
const (
	MinUpload      = 5
	MaxImageUpload = 10 << 20
	MaxVoiceUpload = 2 << 20
	MaxVideoUpload = 10 << 20
	MaxFileUpload  = 20 << 20
	// uploadRate is the slowest upload speed herald waits for, on top of
	// request_timeout.
	uploadRate = 128 << 10
)

// Errcodes of media/upload for a size it refuses: 40006 invalid file
// size, 40009 invalid image size, 40011 invalid video size.
var tooLargeCodes = map[int]bool{40006: true, 40009: true, 40011: true}

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: every kind can be sent, as
// its own message type or as a file.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// uploadType picks the media type (and message type) for m: image for a
// JPG or PNG up to 10 MB, voice for AMR up to 2 MB, video for MP4 up to
// 10 MB, else file, which shows any file up to 20 MB.
func uploadType(m *message.OutboundMedia, size int64) (string, int64) {
	mime := strings.ToLower(m.MIME)
	switch {
	case m.Kind == message.MediaImage && (mime == "image/jpeg" || mime == "image/png") && size <= MaxImageUpload:
		return "image", MaxImageUpload
	case (m.Kind == message.MediaVoice || m.Kind == message.MediaAudio) && mime == "audio/amr" && size <= MaxVoiceUpload:
		return "voice", MaxVoiceUpload
	case m.Kind == message.MediaVideo && mime == "video/mp4" && size <= MaxVideoUpload:
		return "video", MaxVideoUpload
	}
	return "file", MaxFileUpload
}

// sendMedia uploads msg.Media with media/upload, sends it with
// message/send (msgtype image, voice, video or file), then the caption as
// a text message (media messages carry none). Each step is remembered
// under the part's idempotency key, so a retry after a failed step
// resumes after the last one that succeeded; a media_id lives 3 days,
// far longer than the core retries a part.
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	key := msg.IdempotencyKey
	p, _ := a.progress.Get(key)
	if p.MediaID == "" {
		id, typ, err := a.upload(ctx, msg.Media)
		if err != nil {
			return adapter.SendResult{}, err
		}
		p.MediaID, p.Type = id, typ
		a.progress.Set(key, p)
	}
	if p.Shown == nil {
		typ := p.Type
		req := sendRequest{ToUser: msg.ChatID, MsgType: typ, AgentID: a.conf.AgentID}
		ref := &mediaRef{MediaID: p.MediaID}
		switch typ {
		case "image":
			req.Image = ref
		case "voice":
			req.Voice = ref
		case "video":
			ref.Title = msg.Media.Name
			req.Video = ref
		default:
			req.File = ref
		}
		res, err := a.sendMessage(ctx, &req)
		if err != nil {
			return adapter.SendResult{}, err
		}
		p.Shown = &res
		a.progress.Set(key, p)
	}
	if caption := captionText(msg.Text, msg.Media.Caption); caption != "" {
		req := sendRequest{ToUser: msg.ChatID, MsgType: "text", AgentID: a.conf.AgentID, Text: &textContent{Content: caption}}
		if _, err := a.sendMessage(ctx, &req); err != nil {
			return adapter.SendResult{}, fmt.Errorf("wecom: send caption (the file is shown): %w", err)
		}
	}
	a.progress.Forget(key)
	return *p.Shown, nil
}

// captionText joins a text (a recovery mark) and a media caption, cut to
// WeCom's text limit.
func captionText(text, caption string) string {
	c := strings.TrimSpace(strings.TrimSpace(text) + "\n" + strings.TrimSpace(caption))
	if len(c) <= MaxTextBytes {
		return c
	}
	cut := MaxTextBytes - len("…")
	for cut > 0 && !utf8.RuneStart(c[cut]) {
		cut--
	}
	return c[:cut] + "…"
}

// upload sends the bytes of m to media/upload and returns the media_id and
// its type. A file of 5 bytes or less is refused as WeCom refuses it; one
// over 20 MB is ErrTooLarge before uploading, and so are the errcodes
// 40006, 40009 and 40011 and an HTTP 413. The upload shows nothing, so a
// lost answer is ErrTemporary.
func (a *Adapter) upload(ctx context.Context, m *message.OutboundMedia) (string, string, error) {
	const what = "media/upload"
	f, err := os.Open(m.Path)
	if err != nil {
		kind := adapter.ErrTemporary
		if errors.Is(err, fs.ErrNotExist) {
			kind = adapter.ErrPermanent
		}
		return "", "", fmt.Errorf("wecom: %s: %w: %w", what, kind, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("wecom: %s: %w: %w", what, adapter.ErrTemporary, err)
	}
	size := st.Size()
	typ, limit := uploadType(m, size)
	switch {
	case size <= MinUpload:
		return "", "", fmt.Errorf("wecom: %s: %w: WeCom refuses files of %d bytes or less", what, adapter.ErrPermanent, MinUpload)
	case size > limit:
		return "", "", fmt.Errorf("wecom: %s: %w: %w: %d bytes, WeCom accepts at most %d", what, adapter.ErrPermanent, adapter.ErrTooLarge, size, limit)
	}
	name := m.Name
	if name == "" {
		name = "file"
	}
	var out struct {
		MediaID string `json:"media_id"`
	}
	timeout := a.conf.RequestTimeout + time.Duration(size/uploadRate)*time.Second
	err = a.api.withToken(ctx, timeout, func(ctx context.Context, tok string) error {
		body, ct, length, err := adapter.MultipartFile(nil, adapter.FormFile{Field: "media", Name: name, ContentType: m.MIME}, f, size)
		if err != nil {
			return err
		}
		path := "/cgi-bin/media/upload?" + url.Values{"type": {typ}}.Encode()
		return a.api.send(ctx, http.MethodPost, withToken(path, tok), body, ct, length, &out)
	})
	var ae *apiError
	switch {
	case errors.As(err, &ae) && (tooLargeCodes[ae.Code] || ae.Status == http.StatusRequestEntityTooLarge):
		return "", "", fmt.Errorf("wecom: %s: %w: %w: %v", what, adapter.ErrPermanent, adapter.ErrTooLarge, ae)
	case err != nil:
		err = classify(what, err, false)
		if errors.Is(err, adapter.ErrUnauthorized) {
			a.rejected(err)
		}
		return "", "", err
	case out.MediaID == "":
		return "", "", fmt.Errorf("wecom: %s: %w: answer without media_id", what, adapter.ErrTemporary)
	}
	return out.MediaID, typ, nil
}
