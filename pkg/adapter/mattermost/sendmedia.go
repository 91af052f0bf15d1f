// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// uploadRate is the slowest upload speed herald waits for, on top of
// request_timeout.
const uploadRate = 128 << 10

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: every kind is a file
// attachment.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// attachMedia uploads msg.Media, once per part: a file uploaded for the
// idempotency key whose post is not made yet is reused by a retry of the
// part, so that a post that failed after its upload does not upload the
// file again.
func (a *Adapter) attachMedia(ctx context.Context, msg *message.Outbound) (string, error) {
	if id, ok := a.uploads.Get(msg.IdempotencyKey, msg.ChatID); ok {
		return id, nil
	}
	id, err := a.api.upload(ctx, msg.ChatID, msg.Media)
	if err != nil {
		return "", err
	}
	a.uploads.Put(msg.IdempotencyKey, msg.ChatID, id)
	return id, nil
}

// caption is the message of a media part's post: the part's text (set
// when a core retry replaced it) and the caption, within max_message_len
// characters.
func caption(msg *message.Outbound, limit int) string {
	s := strings.TrimSpace(strings.TrimSpace(msg.Text) + "\n" + strings.TrimSpace(msg.Media.Caption))
	if utf8.RuneCountInString(s) > limit {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:limit]))
	}
	return Neutralize(s)
}

// upload sends the file m to channel with POST /api/v4/files, as
// multipart/form-data: channel_id first (the server reads the form as a
// stream), then files, streamed from m.Path. It returns the file id. The
// server compares the whole request's Content-Length with its MaxFileSize
// and answers 413 over it: ErrTooLarge. A failure after the request was
// written is ErrTemporary, not ambiguous: no post exists yet, and a file
// uploaded but never attached to a post is not shown to anyone.
func (c *client) upload(ctx context.Context, channel string, m *message.OutboundMedia) (string, error) {
	const path = "/api/v4/files"
	f, err := os.Open(m.Path)
	if err != nil {
		kind := adapter.ErrTemporary
		if errors.Is(err, fs.ErrNotExist) {
			kind = adapter.ErrPermanent
		}
		return "", fmt.Errorf("POST %s: %w: %w", path, kind, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("POST %s: %w: %w", path, adapter.ErrTemporary, err)
	}
	name := m.Name
	if name == "" {
		name = "file"
	}
	body, ct, length, err := adapter.MultipartFile([]adapter.FormField{{Name: "channel_id", Value: channel}},
		adapter.FormFile{Field: "files", Name: name, ContentType: m.MIME}, f, st.Size())
	if err != nil {
		return "", fmt.Errorf("POST %s: %w: %w", path, adapter.ErrPermanent, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout+time.Duration(st.Size()/uploadRate)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, body)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w: %w", path, adapter.ErrPermanent, err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w: %w", path, adapter.ErrTemporary, err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode/100 != 2 {
		return "", c.statusError(http.MethodPost, path, resp, b)
	}
	var out struct {
		FileInfos []fileInfo `json:"file_infos"`
	}
	if rerr != nil || json.Unmarshal(b, &out) != nil || len(out.FileInfos) != 1 || out.FileInfos[0].ID == "" {
		return "", fmt.Errorf("POST %s: %w: no file info in the answer", path, adapter.ErrTemporary)
	}
	return out.FileInfos[0].ID, nil
}
