// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// FetchMedia implements adapter.MediaFetcher: GET
// /open-apis/im/v1/messages/{message_id}/resources/{key}?type=image|file
// with the tenant access token.
func (a *Adapter) FetchMedia(ctx context.Context, msg *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	msgID, typ := att.Meta[metaMessageID], att.Meta[metaType]
	if msgID == "" {
		msgID = msg.MessageID
	}
	if typ != "image" && typ != "file" {
		typ = "file"
		if att.Kind == message.MediaImage {
			typ = "image"
		}
	}
	if msgID == "" || att.Ref == "" {
		return nil, 0, fmt.Errorf("feishu: resource: %w: no message id or key", adapter.ErrPermanent)
	}
	path := "/open-apis/im/v1/messages/" + url.PathEscape(msgID) + "/resources/" + url.PathEscape(att.Ref) + "?type=" + typ
	for attempt := 0; ; attempt++ {
		tok, err := a.rest.tenantToken(ctx)
		if err != nil {
			return nil, 0, err
		}
		body, size, err := a.rest.download(ctx, path, tok)
		var te *tokenError
		if errors.As(err, &te) && attempt == 0 {
			a.rest.invalidate(tok)
			continue
		}
		return body, size, err
	}
}

// download opens a binary response. The request is bounded by ctx only:
// the body is read by the caller, within the caller's deadline.
func (c *restClient) download(ctx context.Context, path, token string) (io.ReadCloser, int64, error) {
	const op = "resource"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("feishu: %s: %w: %w", op, adapter.ErrPermanent, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("feishu: %s: %w: %w", op, adapter.ErrTemporary, err)
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode == http.StatusOK && !strings.HasPrefix(ct, "application/json") {
		size := resp.ContentLength
		if size > maxResourceBytes {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("feishu: %s: %d bytes, the API serves at most %d: %w", op, size, maxResourceBytes, adapter.ErrTooLarge)
		}
		if size < 0 {
			size = -1
		}
		return resp.Body, size, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Code *int   `json:"code"`
		Msg  string `json:"msg"`
	}
	_ = json.Unmarshal(raw, &env)
	code := 0
	if env.Code != nil {
		code = *env.Code
	}
	desc := "HTTP " + strconv.Itoa(resp.StatusCode) + ", code " + strconv.Itoa(code) + ": " + env.Msg
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || code == codeRateLimited:
		return nil, 0, &adapter.RetryAfterError{
			After: c.rateLimitReset(op, resp.Header.Get("x-ogw-ratelimit-reset")),
			Err:   fmt.Errorf("feishu: %s: %w (%s)", op, adapter.ErrRateLimited, desc),
		}
	case tokenCodes[code]:
		return nil, 0, &tokenError{fmt.Errorf("feishu: %s: access token rejected (%s): %w", op, desc, adapter.ErrUnauthorized)}
	case resp.StatusCode >= 500:
		return nil, 0, fmt.Errorf("feishu: %s: %w (%s)", op, adapter.ErrTemporary, desc)
	default:
		// 4xx with a platform code (234043: a merged-forward or card
		// message; a key that does not belong to the message; the bot
		// no longer in the chat): the resource can never be read.
		return nil, 0, fmt.Errorf("feishu: %s: %w (%s)", op, adapter.ErrPermanent, desc)
	}
}
