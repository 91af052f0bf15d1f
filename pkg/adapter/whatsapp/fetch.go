// SPDX-License-Identifier: Apache-2.0

package whatsapp

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

var _ adapter.MediaFetcher = (*Adapter)(nil)

// maxInboundMedia is the Cloud API's largest media file (a document:
// 100 MB); a larger announced size is refused without a download.
const maxInboundMedia = 100 << 20

// mediaHosts serve the media URLs GET /{media-id} returns. The bearer
// token goes only to them (or to graph_url's host, for a test server).
var mediaHosts = []string{".fbsbx.com", ".facebook.com", ".whatsapp.net"}

// mediaInfo is the answer of GET /{media-id}: a URL valid for 5 minutes and
// the file's metadata. file_size is documented as a string, and is read as
// a number too.
type mediaInfo struct {
	URL      string          `json:"url"`
	MIMEType string          `json:"mime_type"`
	FileSize json.RawMessage `json:"file_size"`
	ID       string          `json:"id"`
}

func (m *mediaInfo) size() int64 {
	s := strings.Trim(string(m.FileSize), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// FetchMedia downloads att (Ref is the media id from the webhook, valid for
// 7 days): GET /{media-id}?phone_number_id=… with the bearer token returns
// a URL valid for 5 minutes, which is downloaded at once with the same
// token. The URL is never stored: every try asks for a fresh one. When the
// download is refused (401, 403, 404, 410: the URL expired meanwhile), the
// URL is asked for once more; refused again, or an unknown or expired
// media id, is ErrPermanent. An announced size over 100 MB is ErrTooLarge;
// 5xx and network failures are ErrTemporary.
func (a *Adapter) FetchMedia(ctx context.Context, _ *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	const what = "retrieve media url"
	if !digits.MatchString(att.Ref) {
		return nil, 0, fmt.Errorf("whatsapp: %s: %w: media id %q is not a Graph API id (digits)", what, adapter.ErrPermanent, truncate(att.Ref, 64))
	}
	for try := 0; ; try++ {
		var info mediaInfo
		path := "/" + att.Ref + "?phone_number_id=" + url.QueryEscape(a.conf.PhoneNumberID)
		if err := a.api.do(ctx, http.MethodGet, path, nil, &info); err != nil {
			return nil, 0, classify(what, err, false, a.logClamp)
		}
		size := info.size()
		if size > maxInboundMedia {
			return nil, 0, fmt.Errorf("whatsapp: %s: %w: %w: %d bytes announced, WhatsApp media is at most %d",
				what, adapter.ErrPermanent, adapter.ErrTooLarge, size, maxInboundMedia)
		}
		body, n, err := a.api.download(ctx, info.URL)
		if errors.Is(err, errURLRefused) && try == 0 {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if n < 0 {
			n = size
		}
		return body, n, nil
	}
}

var errURLRefused = fmt.Errorf("%w: the media URL was refused (expired)", adapter.ErrPermanent)

// download opens a media URL with the bearer token, after checking that
// it points at Meta's media hosts (or graph_url's host).
func (g *graph) download(ctx context.Context, ref string) (io.ReadCloser, int64, error) {
	const op = "whatsapp: download media"
	u, err := url.Parse(ref)
	if err != nil || u.Host == "" || !g.mediaHost(u) {
		return nil, 0, fmt.Errorf("%s: %w: the media URL is not on WhatsApp's media hosts", op, adapter.ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %v", op, adapter.ErrPermanent, err)
	}
	req.Header.Set("Authorization", "Bearer "+g.token.Reveal())
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %w", op, adapter.ErrTemporary, scrub(err, g.token.Reveal()))
	}
	switch s := resp.StatusCode; {
	case s == http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	case s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusNotFound || s == http.StatusGone:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: HTTP %d: %w", op, s, errURLRefused)
	case s == http.StatusTooManyRequests || s >= 500:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: %w: HTTP %d", op, adapter.ErrTemporary, s)
	default:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: %w: HTTP %d", op, adapter.ErrPermanent, s)
	}
}

// mediaHost reports whether u may receive the bearer token: https on one
// of Meta's media hosts, or the Graph API's own scheme and host.
func (g *graph) mediaHost(u *url.URL) bool {
	if base, err := url.Parse(g.base); err == nil && u.Scheme == base.Scheme && u.Host == base.Host {
		return true
	}
	if u.Scheme != "https" {
		return false
	}
	h := strings.ToLower(u.Hostname())
	for _, suffix := range mediaHosts {
		if strings.HasSuffix(h, suffix) {
			return true
		}
	}
	return false
}
