// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaFetcher = (*Adapter)(nil)

// routeGetMessage is the rate-limit bucket of GET .../messages/{message}.
const routeGetMessage = "GET /channels/{channel}/messages/{message}"

// cdnHosts serve attachments. Ref must point at one of them (or at the
// api_url's host, for a test server), so a stored reference cannot make
// herald fetch anything else.
var cdnHosts = map[string]bool{"cdn.discordapp.com": true, "media.discordapp.net": true}

// FetchMedia downloads an attachment from its CDN URL (Ref). The URL is
// signed (ex, is, hm) and expires, about a day after the message: when the
// CDN refuses it (403 or 404), herald reads the message again (GET
// /channels/{channel}/messages/{message}), which returns fresh URLs, and
// downloads the attachment with the id in Meta. A deleted message or
// attachment is ErrPermanent; 5xx and network failures ErrTemporary. The
// bot token is never sent to the CDN.
func (a *Adapter) FetchMedia(ctx context.Context, msg *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	body, size, err := a.cdnGet(ctx, att.Ref)
	if !errors.Is(err, errExpired) {
		return body, size, err
	}
	fresh, rerr := a.freshURL(ctx, msg, att)
	if rerr != nil {
		return nil, 0, rerr
	}
	body, size, err = a.cdnGet(ctx, fresh)
	if errors.Is(err, errExpired) {
		return nil, 0, fmt.Errorf("discord: cdn: %w: the refreshed URL was refused too", adapter.ErrPermanent)
	}
	return body, size, err
}

var errExpired = fmt.Errorf("%w: the CDN refused the URL (expired or deleted)", adapter.ErrPermanent)

func (a *Adapter) cdnGet(ctx context.Context, ref string) (io.ReadCloser, int64, error) {
	u, err := url.Parse(ref)
	api, _ := url.Parse(a.rest.base)
	if err != nil || u.Host == "" || !(u.Scheme == "https" && cdnHosts[u.Hostname()] || api != nil && u.Host == api.Host) {
		return nil, 0, fmt.Errorf("discord: cdn: %w: attachment URL is not on Discord's CDN", adapter.ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("discord: cdn: %w: %v", adapter.ErrPermanent, err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := a.rest.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("discord: cdn: %w: %w", adapter.ErrTemporary, err)
	}
	switch s := resp.StatusCode; {
	case s == http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	case s == http.StatusForbidden || s == http.StatusNotFound || s == http.StatusGone:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("discord: cdn: HTTP %d: %w", s, errExpired)
	case s == http.StatusTooManyRequests || s >= 500:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("discord: cdn: %w: HTTP %d", adapter.ErrTemporary, s)
	default:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("discord: cdn: %w: HTTP %d", adapter.ErrPermanent, s)
	}
}

// freshURL reads msg again for a new signed URL of att.
func (a *Adapter) freshURL(ctx context.Context, msg *message.Inbound, att *message.Attachment) (string, error) {
	id := att.Meta[metaAttachmentID]
	if id == "" || msg.ChatID == "" || msg.MessageID == "" {
		return "", fmt.Errorf("discord: cdn: %w: the URL expired and the attachment cannot be looked up again", adapter.ErrPermanent)
	}
	var m struct {
		Attachments []attachmentData `json:"attachments"`
	}
	err := a.rest.do(ctx, request{
		op: "get message", method: http.MethodGet, route: routeGetMessage, major: msg.ChatID,
		path: channelPath(msg.ChatID) + "/messages/" + url.PathEscape(msg.MessageID), idempotent: true,
	}, &m)
	if err != nil {
		return "", fmt.Errorf("discord: cdn: refreshing an expired URL: %w", err)
	}
	for _, x := range m.Attachments {
		if x.ID == id && x.URL != "" {
			return x.URL, nil
		}
	}
	return "", fmt.Errorf("discord: cdn: %w: attachment %s is no longer on message %s", adapter.ErrPermanent, id, msg.MessageID)
}
