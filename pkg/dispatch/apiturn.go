// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// TurnRequest is an agent turn started through the API, as if the user had
// written Text in the chat.
type TurnRequest struct {
	Platform string
	// ChatID is the chat; empty means the platform's home chat.
	ChatID string
	// ChatType is dm (the default), group or channel: it decides the
	// session as for the user's own messages.
	ChatType string
	ThreadID string
	// UserID is the author; default the chat in a direct chat.
	UserID string
	Text   string
	// IdempotencyKey identifies the turn: the same key runs it once.
	IdempotencyKey string
}

// Turn stores req as an inbound message of its platform and queues its
// turn, under the same rules as the platform's own messages (allowlist,
// sessions, commands). It returns the inbound message's id. Errors:
// *FieldError for a request that can never succeed (a user the platform
// does not allow included), ErrNotAccepting while stopping.
func (d *Dispatcher) Turn(ctx context.Context, req TurnRequest) (int64, error) {
	p, open, err := d.apiTarget(req.Platform, &req.ChatID)
	if err != nil {
		return 0, err
	}
	ct := message.ChatType(req.ChatType)
	if ct == "" {
		ct = message.ChatDirect
	}
	if req.UserID == "" && ct == message.ChatDirect {
		req.UserID = req.ChatID
	}
	switch {
	case ct != message.ChatDirect && ct != message.ChatGroup && ct != message.ChatChannel:
		return 0, &FieldError{"chat_type", fmt.Sprintf("%q is not one of dm, group, channel", req.ChatType)}
	case req.UserID == "":
		return 0, &FieldError{"user_id", "required outside direct chats"}
	case strings.TrimSpace(req.Text) == "":
		return 0, &FieldError{"text", "required"}
	case len(req.Text) > message.MaxTextBytes:
		return 0, &FieldError{"text", fmt.Sprintf("longer than %d bytes", message.MaxTextBytes)}
	case req.IdempotencyKey == "":
		return 0, &FieldError{"idempotency_key", "required"}
	case len(req.IdempotencyKey) > MaxSendKey:
		return 0, &FieldError{"idempotency_key", fmt.Sprintf("longer than %d bytes", MaxSendKey)}
	case !d.mayTalk(p, req.Platform, req.UserID):
		return 0, &FieldError{"user_id", fmt.Sprintf("user %q may not talk to the agent on %s (allowed_users)", req.UserID, req.Platform)}
	}
	if !open {
		return 0, ErrNotAccepting
	}
	m := &message.Inbound{
		Platform: req.Platform,
		EventID:  TurnEventID(req.IdempotencyKey),
		ChatID:   req.ChatID,
		ChatType: ct,
		ThreadID: req.ThreadID,
		SenderID: req.UserID,
		Text:     req.Text,
	}
	if err := d.Deliver(ctx, m); errors.Is(err, adapter.ErrStopping) || errors.Is(err, adapter.ErrUnavailable) {
		return 0, ErrNotAccepting
	} else if err != nil {
		return 0, fmt.Errorf("dispatch: turn: %w", err)
	}
	id, err := d.store.InboundID(ctx, req.Platform, m.EventID)
	if err != nil {
		return 0, fmt.Errorf("dispatch: turn: %w", err)
	}
	return id, nil
}

// TurnEventID is the event id of a turn started through the API with an
// idempotency key: apart from any event id a platform gives.
func TurnEventID(key string) string { return "api-turn:" + key }
