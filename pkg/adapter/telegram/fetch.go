// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaFetcher = (*Adapter)(nil)

// tgFileInfo is the Bot API's File: file_path is valid for at least an hour.
type tgFileInfo struct {
	FileSize int64  `json:"file_size"`
	FilePath string `json:"file_path"`
}

// FetchMedia downloads att (Ref is a file_id) with getFile, then GET
// <api_url>/file/bot<token>/<file_path>. A file over the bots' 20 MB
// download limit is ErrTooLarge (getFile answers "file is too big"), an
// unknown or expired file_id ErrPermanent, a 5xx or network failure
// ErrTemporary. No error carries the token.
func (a *Adapter) FetchMedia(ctx context.Context, _ *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	if att.Size > maxDownloadBytes {
		return nil, 0, fmt.Errorf("telegram: getFile: %w: %w: declared size %d bytes, bots may download at most %d",
			adapter.ErrPermanent, adapter.ErrTooLarge, att.Size, maxDownloadBytes)
	}
	var f tgFileInfo
	if err := a.api.call(ctx, "getFile", map[string]string{"file_id": att.Ref}, &f); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == 400 && strings.Contains(strings.ToLower(ae.Description), "file is too big") {
			return nil, 0, fmt.Errorf("telegram: getFile: %w: %w: %v", adapter.ErrPermanent, adapter.ErrTooLarge, ae)
		}
		return nil, 0, classify("getFile", err, false)
	}
	if f.FilePath == "" {
		return nil, 0, fmt.Errorf("telegram: getFile: %w: no file_path in the answer", adapter.ErrPermanent)
	}
	if f.FileSize > maxDownloadBytes {
		return nil, 0, fmt.Errorf("telegram: getFile: %w: %w: %d bytes", adapter.ErrPermanent, adapter.ErrTooLarge, f.FileSize)
	}
	return a.api.download(ctx, f.FilePath, f.FileSize)
}

// download opens <base>/file/bot<token>/<path>. The token is in the URL: no
// error quotes it.
func (c *client) download(ctx context.Context, path string, declared int64) (io.ReadCloser, int64, error) {
	const op = "telegram: download"
	u := c.base + "/file/bot" + c.token.Reveal() + "/" + (&url.URL{Path: path}).EscapedPath()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w: cannot build the file URL", op, adapter.ErrPermanent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("%s: %w: %w", op, adapter.ErrTemporary, c.redact(err))
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: %w: HTTP %d", op, adapter.ErrTemporary, resp.StatusCode)
	default:
		// 404: the file_path expired (it lasts at least an hour) or never was.
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: %w: HTTP %d", op, adapter.ErrPermanent, resp.StatusCode)
	}
	size := resp.ContentLength
	if size < 0 && declared > 0 {
		size = declared
	}
	if size < 0 {
		size = -1
	}
	return &redactingBody{ReadCloser: resp.Body, c: c}, size, nil
}

// redactingBody keeps the token out of read errors.
type redactingBody struct {
	io.ReadCloser
	c *client
}

func (b *redactingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.c.redact(err)
	}
	return n, err
}
