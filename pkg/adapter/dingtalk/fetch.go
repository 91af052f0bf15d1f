// SPDX-License-Identifier: Apache-2.0

package dingtalk

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

// pathDownload exchanges a received file's downloadCode for a URL.
const pathDownload = "/v1.0/robot/messageFiles/download"

// FetchMedia downloads a received picture, file, audio or video: POST
// robot/messageFiles/download {downloadCode, robotCode} with the access
// token answers a short-lived downloadUrl, which is then read without the
// token. The exchange is bounded by request_timeout, the download by ctx.
// An unknown or expired downloadCode (a 4xx answer) and a refused
// downloadUrl (403, 404, 410) are ErrPermanent; 5xx, 429 and network
// failures ErrTemporary.
func (a *Adapter) FetchMedia(ctx context.Context, msg *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	const op = "robot/messageFiles/download"
	body := struct {
		DownloadCode string `json:"downloadCode"`
		RobotCode    string `json:"robotCode"`
	}{att.Ref, msg.Meta[MetaRobotCode]}
	if body.RobotCode == "" {
		// The robot the file was sent to, else the configured one.
		body.RobotCode = a.robotCode(nil)
	}
	var out struct {
		DownloadURL string `json:"downloadUrl"`
	}
	err := a.withToken(ctx, a.conf.RequestTimeout, func(ctx context.Context, tok string) error {
		return a.api.post(ctx, a.api.base+pathDownload, tok, body, &out)
	})
	if err != nil {
		return nil, 0, classifyFetch(op, err)
	}
	u, err := url.Parse(out.DownloadURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, 0, fmt.Errorf("dingtalk: %s: %w: the answer holds no http(s) downloadUrl", op, adapter.ErrPermanent)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("dingtalk: download: %w: %v", adapter.ErrPermanent, err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := a.api.http.Do(req)
	if err != nil {
		// The URL is signed: the error names its host only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("dingtalk: download from %s: %w: %w", u.Host, adapter.ErrTemporary, err)
	}
	switch s := resp.StatusCode; {
	case s == http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	case s == http.StatusForbidden || s == http.StatusNotFound || s == http.StatusGone:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("dingtalk: download: %w: HTTP %d (the downloadUrl expired or the file is gone)", adapter.ErrPermanent, s)
	case s == http.StatusTooManyRequests || s >= 500:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("dingtalk: download: %w: HTTP %d", adapter.ErrTemporary, s)
	default:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("dingtalk: download: %w: HTTP %d", adapter.ErrPermanent, s)
	}
}

// classifyFetch is classify for a call that changes nothing: a lost answer
// is worth a retry, not ambiguous.
func classifyFetch(op string, err error) error {
	var te *transportError
	if errors.As(err, &te) {
		return fmt.Errorf("dingtalk: %s: %w: %w", op, adapter.ErrTemporary, te)
	}
	return classify(op, err)
}
