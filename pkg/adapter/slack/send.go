// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// postMessage is the body of chat.postMessage and chat.update.
type postMessage struct {
	Channel  string `json:"channel"`
	Text     string `json:"text"`
	ThreadTS string `json:"thread_ts,omitempty"`
	TS       string `json:"ts,omitempty"`
	// Blocks carry the text and the buttons of a message with buttons.
	Blocks []block `json:"blocks,omitempty"`
	// Metadata tags a reply with herald's idempotency key (see Recover).
	Metadata *metadata `json:"metadata,omitempty"`
}

// Send posts msg with chat.postMessage and returns its ts. See threadTS for
// where the reply goes. chat.postMessage has no idempotency key: a timeout
// after the request was sent is ErrAmbiguous, which the core settles with
// Recover. The message carries msg.IdempotencyKey in its metadata. A part
// with Media is shared with the external upload flow (sendMedia).
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	if msg.ChatID == "" {
		return adapter.SendResult{}, fmt.Errorf("slack: chat.postMessage: %w: no chat id", adapter.ErrPermanent)
	}
	if msg.Media != nil {
		return a.sendMedia(ctx, msg)
	}
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	text := escape(msg.Text)
	res, err := a.api.call(ctx, "chat.postMessage", a.botToken, postMessage{
		Channel:  msg.ChatID,
		Text:     text,
		ThreadTS: a.threadTS(msg),
		Metadata: replyMetadata(msg.IdempotencyKey),
		Blocks:   blocks(text, msg.Buttons),
	})
	if err != nil {
		return adapter.SendResult{}, err
	}
	return adapter.SendResult{MessageID: res.TS}, nil
}

// Edit replaces the text of a message sent by Send (messageID is its ts)
// with chat.update. Unlike Send it is idempotent, so a timeout after the
// request was sent is ErrTemporary, not ErrAmbiguous.
func (a *Adapter) Edit(ctx context.Context, msg *message.Outbound, messageID string) error {
	if msg.ChatID == "" || messageID == "" {
		return fmt.Errorf("slack: chat.update: %w: chat id and message ts are required", adapter.ErrPermanent)
	}
	ctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	_, err := a.api.call(ctx, "chat.update", a.botToken, postMessage{
		Channel: msg.ChatID,
		Text:    escape(msg.Text),
		TS:      messageID,
	})
	if errors.Is(err, adapter.ErrAmbiguous) {
		// Setting the same text twice shows nothing twice: a lost answer
		// is simply worth a retry.
		return fmt.Errorf("slack: chat.update: %w: %v", adapter.ErrTemporary, err)
	}
	return err
}

// threadTS decides where a reply goes: into the thread the message came
// from (Outbound.ThreadID), else with reply_in_thread into a new thread
// under the message answered (ReplyTo) unless the chat is a direct
// message, else to the channel itself.
func (a *Adapter) threadTS(msg *message.Outbound) string {
	if msg.ThreadID != "" {
		return msg.ThreadID
	}
	ct := msg.ChatType
	if ct == "" {
		ct = chatType("", msg.ChatID)
	}
	if a.conf.ReplyInThread && ct != message.ChatDirect && msg.ReplyTo != "" {
		return msg.ReplyTo
	}
	return ""
}
