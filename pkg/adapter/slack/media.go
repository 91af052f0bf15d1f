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

// slackFile is the part of a file object (in a message event's files)
// herald reads.
type slackFile struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Title              string `json:"title"`
	Mimetype           string `json:"mimetype"`
	Filetype           string `json:"filetype"`
	Size               int64  `json:"size"`
	Mode               string `json:"mode"`
	IsExternal         bool   `json:"is_external"`
	FileAccess         string `json:"file_access"`
	Subtype            string `json:"subtype"`
	URLPrivate         string `json:"url_private"`
	URLPrivateDownload string `json:"url_private_download"`
	OriginalW          int    `json:"original_w"`
	OriginalH          int    `json:"original_h"`
	DurationMS         int64  `json:"duration_ms"`
}

// metaFileID is the Attachment.Meta key of the Slack file id.
const metaFileID = "file_id"

// fileAttachments maps the files of a message event to attachments, and
// names those herald cannot download: files hidden by the workspace's plan
// ("hidden_by_limit"), deleted ones ("tombstone"), external files (Google
// Docs and the like) and Slack Connect files whose metadata needs
// files.info first.
func fileAttachments(files []slackFile) (atts []message.Attachment, unsupported []string) {
	for _, f := range files {
		ref := f.URLPrivateDownload
		if ref == "" {
			ref = f.URLPrivate
		}
		var skip string
		switch {
		case f.FileAccess == "check_file_info":
			skip = "slack_connect_file"
		case f.Mode == "hidden_by_limit":
			skip = "hidden_file"
		case f.Mode == "tombstone":
			skip = "deleted_file"
		case f.IsExternal || f.Mode == "external":
			skip = "external_file"
		case ref == "":
			skip = "file_without_url"
		}
		if skip != "" {
			if len(unsupported) < message.MaxAttachments {
				unsupported = append(unsupported, skip)
			}
			continue
		}
		if len(atts) == message.MaxAttachments {
			continue
		}
		name := f.Name
		if name == "" {
			name = f.Title
		}
		atts = append(atts, message.Attachment{
			Kind: fileKind(f), Ref: ref, Name: name, MIME: f.Mimetype, Size: max(f.Size, 0),
			Width: max(f.OriginalW, 0), Height: max(f.OriginalH, 0), Duration: int(max(f.DurationMS, 0) / 1000),
			Meta: map[string]string{metaFileID: f.ID},
		})
	}
	return atts, unsupported
}

// fileKind classifies a Slack file: a voice clip recorded in Slack is
// subtype slack_audio (its mimetype may say audio/mp4, audio/webm or even
// video/mp4), a video clip slack_video; otherwise the mimetype decides.
func fileKind(f slackFile) message.MediaKind {
	switch {
	case f.Subtype == "slack_audio":
		return message.MediaVoice
	case f.Subtype == "slack_video":
		return message.MediaVideo
	case strings.HasPrefix(f.Mimetype, "image/"):
		return message.MediaImage
	case strings.HasPrefix(f.Mimetype, "audio/"):
		return message.MediaAudio
	case strings.HasPrefix(f.Mimetype, "video/"):
		return message.MediaVideo
	}
	return message.MediaFile
}

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
