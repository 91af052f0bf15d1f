// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaFetcher = (*Adapter)(nil)

// maxErrorAnswer bounds the error answer of a media call read into memory.
const maxErrorAnswer = 64 << 10

// mxcPattern is an mxc:// URI: a server name (host name, IPv4 or
// bracketed IPv6 address, optional port) and a media id of the characters
// the spec allows ([A-Za-z0-9_-]).
var mxcPattern = regexp.MustCompile(`^mxc://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/([A-Za-z0-9_\-]+)$`)

// parseMXC splits an mxc:// URI into its server name and media id.
func parseMXC(uri string) (server, mediaID string, ok bool) {
	m := mxcPattern.FindStringSubmatch(uri)
	if m == nil || len(uri) > 255+5+255 {
		return "", "", false
	}
	return m[1] + m[2], m[3], true
}

// FetchMedia downloads an attachment (Ref is its mxc:// URI) through the
// homeserver with the access token: GET
// /_matrix/client/v1/media/download/{serverName}/{mediaId}, the
// authenticated media API of spec v1.11; a homeserver without it (404 or
// 405 M_UNRECOGNIZED) is asked with the older
// /_matrix/media/v3/download/{serverName}/{mediaId}. The homeserver
// fetches media of other servers over federation. 404 M_NOT_FOUND
// (deleted, purged, quarantined) is ErrPermanent, M_TOO_LARGE (remote media
// over the homeserver's limit) ErrTooLarge, 504 M_NOT_YET_UPLOADED, other
// 5xx and network failures ErrTemporary.
func (a *Adapter) FetchMedia(ctx context.Context, _ *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	server, id, ok := parseMXC(att.Ref)
	if !ok {
		return nil, 0, fmt.Errorf("matrix: download: %w: %q is not an mxc:// URI", adapter.ErrPermanent, att.Ref)
	}
	tail := url.PathEscape(server) + "/" + url.PathEscape(id)
	body, size, err := a.api.download(ctx, "/_matrix/client/v1/media/download/"+tail)
	if unrecognized(err) {
		body, size, err = a.api.download(ctx, "/_matrix/media/v3/download/"+tail)
	}
	if err != nil {
		return nil, 0, classify("download", err)
	}
	return body, size, nil
}

// unrecognized reports whether the homeserver does not know the endpoint
// (it predates it).
func unrecognized(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Errcode == "M_UNRECOGNIZED" &&
		(ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed || ae.Status == http.StatusBadRequest)
}

// download opens GET path; the body is the caller's to close. Errors are
// *apiError or *transportError.
func (c *client) download(ctx context.Context, path string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, &transportError{Err: err}
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, resp.ContentLength, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorAnswer))
	if resp.StatusCode/100 == 2 {
		return nil, 0, &transportError{Err: fmt.Errorf("HTTP %d instead of the file", resp.StatusCode)}
	}
	return nil, 0, c.apiError(strings.SplitN(path, "/download/", 2)[0]+"/download", resp, data)
}
