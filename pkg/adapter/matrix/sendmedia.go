// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: every kind is uploaded.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// kindMsgTypes maps herald's kinds to msgtypes; a voice note is an m.audio
// with the voice marker.
var kindMsgTypes = map[message.MediaKind]string{
	message.MediaImage: "m.image",
	message.MediaFile:  "m.file",
	message.MediaAudio: "m.audio",
	message.MediaVoice: "m.audio",
	message.MediaVideo: "m.video",
}

// sendMedia uploads msg.Media (once per part: a retry of the part reuses
// the mxc:// URI of an upload whose message was not sent) and sends it as
// an m.room.message under the part's transaction id, as a text part is.
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound, txn string) (adapter.SendResult, error) {
	uri, ok := a.uploads.Get(msg.IdempotencyKey, msg.ChatID)
	if !ok {
		var err error
		if uri, err = a.upload(ctx, msg.Media); err != nil {
			return adapter.SendResult{}, err
		}
		a.uploads.Put(msg.IdempotencyKey, msg.ChatID, uri)
	}
	cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	id, err := a.api.send(cctx, msg.ChatID, txn, mediaContent(msg, uri))
	if err != nil {
		err = classify("send", err)
		if !adapter.Retryable(err) {
			a.uploads.Forget(msg.IdempotencyKey)
		}
		return adapter.SendResult{}, err
	}
	a.uploads.Forget(msg.IdempotencyKey)
	return adapter.SendResult{MessageID: id}, nil
}

// mediaContent is the content of a media message: msgtype by kind, url,
// filename, info (mimetype, size), body the caption (a Markdown image's
// alt text, after the part's text if any) or, without one, the file name
// (since spec v1.10 a body that differs from filename is a caption), and
// the same m.mentions and relations as a text part.
func mediaContent(msg *message.Outbound, uri string) map[string]any {
	m := msg.Media
	name := m.Name
	if name == "" {
		name = "file"
	}
	c := content(msg)
	typ, ok := kindMsgTypes[m.Kind]
	if !ok {
		typ = "m.file"
	}
	c["msgtype"] = typ
	body := strings.TrimSpace(strings.TrimSpace(msg.Text) + "\n" + strings.TrimSpace(m.Caption))
	if body == "" {
		body = name
	}
	c["body"] = neutralise(body)
	c["filename"] = name
	c["url"] = uri
	info := map[string]any{"size": m.Size}
	if m.MIME != "" {
		info["mimetype"] = m.MIME
	}
	c["info"] = info
	if m.Kind == message.MediaVoice {
		c[voiceKey] = map[string]any{}
	}
	return c
}

// upload sends the file with POST /_matrix/media/v3/upload?filename=, the
// body streamed from m.Path with its Content-Type, and returns the
// content_uri. A file over the homeserver's m.upload.size (GET
// /_matrix/client/v1/media/config, learnt once) is refused before
// uploading, and a 413 M_TOO_LARGE answer too: ErrTooLarge. A failure
// after the request was written is temporary, not ambiguous: no message
// exists yet, and media no message points to is shown to nobody.
func (a *Adapter) upload(ctx context.Context, m *message.OutboundMedia) (string, error) {
	f, size, err := adapter.OpenMedia(m)
	if err != nil {
		return "", fmt.Errorf("matrix: upload: %w", err)
	}
	defer f.Close()
	if limit := a.uploadLimit(ctx); limit > 0 && size > limit {
		return "", fmt.Errorf("matrix: upload: %w: %w: %d bytes, the homeserver's m.upload.size is %d",
			adapter.ErrPermanent, adapter.ErrTooLarge, size, limit)
	}
	name := m.Name
	if name == "" {
		name = "file"
	}
	ctx, cancel := context.WithTimeout(ctx, adapter.UploadTimeout(a.conf.RequestTimeout, size))
	defer cancel()
	uri, err := a.api.upload(ctx, name, m.MIME, io.NewSectionReader(f, 0, size), size)
	if err != nil {
		var te *transportError
		if errors.As(err, &te) {
			return "", fmt.Errorf("matrix: upload: %w: %w", adapter.ErrTemporary, err)
		}
		return "", classify("upload", err)
	}
	return uri, nil
}

// uploadLimit returns the homeserver's m.upload.size, asked once (the
// authenticated endpoint, else the older /_matrix/media/v3/config); 0 when
// it is not known: the upload's answer then says. A homeserver that has
// neither endpoint is not asked again.
func (a *Adapter) uploadLimit(ctx context.Context) int64 {
	if n := a.maxUpload.Load(); n != 0 {
		return max(n, 0)
	}
	var cfg struct {
		Size int64 `json:"m.upload.size"`
	}
	cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	err := a.api.do(cctx, http.MethodGet, "/_matrix/client/v1/media/config", nil, nil, &cfg)
	if unrecognized(err) {
		err = a.api.do(cctx, http.MethodGet, "/_matrix/media/v3/config", nil, nil, &cfg)
		if unrecognized(err) {
			a.maxUpload.Store(-1)
		}
	}
	if err != nil || cfg.Size <= 0 {
		a.log.WithError(err).Debug("matrix: the homeserver's upload limit is not known; uploading without checking it")
		return 0
	}
	a.maxUpload.Store(cfg.Size)
	return cfg.Size
}

// upload posts body (size bytes) to the media repository and returns its
// content_uri. Errors are *apiError or *transportError.
func (c *client) upload(ctx context.Context, name, contentType string, body io.Reader, size int64) (string, error) {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		c.base+"/_matrix/media/v3/upload?"+url.Values{"filename": {name}}.Encode(), body)
	if err != nil {
		return "", fmt.Errorf("building the request: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Content-Type", contentType)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", &transportError{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorAnswer))
	if err != nil {
		return "", &transportError{Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		return "", c.apiError("/_matrix/media/v3/upload", resp, data)
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if json.Unmarshal(data, &out) != nil || !strings.HasPrefix(out.ContentURI, "mxc://") {
		return "", &transportError{Err: fmt.Errorf("upload answered without an mxc:// content_uri")}
	}
	return out.ContentURI, nil
}
