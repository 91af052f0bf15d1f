// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Send replies to msg.ReplyTo when set, else posts into msg.ChatID. The
// uuid (msg.IdempotencyKey) makes the platform show a retried request once
// (within 1 h), so ErrAmbiguous results are safe to retry. A part with
// Media is uploaded first (see uploadMedia), then sent as one message
// carrying the uuid; a file's caption follows as a text message with a
// uuid of its own.
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	if msg == nil || (msg.Text == "" && msg.Media == nil) {
		return adapter.SendResult{}, fmt.Errorf("feishu: send: empty message: %w", adapter.ErrPermanent)
	}
	if msg.ReplyTo == "" && msg.ChatID == "" {
		return adapter.SendResult{}, fmt.Errorf("feishu: send: no chat id and nothing to reply to: %w", adapter.ErrPermanent)
	}
	if msg.Media == nil && len(msg.Buttons) > 0 {
		return a.sendContent(ctx, msg, "interactive", cardContent(msg), requestUUID(msg.IdempotencyKey))
	}
	if msg.Media == nil {
		return a.sendContent(ctx, msg, "text", textContent(msg.Text), requestUUID(msg.IdempotencyKey))
	}
	caption := msg.Media.Caption
	if msg.Text != "" && msg.Text != caption {
		caption = strings.TrimSpace(msg.Text + "\n" + caption)
	}
	key, msgType, err := a.uploadMedia(ctx, msg.Media)
	if err != nil {
		return adapter.SendResult{}, err
	}
	msgType, content := mediaMessage(msgType, key, caption)
	res, err := a.sendContent(ctx, msg, msgType, content, requestUUID(msg.IdempotencyKey))
	if err != nil || caption == "" || msgType == "post" {
		return res, err
	}
	if _, err := a.sendContent(ctx, msg, "text", textContent(caption), captionUUID(msg.IdempotencyKey)); err != nil {
		// The file is shown; a retry sends it again under the same uuid
		// (shown once) and then the caption.
		return adapter.SendResult{}, fmt.Errorf("feishu: send caption: %w", err)
	}
	return res, nil
}

// sendContent sends one message of msgType with the given uuid.
func (a *Adapter) sendContent(ctx context.Context, msg *message.Outbound, msgType, content, uuid string) (adapter.SendResult, error) {
	var out struct {
		MessageID string `json:"message_id"`
	}
	var err error
	if msg.ReplyTo != "" {
		body := struct {
			MsgType       string `json:"msg_type"`
			Content       string `json:"content"`
			ReplyInThread bool   `json:"reply_in_thread"`
			UUID          string `json:"uuid,omitempty"`
		}{msgType, content, false, uuid}
		err = a.rest.call(ctx, "reply", http.MethodPost, "/open-apis/im/v1/messages/"+url.PathEscape(msg.ReplyTo)+"/reply", body, &out, false)
	} else {
		body := struct {
			ReceiveID string `json:"receive_id"`
			MsgType   string `json:"msg_type"`
			Content   string `json:"content"`
			UUID      string `json:"uuid,omitempty"`
		}{msg.ChatID, msgType, content, uuid}
		err = a.rest.call(ctx, "send", http.MethodPost, "/open-apis/im/v1/messages?receive_id_type=chat_id", body, &out, false)
	}
	if err != nil {
		return adapter.SendResult{}, err
	}
	return adapter.SendResult{MessageID: out.MessageID}, nil
}

// Edit replaces the text of a message herald sent (PUT
// /open-apis/im/v1/messages/:message_id). The platform allows 20 edits per
// message; later ones fail with ErrPermanent.
func (a *Adapter) Edit(ctx context.Context, msg *message.Outbound, messageID string) error {
	if msg == nil || msg.Text == "" || messageID == "" {
		return fmt.Errorf("feishu: edit: empty message or message id: %w", adapter.ErrPermanent)
	}
	body := struct {
		MsgType string `json:"msg_type"`
		Content string `json:"content"`
	}{"text", textContent(msg.Text)}
	err := a.rest.call(ctx, "edit", http.MethodPut, "/open-apis/im/v1/messages/"+url.PathEscape(messageID), body, nil, false)
	if errors.Is(err, adapter.ErrAmbiguous) {
		// Repeating an edit with the same text is harmless.
		return fmt.Errorf("feishu: edit: outcome unknown, safe to repeat: %w (%v)", adapter.ErrTemporary, err)
	}
	return err
}
