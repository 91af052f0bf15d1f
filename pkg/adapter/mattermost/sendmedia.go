// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

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
	f, size, err := adapter.OpenMedia(m)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", path, err)
	}
	defer f.Close()
	name := m.Name
	if name == "" {
		name = "file"
	}
	body, ct, length, err := adapter.MultipartFile([]adapter.FormField{{Name: "channel_id", Value: channel}},
		adapter.FormFile{Field: "files", Name: name, ContentType: m.MIME}, f, size)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w: %w", path, adapter.ErrPermanent, err)
	}
	ctx, cancel := context.WithTimeout(ctx, adapter.UploadTimeout(c.timeout, size))
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
