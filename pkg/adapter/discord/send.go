// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Send posts msg.Text to channel msg.ChatID, as a reply to msg.ReplyTo if
// set. Text longer than max_message_len is split (the core normally splits
// first, using MaxMessageLen); the id of the last message is returned. A
// part with Media is one message with the file attached (sendMedia).
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	if msg.ChatID == "" {
		return adapter.SendResult{}, fmt.Errorf("discord: create message: %w: no chat id", adapter.ErrPermanent)
	}
	if msg.Media != nil {
		return a.sendMedia(ctx, msg)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return adapter.SendResult{}, fmt.Errorf("discord: create message: %w: empty text", adapter.ErrPermanent)
	}
	var res adapter.SendResult
	parts := split(msg.Text, a.cfg.MaxMessageLen)
	for i, part := range parts {
		body := createMessage{Content: part, AllowedMentions: noMentions}
		if i == len(parts)-1 {
			body.Components = components(msg.Buttons)
		}
		if n := chunkNonce(msg.IdempotencyKey, i); n != "" {
			body.Nonce, body.EnforceNonce = n, true
		}
		if msg.ReplyTo != "" && i == 0 {
			body.MessageReference = &messageRef{MessageID: msg.ReplyTo, FailIfNotExists: false}
		}
		var out messageResp
		err := a.rest.do(ctx, request{
			op: "create message", method: http.MethodPost, route: routeCreateMessage,
			major: msg.ChatID, path: channelPath(msg.ChatID) + "/messages", body: body,
		}, &out)
		if err != nil {
			return res, err
		}
		res.MessageID = out.ID
	}
	return res, nil
}

// Edit replaces the text of a message herald sent (edit-in-place streaming).
func (a *Adapter) Edit(ctx context.Context, msg *message.Outbound, messageID string) error {
	if msg.ChatID == "" || messageID == "" {
		return fmt.Errorf("discord: edit message: %w: no chat or message id", adapter.ErrPermanent)
	}
	if n := utf8.RuneCountInString(msg.Text); n > a.cfg.MaxMessageLen || strings.TrimSpace(msg.Text) == "" {
		return fmt.Errorf("discord: edit message: %w: text of %d characters (1..%d)", adapter.ErrPermanent, n, a.cfg.MaxMessageLen)
	}
	return a.rest.do(ctx, request{
		op: "edit message", method: http.MethodPatch, route: routeEditMessage, major: msg.ChatID,
		path: channelPath(msg.ChatID) + "/messages/" + url.PathEscape(messageID),
		body: editMessage{Content: msg.Text, AllowedMentions: noMentions}, idempotent: true,
	}, nil)
}

// Typing shows "herald is typing…" in msg.ChatID for about 10 s.
func (a *Adapter) Typing(ctx context.Context, msg *message.Outbound) error {
	if msg.ChatID == "" {
		return fmt.Errorf("discord: typing: %w: no chat id", adapter.ErrPermanent)
	}
	return a.rest.do(ctx, request{
		op: "typing", method: http.MethodPost, route: routeTyping, major: msg.ChatID,
		path: channelPath(msg.ChatID) + "/typing", idempotent: true,
	}, nil)
}
