// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// roomPing matches @room in any case: the legacy push rule notifies every
// member of a room for a body containing it.
var roomPing = regexp.MustCompile(`(?i)@room`)

// neutralise keeps agent text from notifying a whole room: a word joiner
// (U+2060, invisible) after the @ breaks "@room", for homeservers older
// than intentional mentions: on newer ones the m.mentions of every send,
// which never sets room, already turns the body matching off.
func neutralise(s string) string {
	return roomPing.ReplaceAllStringFunc(s, func(m string) string { return m[:1] + "\u2060" + m[1:] })
}

// Send delivers one reply part as an m.text message, in msg.ThreadID's
// thread (m.thread relation, falling back to a reply for clients without
// threads) or as a reply to msg.ReplyTo. The transaction id is
// msg.IdempotencyKey: the homeserver answers a repeated transaction with
// the event of the first, so a retry never shows the reply twice. A part
// with a file uploads it to the media repository first and sends an
// m.image, m.file, m.audio or m.video with its mxc:// URI under the same
// transaction id.
//
// Errors: 429 → *adapter.RetryAfterError (ErrRateLimited); M_UNKNOWN_TOKEN
// → ErrUnauthorized; other 4xx (M_FORBIDDEN: not in the room) →
// ErrPermanent; 5xx and failures before the request was written →
// ErrTemporary; after it was written → ErrAmbiguous (retried by the core,
// and deduplicated by the transaction id).
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	ctx, end, err := a.begin(ctx)
	if err != nil {
		return adapter.SendResult{}, err
	}
	defer end()
	if !strings.HasPrefix(msg.ChatID, "!") || !strings.Contains(msg.ChatID, ":") {
		return adapter.SendResult{}, fmt.Errorf("matrix: send: %w: chat id %q is not a room id (!opaque:server)", adapter.ErrPermanent, msg.ChatID)
	}
	if strings.TrimSpace(msg.Text) == "" && msg.Media == nil {
		return adapter.SendResult{}, fmt.Errorf("matrix: send: %w: empty text", adapter.ErrPermanent)
	}
	txn := msg.IdempotencyKey
	if txn == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		txn = "herald-" + hex.EncodeToString(b[:])
	}
	if msg.Media != nil {
		return a.sendMedia(ctx, msg, txn)
	}
	cctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	id, err := a.api.send(cctx, msg.ChatID, txn, content(msg))
	if err != nil {
		return adapter.SendResult{}, classify("send", err)
	}
	return adapter.SendResult{MessageID: id}, nil
}

// content builds the m.room.message content of msg.
func content(msg *message.Outbound) map[string]any {
	// m.mentions names whom the message notifies, and its presence turns
	// off the homeserver's legacy matching of names and @room in the body.
	// A reply mentions the asker only, as a client's reply does.
	mentions := map[string]any{}
	if msg.ReplyTo != "" && validUserID(msg.RecipientID) {
		mentions["user_ids"] = []string{msg.RecipientID}
	}
	c := map[string]any{
		"msgtype":    "m.text",
		"body":       neutralise(msg.Text),
		"m.mentions": mentions,
	}
	switch {
	case msg.ThreadID != "":
		reply := msg.ReplyTo
		if reply == "" {
			reply = msg.ThreadID
		}
		c["m.relates_to"] = map[string]any{
			"rel_type":        "m.thread",
			"event_id":        msg.ThreadID,
			"is_falling_back": true,
			"m.in_reply_to":   map[string]any{"event_id": reply},
		}
	case msg.ReplyTo != "":
		c["m.relates_to"] = map[string]any{"m.in_reply_to": map[string]any{"event_id": msg.ReplyTo}}
	}
	return c
}

// classify maps a failed call (op: send, upload, download) to the adapter
// sentinels.
func classify(op string, err error) error {
	var ae *apiError
	var te *transportError
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.Status == http.StatusTooManyRequests || ae.Errcode == "M_LIMIT_EXCEEDED":
			after := ae.RetryAfter
			if after <= 0 {
				after = time.Second
			}
			return fmt.Errorf("matrix: %s: %w", op,
				&adapter.RetryAfterError{After: after, Err: fmt.Errorf("%w: %v", adapter.ErrRateLimited, ae)})
		case ae.unauthorized():
			return fmt.Errorf("matrix: %s: %w: %v", op, adapter.ErrUnauthorized, ae)
		case ae.Errcode == "M_TOO_LARGE" || ae.Status == http.StatusRequestEntityTooLarge:
			return fmt.Errorf("matrix: %s: %w: %w: %v", op, adapter.ErrPermanent, adapter.ErrTooLarge, ae)
		case ae.Status >= 500:
			return fmt.Errorf("matrix: %s: %w: %v", op, adapter.ErrTemporary, ae)
		default:
			return fmt.Errorf("matrix: %s: %w: %v", op, adapter.ErrPermanent, ae)
		}
	case errors.As(err, &te) && te.Written:
		return fmt.Errorf("matrix: %s: %w: %v (the homeserver may have stored it; a retry with the same transaction id is deduplicated)",
			op, adapter.ErrAmbiguous, te)
	default:
		return fmt.Errorf("matrix: %s: %w: %w", op, adapter.ErrTemporary, err)
	}
}
