// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// errNoFilesRead explains an HTML page where a file was expected.
const errNoFilesRead = "got a web page instead of the file (missing files:read scope?)"

// FetchMedia implements adapter.MediaFetcher: GET url_private_download
// with the bot token. The token goes only to Slack's hosts (*.slack.com, or
// api_url's host), and never along a redirect to another host: such a
// redirect, like an HTML page, means the token may not read the file.
func (a *Adapter) FetchMedia(ctx context.Context, msg *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	u, err := url.Parse(att.Ref)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !a.fileHost(u.Hostname()) {
		return nil, 0, fmt.Errorf("slack: file download: %w: not a Slack file URL", adapter.ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("slack: file download: %w: %v", adapter.ErrPermanent, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.botToken.Reveal())
	req.Header.Set("User-Agent", userAgent)
	resp, err := a.files.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("slack: file download: %w: %v", adapter.ErrTemporary, err)
	}
	fail := func(class error, format string, args ...any) (io.ReadCloser, int64, error) {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("slack: file download: %w: %s", class, fmt.Sprintf(format, args...))
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusTooManyRequests:
		after, ok := a.api.retryAfter("file download", resp.Header.Get("Retry-After"))
		if !ok {
			after = defaultRetryAfter
		}
		resp.Body.Close()
		return nil, 0, &adapter.RetryAfterError{After: after, Err: fmt.Errorf("slack: file download: %w (HTTP 429)", adapter.ErrRateLimited)}
	case code >= 500:
		return fail(adapter.ErrTemporary, "HTTP %d", code)
	case code >= 300 && code < 400:
		return fail(adapter.ErrPermanent, "HTTP %d redirect to %q, not followed with the token: the token may not read the file (missing files:read scope?)", code, redirectHost(resp))
	case code == http.StatusNotFound || code == http.StatusGone:
		return fail(adapter.ErrPermanent, "HTTP %d: the file is gone", code)
	default:
		return fail(adapter.ErrPermanent, "HTTP %d (missing files:read scope?)", code)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "text/html" && !strings.HasPrefix(att.MIME, "text/html") {
		return fail(adapter.ErrPermanent, errNoFilesRead)
	}
	size := resp.ContentLength
	if size < 0 {
		size = -1
	}
	return resp.Body, size, nil
}

// fileHost reports whether the bot token may be sent to host.
func (a *Adapter) fileHost(host string) bool {
	host = strings.ToLower(host)
	if api, err := url.Parse(a.conf.APIURL); err == nil && strings.EqualFold(api.Hostname(), host) {
		return true
	}
	return host == "slack.com" || strings.HasSuffix(host, ".slack.com")
}

// redirectHost is the host a redirect points to, for the error.
func redirectHost(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	return loc.Host
}

// sameHostRedirects follows a redirect only to the host of the first
// request (the token stays on it), at most 5 times; any other redirect is
// returned to FetchMedia as the answer.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("slack: file download: too many redirects")
	}
	if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
		return http.ErrUseLastResponse
	}
	return nil
}
