// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// Messages sent without being asked (the send API): stored in the outbox
// in one transaction with the caller's idempotency key, then delivered,
// retried and given up on exactly like replies.

// SendRequest is a message to send to a chat.
type SendRequest struct {
	Platform string
	// ChatID is the chat; empty means the platform's home chat.
	ChatID   string
	ThreadID string
	Text     string
	// Media are files sent after the text, in order, each a part of its
	// own. Text may be empty when there are files.
	Media []SendMedia
	// IdempotencyKey identifies the message: the same key sends once and
	// answers the same id. Empty: a random key.
	IdempotencyKey string
}

// SendMedia is a file of a SendRequest.
type SendMedia struct {
	// Source is an http(s) URL, fetched with the guarded client, or an
	// absolute path under media.outbound_dirs.
	Source  string
	Caption string
}

// MaxSendMedia bounds the files of one SendRequest.
const MaxSendMedia = 10

// FieldError is a SendRequest refused because of one of its fields.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ErrNotAccepting is returned by Send while the dispatcher is not started
// or is stopping: the caller tries again (the next instance accepts).
var ErrNotAccepting = errors.New("dispatch: not accepting messages (herald is starting or stopping)")

// MaxSendKey bounds the length of an idempotency key.
const MaxSendKey = 200

// sendSessionPrefix starts the session key of sent messages: they are
// delivered in order per chat, apart from the chat's replies.
const sendSessionPrefix = "send\x00"

// Send stores req in the outbox and queues it for delivery. It returns the
// message's id and dup=true when the key was already stored (nothing is
// sent again). Errors: *FieldError for a request that can never succeed,
// ErrNotAccepting while stopping, else a store error.
func (d *Dispatcher) Send(ctx context.Context, req SendRequest) (id int64, dup bool, err error) {
	p, open, err := d.apiTarget(req.Platform, &req.ChatID)
	if err != nil {
		return 0, false, err
	}
	switch {
	case strings.TrimSpace(req.Text) == "" && len(req.Media) == 0:
		return 0, false, &FieldError{"text", "required"}
	case len(req.Media) > MaxSendMedia:
		return 0, false, &FieldError{"media", fmt.Sprintf("more than %d files", MaxSendMedia)}
	case len(req.Media) > 0 && d.opts.Media == nil:
		return 0, false, &FieldError{"media", "media is not set up in this herald"}
	case len(req.IdempotencyKey) > MaxSendKey:
		return 0, false, &FieldError{"idempotency_key", fmt.Sprintf("longer than %d bytes", MaxSendKey)}
	}
	if !open {
		return 0, false, ErrNotAccepting
	}
	if req.IdempotencyKey == "" {
		var b [16]byte
		rand.Read(b[:])
		req.IdempotencyKey = "random-" + hex.EncodeToString(b[:])
	}
	var parts []string
	if strings.TrimSpace(req.Text) != "" {
		parts = Split(req.Text, p.limit)
	}
	if len(parts)+len(req.Media) > d.opts.MaxReplyParts {
		parts = Cut(parts, max(d.opts.MaxReplyParts-len(req.Media), 1), p.limit)
	}
	// The files are fetched into the media store before the outbox write,
	// so that delivery, after a restart too, needs nothing but the store.
	files := make([]*message.OutboundMedia, len(req.Media))
	for i, f := range req.Media {
		om, err := d.fetchOutbound(d.ctx, media.Segment{Source: f.Source, Alt: f.Caption})
		var size int64
		if om != nil {
			size = om.Size
		}
		d.metrics.MediaFetch("out", fetchResult(err), size)
		if err != nil {
			if sendFetchRefused(err) {
				return 0, false, &FieldError{"media", fmt.Sprintf("media[%d]: %s", i, d.outboundReason(err))}
			}
			return 0, false, fmt.Errorf("dispatch: send: media[%d]: %w", i, err)
		}
		files[i] = om
	}
	n := len(parts) + len(files)
	out := make([]message.Outbound, 0, n)
	add := func(text string, om *message.OutboundMedia) {
		i := len(out) + 1
		out = append(out, message.Outbound{
			Platform:       req.Platform,
			ChatID:         req.ChatID,
			ThreadID:       req.ThreadID,
			Text:           text,
			Media:          om,
			Part:           i,
			Parts:          n,
			IdempotencyKey: message.IdempotencyKey(req.Platform, "send\x00"+req.IdempotencyKey, i),
		})
	}
	for _, text := range parts {
		add(text, nil)
	}
	for _, om := range files {
		add("", om)
	}
	key := sendSessionPrefix + req.Platform + "\x00" + req.ChatID + "\x00" + req.ThreadID
	// The write runs to its end whatever the caller does, so that a stored
	// message is always queued here too, not only by the next instance.
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, recs, dup, err := d.store.AddSend(wctx, req.IdempotencyKey, key, req.Platform, req.ChatID, out)
	if err != nil {
		return 0, false, fmt.Errorf("dispatch: send: %w", err)
	}
	if dup {
		return id, true, nil
	}
	d.queueDeliveries(key, nil, recs)
	return id, false, nil
}

// apiTarget looks up the platform a request of the API names and fills in
// its home chat when the request names none. open reports whether the
// dispatcher accepts messages.
func (d *Dispatcher) apiTarget(name string, chat *string) (p *platform, open bool, err error) {
	d.mu.Lock()
	open = d.intakeOpen
	p = d.platforms[name]
	d.mu.Unlock()
	switch {
	case name == "":
		return nil, false, &FieldError{"platform", "required"}
	case p == nil:
		return nil, false, &FieldError{"platform", fmt.Sprintf("no platform %q is configured", name)}
	}
	if *chat == "" {
		*chat = p.HomeChat
	}
	if *chat == "" {
		return nil, false, &FieldError{"chat_id", fmt.Sprintf("required: platforms.%s has no home_chat", name)}
	}
	return p, open, nil
}

// isSend reports whether an outbox record belongs to a sent message.
func isSend(rec store.OutboxRecord) bool {
	return strings.HasPrefix(rec.SessionKey, sendSessionPrefix)
}

// sendOutcome counts the end of a sent message's part (sent, failed).
func (d *Dispatcher) sendOutcome(dl *delivery, result string) {
	if isSend(dl.rec) {
		d.metrics.SendDelivery(dl.rec.Msg.Platform, result)
	}
}

// sendFetchRefused reports whether a file of a SendRequest can never be
// fetched as given (the caller must change the request) rather than failed
// for now.
func sendFetchRefused(err error) bool {
	return errors.Is(err, media.ErrOutsideDirs) || errors.Is(err, media.ErrForbiddenAddress) ||
		errors.Is(err, adapter.ErrTooLarge) || errors.Is(err, adapter.ErrPermanent)
}
