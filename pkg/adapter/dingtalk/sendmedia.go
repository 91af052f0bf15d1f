// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Upload limits of media/upload: images (JPG, PNG, GIF, BMP) and files up
// to 20 MB each.
const (
	MaxImageUpload = 20 << 20
	MaxFileUpload  = 20 << 20
	// uploadRate is the slowest upload speed herald waits for, on top of
	// request_timeout.
	uploadRate = 128 << 10
	// pathUpload is the legacy oapi's media upload, relative to oapi_url.
	pathUpload = "/media/upload"
	// errCodeFileSize is the oapi's "invalid file size" errcode.
	errCodeFileSize = 40006
)

// fileTypes are the extensions the sampleFile template shows as a file.
var fileTypes = map[string]bool{
	"doc": true, "docx": true, "xls": true, "xlsx": true, "ppt": true, "pptx": true,
	"zip": true, "pdf": true, "rar": true,
}

// imageTypes are the image types sampleImageMsg shows.
var imageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/bmp": true}

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: the robot templates carry
// images (sampleImageMsg) and files (sampleFile); voice, audio and video
// reach the chat as a link.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool {
	return kind == message.MediaImage || kind == message.MediaFile
}

// sendMedia uploads msg.Media with media/upload (type image or file), sends
// it through the robot API (sampleImageMsg or sampleFile), then the
// caption as a text message: the templates have no caption. Each step is
// remembered under the part's idempotency key, so a retry after a failed
// step resumes after the last one that succeeded.
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	m := msg.Media
	key := msg.IdempotencyKey
	p, _ := a.progress.Get(key)
	if p.MediaID == "" {
		id, err := a.upload(ctx, m)
		if err != nil {
			return adapter.SendResult{}, err
		}
		p.MediaID = id
		a.progress.Set(key, p)
	}
	if p.Shown == nil {
		msgKey, param := "sampleImageMsg", any(struct {
			PhotoURL string `json:"photoURL"`
		}{p.MediaID})
		if kind, _, _ := uploadKind(m); kind == "file" {
			name, ext := fileName(m)
			msgKey, param = "sampleFile", struct {
				MediaID  string `json:"mediaId"`
				FileName string `json:"fileName"`
				FileType string `json:"fileType"`
			}{p.MediaID, name, ext}
		}
		res, err := a.sendRobot(ctx, msg, msgKey, param)
		if err != nil {
			return adapter.SendResult{}, err
		}
		p.Shown = &res
		a.progress.Set(key, p)
	}
	if caption := strings.TrimSpace(strings.TrimSpace(msg.Text) + "\n" + strings.TrimSpace(m.Caption)); caption != "" {
		if _, err := a.sendText(ctx, msg, caption); err != nil {
			return adapter.SendResult{}, fmt.Errorf("dingtalk: send caption (the file is shown): %w", err)
		}
	}
	a.progress.Forget(key)
	return *p.Shown, nil
}

// uploadKind is the media/upload type for m, "image" or "file", and its
// limit; an error for what neither template shows.
func uploadKind(m *message.OutboundMedia) (string, int64, error) {
	mime := strings.ToLower(m.MIME)
	if m.Kind == message.MediaImage && imageTypes[mime] {
		return "image", MaxImageUpload, nil
	}
	if _, ext := fileName(m); fileTypes[ext] {
		return "file", MaxFileUpload, nil
	}
	return "", 0, fmt.Errorf("dingtalk: media/upload: %w: robots show images (JPG, PNG, GIF, BMP) and files of type doc, docx, xls, xlsx, ppt, pptx, zip, pdf and rar only, not %q (%s)",
		adapter.ErrPermanent, m.Name, m.MIME)
}

// fileName is the name to show and its lower-case extension.
func fileName(m *message.OutboundMedia) (name, ext string) {
	name = m.Name
	if name == "" {
		name = "file"
	}
	return name, strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
}

// upload sends the bytes of m to media/upload and returns the media_id. A
// file over the limit is ErrTooLarge before uploading, and so are a 413
// answer and errcode 40006 (invalid file size). The upload shows nothing,
// so a lost answer is ErrTemporary.
func (a *Adapter) upload(ctx context.Context, m *message.OutboundMedia) (string, error) {
	const op = "media/upload"
	typ, limit, err := uploadKind(m)
	if err != nil {
		return "", err
	}
	f, err := os.Open(m.Path)
	if err != nil {
		kind := adapter.ErrTemporary
		if errors.Is(err, fs.ErrNotExist) {
			kind = adapter.ErrPermanent
		}
		return "", fmt.Errorf("dingtalk: %s: %w: %w", op, kind, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("dingtalk: %s: %w: %w", op, adapter.ErrTemporary, err)
	}
	size := st.Size()
	if size > limit {
		return "", fmt.Errorf("dingtalk: %s: %w: %w: %d bytes, DingTalk accepts at most %d for type %s",
			op, adapter.ErrPermanent, adapter.ErrTooLarge, size, limit, typ)
	}
	name, _ := fileName(m)
	var out struct {
		MediaID string `json:"media_id"`
	}
	timeout := a.conf.RequestTimeout + time.Duration(size/uploadRate)*time.Second
	err = a.withToken(ctx, timeout, func(ctx context.Context, tok string) error {
		body, ct, length, err := adapter.MultipartFile(nil, adapter.FormFile{Field: "media", Name: name, ContentType: m.MIME}, f, size)
		if err != nil {
			return err
		}
		u := a.conf.oapiURL() + pathUpload + "?" + url.Values{"access_token": {tok}, "type": {typ}}.Encode()
		return a.api.upload(ctx, u, body, ct, length, &out)
	})
	var ae *apiError
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusRequestEntityTooLarge || ae.ErrCode == errCodeFileSize):
		return "", fmt.Errorf("dingtalk: %s: %w: %w: %v", op, adapter.ErrPermanent, adapter.ErrTooLarge, ae)
	case err != nil:
		return "", classifyFetch(op, err)
	case out.MediaID == "":
		return "", fmt.Errorf("dingtalk: %s: %w: answer without media_id", op, adapter.ErrTemporary)
	}
	return out.MediaID, nil
}
