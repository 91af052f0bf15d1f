// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// keyProp is the post property that carries herald's idempotency key, so
// that Recover can find a post an interrupted send created.
const keyProp = "herald_key"

// recoverLookback is how far before the first attempt Recover looks, for
// clocks that differ between herald and the server.
const recoverLookback = time.Minute

// Send posts one reply part with POST /api/v4/posts. In a thread (or
// answering a post in a channel) it replies in the thread through root_id.
// The idempotency key goes in pending_post_id, which the server uses to drop
// a repeat within 30 seconds, and in props, where Recover looks for it. A
// part with a file uploads it first (POST /api/v4/files) and posts it
// with the caption as the message and the file id in file_ids.
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	ctx, end, err := a.begin(ctx, "send")
	if err != nil {
		return adapter.SendResult{}, err
	}
	defer end()
	return a.send(ctx, msg)
}

func (a *Adapter) send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	if msg.ChatID == "" {
		return adapter.SendResult{}, fmt.Errorf("mattermost: send: %w: no channel id", adapter.ErrPermanent)
	}
	p := &post{
		ChannelID:     msg.ChatID,
		RootID:        rootID(msg),
		Message:       Neutralize(msg.Text),
		PendingPostID: msg.IdempotencyKey,
	}
	if msg.IdempotencyKey != "" {
		p.Props = map[string]any{keyProp: msg.IdempotencyKey}
	}
	if msg.Media != nil {
		id, err := a.attachMedia(ctx, msg)
		if err != nil {
			return adapter.SendResult{}, fmt.Errorf("mattermost: send: upload: %w", err)
		}
		p.FileIDs, p.Message = []string{id}, caption(msg, a.conf.MaxMessageLen)
	}
	out, err := a.api.createPost(ctx, p)
	if msg.Media != nil && (err == nil || !adapter.Retryable(err)) {
		a.uploads.Forget(msg.IdempotencyKey)
	}
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("mattermost: send: %w", err)
	}
	return adapter.SendResult{MessageID: out.ID}, nil
}

// rootID is the thread a reply goes to: the inbound post's thread, else in
// channels and group messages a new thread on the post answered; direct
// messages are answered flat.
func rootID(msg *message.Outbound) string {
	if msg.ThreadID != "" {
		return msg.ThreadID
	}
	if msg.ChatType != message.ChatDirect && msg.ChatType != "" {
		return msg.ReplyTo
	}
	return ""
}

// Recover implements adapter.Recoverer: it looks for a post of the bot in
// the channel, created since the first attempt (less a minute), whose props
// carry msg's idempotency key, and returns it; if there is none, it sends
// msg.
func (a *Adapter) Recover(ctx context.Context, msg *message.Outbound, since time.Time) (adapter.SendResult, error) {
	ctx, end, err := a.begin(ctx, "recover")
	if err != nil {
		return adapter.SendResult{}, err
	}
	defer end()
	if msg.IdempotencyKey == "" {
		return adapter.SendResult{}, fmt.Errorf("mattermost: recover: %w: no idempotency key to look for", adapter.ErrNotResent)
	}
	me, err := a.bot(ctx)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("mattermost: recover: %w", err)
	}
	posts, err := a.api.postsSince(ctx, msg.ChatID, since.Add(-recoverLookback).UnixMilli())
	if err != nil {
		if errors.Is(err, adapter.ErrAmbiguous) {
			err = fmt.Errorf("%w: %w", adapter.ErrTemporary, err)
		}
		return adapter.SendResult{}, fmt.Errorf("mattermost: recover: %w", err)
	}
	for _, p := range posts {
		if p.UserID == me.ID && p.DeleteAt == 0 && p.Props[keyProp] == msg.IdempotencyKey {
			a.log.WithField("post_id", p.ID).Info("mattermost: an interrupted send had reached the channel; not sending it again")
			return adapter.SendResult{MessageID: p.ID}, nil
		}
	}
	return a.send(ctx, msg)
}

// groupMention matches the mentions that notify a whole channel.
var groupMention = regexp.MustCompile(`(?i)@(all|channel|here)\b`)

// Neutralize keeps the agent's text from notifying a whole channel: a
// zero-width space after the '@' of @all, @channel and @here leaves the
// text readable but no longer a mention.
func Neutralize(text string) string {
	return groupMention.ReplaceAllString(text, "@\u200b$1")
}
