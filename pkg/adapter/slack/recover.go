// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// chat.postMessage has no idempotency key. So that a send whose outcome is
// unknown (herald was killed during it, or its answer was lost) can be
// settled without risking a second copy, every reply carries message
// metadata naming herald's idempotency key, and Recover looks for that
// metadata in the conversation before it posts again.

// metadataEventType is the event_type of the metadata on herald's replies.
const metadataEventType = "herald_reply"

// Bounds of the search for an earlier send.
const (
	// recoverSlack is how much earlier than the first unknown send the
	// search starts: Slack's clock and this host's may differ.
	recoverSlack = time.Minute
	// recoverPageSize and recoverPages bound the search to 1,000 messages
	// of the conversation (the newest first).
	recoverPageSize = 200
	recoverPages    = 5
)

// metadata is Slack's message metadata.
type metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// replyMetadata tags a reply with its idempotency key.
func replyMetadata(key string) *metadata {
	if key == "" {
		return nil
	}
	return &metadata{EventType: metadataEventType, EventPayload: map[string]any{"key": key}}
}

// historyPage is the part of a conversations.history or
// conversations.replies answer herald reads.
type historyPage struct {
	Messages []struct {
		TS       string    `json:"ts"`
		Metadata *metadata `json:"metadata"`
	} `json:"messages"`
	HasMore          bool `json:"has_more"`
	ResponseMetadata struct {
		NextCursor string `json:"next_cursor"`
	} `json:"response_metadata"`
}

// Recover implements adapter.Recoverer: it looks for a message carrying
// msg's idempotency key in the thread (conversations.replies) or the
// channel (conversations.history) the reply goes to, posted since shortly
// before since, and returns it if found; else it posts msg. If the search
// cannot be completed within its bounds it declines (ErrNotResent): the
// reply may be there already.
func (a *Adapter) Recover(ctx context.Context, msg *message.Outbound, since time.Time) (adapter.SendResult, error) {
	if msg.IdempotencyKey == "" {
		return adapter.SendResult{}, fmt.Errorf("slack: recover: %w: the reply has no idempotency key to look for", adapter.ErrNotResent)
	}
	if msg.Media != nil {
		// files.completeUploadExternal takes no metadata, so an earlier
		// share cannot be recognised: at most once.
		return adapter.SendResult{}, fmt.Errorf("slack: recover: %w: a file share carries no idempotency key to look for", adapter.ErrNotResent)
	}
	ts, err := a.findSent(ctx, msg, since.Add(-recoverSlack))
	if err != nil {
		return adapter.SendResult{}, err
	}
	if ts != "" {
		a.Log.WithField("ts", ts).Info("slack: the reply whose send was interrupted is in the conversation; not posting it again")
		return adapter.SendResult{MessageID: ts}, nil
	}
	a.Log.Info("slack: the reply whose send was interrupted is not in the conversation; posting it")
	return a.Send(ctx, msg)
}

// findSent returns the ts of the message tagged with msg's idempotency key,
// or "" if the conversation has none since oldest.
func (a *Adapter) findSent(ctx context.Context, msg *message.Outbound, oldest time.Time) (string, error) {
	method := "conversations.history"
	q := url.Values{
		"channel":              {msg.ChatID},
		"oldest":               {slackTS(oldest)},
		"limit":                {strconv.Itoa(recoverPageSize)},
		"include_all_metadata": {"true"},
	}
	if thread := a.threadTS(msg); thread != "" {
		method = "conversations.replies"
		q.Set("ts", thread)
	}
	for page := 0; page < recoverPages; page++ {
		cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
		res, err := a.api.call(cctx, method, a.botToken, q)
		cancel()
		if err != nil {
			return "", fmt.Errorf("slack: looking for an interrupted send: %w", err)
		}
		var p historyPage
		if err := json.Unmarshal(res.raw, &p); err != nil {
			return "", fmt.Errorf("slack: %s: %w: undecodable answer: %v", method, adapter.ErrTemporary, err)
		}
		for _, m := range p.Messages {
			if m.Metadata != nil && m.Metadata.EventType == metadataEventType && m.Metadata.EventPayload["key"] == msg.IdempotencyKey {
				return m.TS, nil
			}
		}
		if !p.HasMore || p.ResponseMetadata.NextCursor == "" {
			return "", nil
		}
		q.Set("cursor", p.ResponseMetadata.NextCursor)
	}
	return "", fmt.Errorf("slack: %s: %w: more than %d messages since %s; the reply may be among them", method, adapter.ErrNotResent, recoverPages*recoverPageSize, slackTS(oldest))
}

// slackTS formats t as a Slack timestamp ("seconds.microseconds").
func slackTS(t time.Time) string {
	us := t.UnixMicro()
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

var _ adapter.Recoverer = (*Adapter)(nil)
