// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

type replyParameters struct {
	MessageID                int64 `json:"message_id"`
	AllowSendingWithoutReply bool  `json:"allow_sending_without_reply"`
}

type sendMessageParams struct {
	ChatID          any              `json:"chat_id"`
	Text            string           `json:"text"`
	MessageThreadID int64            `json:"message_thread_id,omitempty"`
	ReplyParameters *replyParameters `json:"reply_parameters,omitempty"`
	ReplyMarkup     *inlineKeyboard  `json:"reply_markup,omitempty"`
}

type sentMessage struct {
	MessageID int64 `json:"message_id"`
}

// target is the parsed address of an Outbound.
type target struct {
	chat    any // int64, or "@channelusername"
	thread  int64
	replyTo int64
}

func parseTarget(msg *message.Outbound) (target, error) {
	var t target
	switch id, err := strconv.ParseInt(msg.ChatID, 10, 64); {
	case err == nil && id != 0:
		t.chat = id
	case strings.HasPrefix(msg.ChatID, "@") && validWord(msg.ChatID[1:], 64):
		t.chat = msg.ChatID
	default:
		return t, fmt.Errorf("%w: chat id %q is neither a number nor @username", adapter.ErrPermanent, msg.ChatID)
	}
	var err error
	if t.thread, err = optionalID(msg.ThreadID); err != nil {
		return t, fmt.Errorf("%w: thread id %q is not a number", adapter.ErrPermanent, msg.ThreadID)
	}
	if t.replyTo, err = optionalID(msg.ReplyTo); err != nil {
		return t, fmt.Errorf("%w: reply-to message id %q is not a number", adapter.ErrPermanent, msg.ReplyTo)
	}
	return t, nil
}

func optionalID(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// Send delivers one reply part as plain text (no parse_mode, so Markdown
// from the agent can never make Telegram refuse the message). It answers
// msg.ReplyTo (reply_parameters with allow_sending_without_reply, so a
// deleted original does not fail the reply) inside msg.ThreadID (forum
// topic).
//
// A part longer than 4096 UTF-16 code units is sent as several messages,
// only the first a reply; should one fail, a retry with the same
// IdempotencyKey continues after the pieces already sent (in this process).
//
// A part with Media is uploaded instead (sendMedia).
//
// Errors: 429 → *adapter.RetryAfterError (ErrRateLimited); 400 and 403 →
// ErrPermanent; 401/404 → ErrUnauthorized; 5xx and failures before the
// request was written → ErrTemporary; a failure after it was written →
// ErrAmbiguous: Telegram has no idempotency key, so a blind retry may show
// the message twice.
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	const method = "sendMessage"
	ctx, end, err := a.begin(ctx, method)
	if err != nil {
		return adapter.SendResult{}, err
	}
	defer end()
	t, err := parseTarget(msg)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("telegram: %s: %w", method, err)
	}
	if msg.Media != nil {
		return a.sendMedia(ctx, msg, t)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return adapter.SendResult{}, fmt.Errorf("telegram: %s: %w: empty text", method, adapter.ErrPermanent)
	}
	pieces := splitUnits(msg.Text, MaxTextUnits)
	first, lastID := 0, ""
	if len(pieces) > 1 {
		first, lastID = a.parts.get(msg.IdempotencyKey)
	}
	for i := first; i < len(pieces); i++ {
		p := sendMessageParams{ChatID: t.chat, Text: pieces[i], MessageThreadID: t.thread}
		if i == 0 && t.replyTo != 0 {
			p.ReplyParameters = &replyParameters{MessageID: t.replyTo, AllowSendingWithoutReply: true}
		}
		if i == len(pieces)-1 {
			p.ReplyMarkup = keyboard(msg.Buttons)
		}
		var sent sentMessage
		cctx, cancel := a.callCtx(ctx)
		err := a.api.call(cctx, method, p, &sent)
		cancel()
		if err != nil {
			if i > 0 {
				a.parts.put(msg.IdempotencyKey, i, lastID)
			}
			return adapter.SendResult{}, classify(method, err, true)
		}
		lastID = strconv.FormatInt(sent.MessageID, 10)
	}
	if len(pieces) > 1 {
		a.parts.del(msg.IdempotencyKey)
	}
	return adapter.SendResult{MessageID: lastID}, nil
}

// Edit implements adapter.Editor with editMessageText. An edit that
// changes nothing ("message is not modified") succeeds. Edits are
// idempotent, so an unknown outcome is ErrTemporary, not ErrAmbiguous. A
// text over 4096 UTF-16 code units cannot be edited in: ErrPermanent.
func (a *Adapter) Edit(ctx context.Context, msg *message.Outbound, messageID string) error {
	const method = "editMessageText"
	ctx, end, err := a.begin(ctx, method)
	if err != nil {
		return err
	}
	defer end()
	t, err := parseTarget(msg)
	if err != nil {
		return fmt.Errorf("telegram: %s: %w", method, err)
	}
	id, err := strconv.ParseInt(messageID, 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("telegram: %s: %w: message id %q is not a number", method, adapter.ErrPermanent, messageID)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return fmt.Errorf("telegram: %s: %w: empty text", method, adapter.ErrPermanent)
	}
	if n := utf16Len(msg.Text); n > MaxTextUnits {
		return fmt.Errorf("telegram: %s: %w: text is %d UTF-16 code units, Telegram's limit is %d", method, adapter.ErrPermanent, n, MaxTextUnits)
	}
	params := struct {
		ChatID    any    `json:"chat_id"`
		MessageID int64  `json:"message_id"`
		Text      string `json:"text"`
	}{t.chat, id, msg.Text}
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	err = a.api.call(cctx, method, params, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == 400 && strings.Contains(ae.Description, "message is not modified") {
		return nil
	}
	if err != nil {
		return classify(method, err, false)
	}
	return nil
}

// Typing implements adapter.Typer with sendChatAction "typing", which
// Telegram shows for 5 s or until the next message.
func (a *Adapter) Typing(ctx context.Context, msg *message.Outbound) error {
	const method = "sendChatAction"
	ctx, end, err := a.begin(ctx, method)
	if err != nil {
		return err
	}
	defer end()
	t, err := parseTarget(msg)
	if err != nil {
		return fmt.Errorf("telegram: %s: %w", method, err)
	}
	params := struct {
		ChatID          any    `json:"chat_id"`
		Action          string `json:"action"`
		MessageThreadID int64  `json:"message_thread_id,omitempty"`
	}{t.chat, "typing", t.thread}
	cctx, cancel := a.callCtx(ctx)
	defer cancel()
	if err := a.api.call(cctx, method, params, nil); err != nil {
		return classify(method, err, false)
	}
	return nil
}

// classify maps a failed call to the adapter sentinels. unsafe marks a
// method that must not be repeated after an unknown outcome (sendMessage).
func classify(method string, err error, unsafe bool) error {
	var ae *apiError
	var te *transportError
	switch {
	case errors.As(err, &ae):
		switch {
		case ae.Code == 429:
			after := ae.RetryAfter
			if after <= 0 {
				after = time.Second
			}
			return fmt.Errorf("telegram: %s: %w", method,
				&adapter.RetryAfterError{After: after, Err: fmt.Errorf("%w: %v", adapter.ErrRateLimited, ae)})
		case ae.Code == 401 || ae.Code == 404:
			return fmt.Errorf("telegram: %s: %w: %v", method, adapter.ErrUnauthorized, ae)
		case ae.Code >= 500 && ae.RetryAfter > 0:
			return fmt.Errorf("telegram: %s: %w", method,
				&adapter.RetryAfterError{After: ae.RetryAfter, Err: fmt.Errorf("%w: %v", adapter.ErrTemporary, ae)})
		case ae.Code >= 500:
			return fmt.Errorf("telegram: %s: %w: %v", method, adapter.ErrTemporary, ae)
		default:
			// 400 (chat not found, message too long …), 403 (bot blocked,
			// kicked), and any other 4xx: this request will never work.
			return fmt.Errorf("telegram: %s: %w: %v", method, adapter.ErrPermanent, ae)
		}
	case errors.As(err, &te) && te.Written && unsafe:
		return fmt.Errorf("telegram: %s: %w: %v (the request was sent; Telegram may have delivered it and has no idempotency key)",
			method, adapter.ErrAmbiguous, te)
	default:
		return fmt.Errorf("telegram: %s: %w: %w", method, adapter.ErrTemporary, err)
	}
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 && r <= unicode.MaxRune {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// splitUnits cuts s into pieces of at most max UTF-16 code units, at rune
// boundaries, preferring a line break, then a space, in the second half of
// a piece. Pieces of only white space are dropped (Telegram refuses them).
func splitUnits(s string, max int) []string {
	if len(s) <= max || utf16Len(s) <= max {
		return []string{s}
	}
	var out []string
	for s != "" {
		units, cut, lastNL, lastSP := 0, len(s), -1, -1
		for i, r := range s {
			n := utf16.RuneLen(r)
			if n < 0 {
				n = 1 // invalid UTF-8 travels as U+FFFD
			}
			if units+n > max {
				cut = i
				break
			}
			units += n
			if r == '\n' {
				lastNL = i + 1
			} else if unicode.IsSpace(r) {
				lastSP = i + len(string(r))
			}
		}
		if cut < len(s) {
			switch {
			case lastNL > cut/2:
				cut = lastNL
			case lastSP > cut/2:
				cut = lastSP
			}
		}
		if piece := s[:cut]; strings.TrimSpace(piece) != "" {
			out = append(out, piece)
		}
		s = s[cut:]
	}
	return out
}

// partStore remembers how far a multi-message part got, by idempotency
// key, so a retry does not repeat the pieces already shown. It lives in
// memory only and holds at most maxParts entries.
type partStore struct {
	mu sync.Mutex
	m  map[string]partProgress
}

type partProgress struct {
	sent   int
	lastID string
	at     time.Time
}

const maxParts = 256

func (s *partStore) get(key string) (int, string) {
	if key == "" {
		return 0, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.m[key]
	return p.sent, p.lastID
}

func (s *partStore) put(key string, sent int, lastID string) {
	if key == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]partProgress{}
	}
	if _, ok := s.m[key]; !ok && len(s.m) >= maxParts {
		oldest := ""
		for k, p := range s.m {
			if oldest == "" || p.at.Before(s.m[oldest].at) {
				oldest = k
			}
		}
		delete(s.m, oldest)
	}
	s.m[key] = partProgress{sent: sent, lastID: lastID, at: time.Now()}
}

func (s *partStore) del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}
