// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaFetcher = (*Adapter)(nil)

// codeInvalidMediaID is 40007: an unknown media_id, or one older than the
// 3 days a temporary media file lives.
const codeInvalidMediaID = 40007

// FetchMedia downloads a member's image, voice, video or file with GET
// /cgi-bin/media/get?access_token=…&media_id=<MediaId>. WeCom answers the
// bytes with a Content-Disposition naming the file, or HTTP 200 with a
// JSON errcode: 40007 (unknown or expired media id) is ErrPermanent; an
// expired token is renewed once; others are classified as for every call.
// The whole download is bounded by ctx.
func (a *Adapter) FetchMedia(ctx context.Context, msg *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	const what = "media/get"
	path := "/cgi-bin/media/get?" + url.Values{"media_id": {att.Ref}}.Encode()
	for attempt := 0; ; attempt++ {
		tok, err := a.api.accessToken(ctx)
		if err != nil {
			return nil, 0, classify(what, err, false)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.api.base+withToken(path, tok), nil)
		if err != nil {
			return nil, 0, fmt.Errorf("wecom: %s: %w: %v", what, adapter.ErrPermanent, a.api.scrub(err))
		}
		resp, err := a.api.client.Do(req)
		if err != nil {
			return nil, 0, classify(what, &transportError{Err: a.api.scrub(err)}, false)
		}
		if resp.StatusCode == http.StatusOK && !errorAnswer(resp) {
			return resp.Body, resp.ContentLength, nil
		}
		ae := &apiError{Status: resp.StatusCode}
		if resp.StatusCode == http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
			if json.Unmarshal(b, ae) != nil || ae.Code == 0 {
				ae.Code, ae.Message = codeBusy, "media/get answered neither a file nor an errcode"
			}
		}
		resp.Body.Close()
		switch {
		case attempt == 0 && ae.tokenRefresh():
			a.api.invalidate(tok)
			continue
		case ae.Code == codeInvalidMediaID:
			return nil, 0, fmt.Errorf("wecom: %s: %w: %v (media ids live 3 days)", what, adapter.ErrPermanent, ae)
		}
		err = classify(what, ae, false)
		if errors.Is(err, adapter.ErrUnauthorized) {
			a.rejected(err)
		}
		return nil, 0, err
	}
}

// errorAnswer reports whether a 200 from media/get is an errcode rather
// than a file: a file comes as an attachment, an error as JSON (or text)
// without one.
func errorAnswer(resp *http.Response) bool {
	if resp.Header.Get("Content-Disposition") != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "application/json" || mt == "text/plain" || mt == ""
}
