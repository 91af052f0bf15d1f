// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

const (
	// maxUpload bounds a file herald offers to Slack: 1 GiB.
	maxUpload = 1 << 30
	// uploadRate is the slowest upload rate a send is given time for, on
	// top of request_timeout.
	uploadRate = 256 << 10
)

// SendsMedia implements adapter.MediaSender: every kind goes through the
// external upload flow.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// uploadFile is one entry of files.completeUploadExternal's files.
type uploadFile struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
}

// completeUpload is the body of files.completeUploadExternal.
type completeUpload struct {
	Files          []uploadFile `json:"files"`
	ChannelID      string       `json:"channel_id"`
	ThreadTS       string       `json:"thread_ts,omitempty"`
	InitialComment string       `json:"initial_comment,omitempty"`
}

// sendMedia shares msg.Media in msg's conversation: files.getUploadURLExternal
// (filename, length), the bytes POSTed to the upload_url, then
// files.completeUploadExternal with the caption as initial_comment. Only the
// last call shows anything: a failure before it leaves at most an unshared
// file and is safe to retry; an unknown outcome of it is ErrAmbiguous, and
// Recover declines to share again (see Recover).
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	m := msg.Media
	f, err := os.Open(m.Path)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("slack: upload: %w: %v", adapter.ErrPermanent, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("slack: upload: %w: %v", adapter.ErrPermanent, err)
	}
	size := st.Size()
	switch {
	case size == 0:
		return adapter.SendResult{}, fmt.Errorf("slack: upload: %w: empty file", adapter.ErrPermanent)
	case size > maxUpload:
		return adapter.SendResult{}, fmt.Errorf("slack: upload: %d bytes, herald uploads at most %d: %w", size, maxUpload, adapter.ErrTooLarge)
	}
	name := filepath.Base(m.Name)
	if m.Name == "" || name == "." || name == "/" {
		name = string(m.Kind)
	}
	cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	res, err := a.api.call(cctx, "files.getUploadURLExternal", a.botToken, url.Values{
		"filename": {name}, "length": {strconv.FormatInt(size, 10)},
	})
	cancel()
	if err != nil {
		return adapter.SendResult{}, uploadError(err)
	}
	var target struct {
		UploadURL string `json:"upload_url"`
		FileID    string `json:"file_id"`
	}
	if err := json.Unmarshal(res.raw, &target); err != nil || target.UploadURL == "" || target.FileID == "" {
		return adapter.SendResult{}, fmt.Errorf("slack: files.getUploadURLExternal: %w: no upload_url or file_id", adapter.ErrTemporary)
	}
	if err := a.putBytes(ctx, target.UploadURL, f, size); err != nil {
		return adapter.SendResult{}, err
	}
	caption := m.Caption
	if msg.Text != "" && msg.Text != caption {
		caption = strings.TrimSpace(msg.Text + "\n" + caption)
	}
	cctx, cancel = context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	res, err = a.api.call(cctx, "files.completeUploadExternal", a.botToken, completeUpload{
		Files:     []uploadFile{{ID: target.FileID, Title: name}},
		ChannelID: msg.ChatID, ThreadTS: a.threadTS(msg), InitialComment: escape(caption),
	})
	if err != nil {
		return adapter.SendResult{}, err
	}
	return adapter.SendResult{MessageID: shareTS(res.raw, msg.ChatID)}, nil
}

// uploadError reclassifies a failure before anything was shared: an
// unknown outcome is safe to retry, and Slack's size refusal is
// ErrTooLarge.
func uploadError(err error) error {
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.code == "file_upload_size_restricted":
		return fmt.Errorf("%w (%v)", adapter.ErrTooLarge, err)
	case errors.Is(err, adapter.ErrAmbiguous):
		return fmt.Errorf("slack: upload: %w: nothing shared yet (%v)", adapter.ErrTemporary, err)
	}
	return err
}

// putBytes POSTs the file's bytes to the upload URL Slack gave (raw bytes;
// the URL carries its own authorisation, the bot token is not sent).
func (a *Adapter) putBytes(ctx context.Context, uploadURL string, f *os.File, size int64) error {
	u, err := url.Parse(uploadURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("slack: upload: %w: upload_url %q", adapter.ErrTemporary, uploadURL)
	}
	timeout := a.conf.RequestTimeout + time.Duration(size/uploadRate+1)*time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("slack: upload: %w: %v", adapter.ErrPermanent, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("User-Agent", userAgent)
	resp, err := a.files.Do(req)
	if err != nil {
		return fmt.Errorf("slack: upload: %w: %v", adapter.ErrTemporary, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("slack: upload: HTTP 413: %w", adapter.ErrTooLarge)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("slack: upload: %w: HTTP %d", adapter.ErrTemporary, resp.StatusCode)
	default:
		return fmt.Errorf("slack: upload: %w: HTTP %d", adapter.ErrPermanent, resp.StatusCode)
	}
}

// shareTS reads the ts of the message sharing the first file in channel
// from a files.completeUploadExternal answer; "" if it is not there.
func shareTS(raw []byte, channel string) string {
	var out struct {
		Files []struct {
			Shares map[string]map[string][]struct {
				TS string `json:"ts"`
			} `json:"shares"`
		} `json:"files"`
	}
	if json.Unmarshal(raw, &out) != nil || len(out.Files) == 0 {
		return ""
	}
	for _, vis := range []string{"public", "private"} {
		if s := out.Files[0].Shares[vis][channel]; len(s) > 0 {
			return s[0].TS
		}
	}
	return ""
}
