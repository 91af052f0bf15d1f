// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaFetcher = (*Adapter)(nil)

// maxErrorBody bounds the error answer of a download read into memory.
const maxErrorBody = 64 << 10

// FetchMedia downloads a file of a post (Ref is its file id) with GET
// /api/v4/files/{file_id} and the bot's token; the server streams the
// bytes to any member of the file's channel. The link does not expire: a
// 404 means the file is gone (its post deleted, or removed by data
// retention), a 403 that the bot left the channel, a 501 that the server
// has no file storage; these are ErrPermanent. 5xx and network failures
// are ErrTemporary, a 429 a rate limit carrying its wait, a 401
// ErrUnauthorized. ctx bounds the request and the body.
func (a *Adapter) FetchMedia(ctx context.Context, _ *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	return a.api.download(ctx, att.Ref)
}

// download opens GET /api/v4/files/{id}.
func (c *client) download(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	path := "/api/v4/files/" + url.PathEscape(id)
	if id == "" || len(id) > 64 {
		return nil, 0, fmt.Errorf("mattermost: GET %s: %w: not a file id", path, adapter.ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("mattermost: GET %s: %w: %w", path, adapter.ErrPermanent, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("mattermost: GET %s: %w: %w", path, adapter.ErrTemporary, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, resp.ContentLength, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	err = c.statusError(http.MethodGet, path, resp, b)
	if resp.StatusCode/100 == 2 {
		err = fmt.Errorf("%w: GET %s: HTTP %d instead of the file", adapter.ErrTemporary, path, resp.StatusCode)
	}
	return nil, 0, fmt.Errorf("mattermost: %w", err)
}
