// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

const (
	// MaxUpload is the upload limit of a channel without server boosts (and
	// of DMs): 10 MiB. Boosted servers accept more; a larger file is refused
	// before upload, since most channels would refuse it.
	MaxUpload = 10 << 20
	// uploadRate is the slowest upload speed herald waits for, on top of
	// request_timeout.
	uploadRate = 128 << 10
)

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: every kind is an attachment.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// sendMedia creates a message with msg.Media as its one attachment: a
// multipart/form-data request with payload_json (content = the caption,
// after msg.Text when Recover set a mark; the same nonce, enforce_nonce,
// reply reference and allowed_mentions as a text part) and files[0]
// streamed from Media.Path.
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	const op = "create message"
	m := msg.Media
	f, err := os.Open(m.Path)
	if err != nil {
		kind := adapter.ErrTemporary
		if errors.Is(err, fs.ErrNotExist) {
			kind = adapter.ErrPermanent
		}
		return adapter.SendResult{}, fmt.Errorf("discord: %s: %w: %w", op, kind, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("discord: %s: %w: %w", op, adapter.ErrTemporary, err)
	}
	size := st.Size()
	if size > MaxUpload {
		return adapter.SendResult{}, fmt.Errorf("discord: %s: %w: %w: %d bytes, channels without boosts accept at most %d",
			op, adapter.ErrPermanent, adapter.ErrTooLarge, size, MaxUpload)
	}
	name := m.Name
	if name == "" {
		name = "file"
	}
	content := strings.TrimSpace(strings.TrimSpace(msg.Text) + "\n" + strings.TrimSpace(m.Caption))
	if parts := split(content, a.cfg.MaxMessageLen); len(parts) > 1 {
		content = strings.TrimRight(parts[0], "\n")
	}
	body := createMessage{Content: content, AllowedMentions: noMentions,
		Attachments: []attachmentRef{{ID: 0, Filename: name}}}
	if n := nonce(msg.IdempotencyKey); n != "" {
		body.Nonce, body.EnforceNonce = n, true
	}
	if msg.ReplyTo != "" {
		body.MessageReference = &messageRef{MessageID: msg.ReplyTo, FailIfNotExists: false}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("discord: %s: %w: %v", op, adapter.ErrPermanent, err)
	}
	raw, ct, length, err := adapter.MultipartFile(
		[]adapter.FormField{{Name: "payload_json", Value: string(payload), ContentType: "application/json"}},
		adapter.FormFile{Field: "files[0]", Name: name, ContentType: m.MIME}, f, size)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("discord: %s: %w: %v", op, adapter.ErrPermanent, err)
	}
	var out messageResp
	err = a.rest.do(ctx, request{
		op: op, method: http.MethodPost, route: routeCreateMessage,
		major: msg.ChatID, path: channelPath(msg.ChatID) + "/messages",
		raw: raw, contentType: ct, length: length,
		timeout: a.rest.timeout + time.Duration(size/uploadRate)*time.Second,
	}, &out)
	if err != nil {
		return adapter.SendResult{}, err
	}
	return adapter.SendResult{MessageID: out.ID}, nil
}
