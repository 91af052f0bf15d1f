// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook/internal/signature"
	"github.com/heraldgw/herald/pkg/message"
)

const (
	// DefaultSendTimeout bounds a Send whose context has no deadline (the
	// core always gives one: delivery.timeout).
	DefaultSendTimeout = 30 * time.Second
	// MaxRetryAfter caps the delay taken from a Retry-After header, so a
	// confused receiver cannot park a reply for days.
	MaxRetryAfter = time.Hour
	// maxResponseBody is how much of a response Send reads: the id of a 2xx
	// answer, a snippet of an error for the log.
	maxResponseBody = 64 << 10
	maxErrorSnippet = 200
)

// ReplyBody is the JSON body of an outbound reply.
type ReplyBody struct {
	// ID is the reply part's idempotency key, also sent as webhook-id and
	// Idempotency-Key; stable across retries.
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	ThreadID       string `json:"thread_id,omitempty"`
	Text           string `json:"text"`
	Part           int    `json:"part"`
	Parts          int    `json:"parts"`
	// InReplyTo is the event id of the inbound message answered.
	InReplyTo string `json:"in_reply_to"`
	// Media is the file of a media part (its Text is then empty or a
	// caption): a signed, expiring herald link and what the file is.
	Media *ReplyMedia `json:"media,omitempty"`
}

// ReplyMedia is the file of a media reply part.
type ReplyMedia struct {
	URL     string `json:"url"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	MIME    string `json:"mime"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Caption string `json:"caption,omitempty"`
}

// SendsMedia reports that every kind is sent: as a link in the payload.
func (a *Adapter) SendsMedia(message.MediaKind) bool { return true }

// Send POSTs one reply part to the message's reply_url (Meta[MetaReplyURL],
// re-checked against the allow list in case the configuration changed since
// it was received) or to the configured reply_url. It makes one attempt,
// bounded by ctx, and classifies the outcome:
//
//   - 2xx: delivered; SendResult.MessageID is the "id" string of a JSON
//     response body, if any.
//   - 408, 409 (the receiver is still processing the same Idempotency-Key),
//     5xx, or a network error before the request was written:
//     adapter.ErrTemporary; 429: adapter.ErrRateLimited. Either is wrapped in
//     *adapter.RetryAfterError when the response has a Retry-After header.
//   - a timeout or a lost connection after the request was written:
//     adapter.ErrAmbiguous (retrying is safe: the receiver sees the same
//     Idempotency-Key).
//   - 401 and 403: adapter.ErrPermanent and adapter.ErrUnauthorized;
//     other statuses (other 4xx, 3xx: redirects are not followed):
//     adapter.ErrPermanent. No reply URL, or one not allowed: ErrPermanent.
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	if msg == nil {
		return adapter.SendResult{}, fmt.Errorf("webhook: send: %w: nil message", adapter.ErrPermanent)
	}
	if a.Life.Stopping() {
		return adapter.SendResult{}, fmt.Errorf("webhook: send: %w: adapter stopped", adapter.ErrTemporary)
	}
	if delivered, err := a.waiters.offer(ctx, msg); err != nil || delivered {
		// The sender waits for this reply in its own request, and has it
		// (or the outcome is unknown).
		return adapter.SendResult{}, err
	}
	target, err := a.target(msg)
	if err != nil {
		return adapter.SendResult{}, err
	}
	key := msg.IdempotencyKey
	if key == "" {
		key = fallbackKey(msg)
	}
	var rm *ReplyMedia
	if m := msg.Media; m != nil {
		if m.URL == "" {
			return adapter.SendResult{}, fmt.Errorf("webhook: send: %w: media part without a link (media.public_url)", adapter.ErrPermanent)
		}
		if _, err := os.Stat(m.Path); err != nil {
			return adapter.SendResult{}, fmt.Errorf("webhook: send: %w: %v", adapter.ErrPermanent, err)
		}
		rm = &ReplyMedia{URL: m.URL, Kind: string(m.Kind), Name: m.Name, MIME: m.MIME, Size: m.Size, SHA256: m.SHA256, Caption: m.Caption}
	}
	body, err := json.Marshal(ReplyBody{
		Media:          rm,
		ID:             key,
		ConversationID: msg.ChatID,
		UserID:         msg.RecipientID,
		ThreadID:       msg.ThreadID,
		Text:           msg.Text,
		Part:           msg.Part,
		Parts:          msg.Parts,
		InReplyTo:      msg.ReplyTo,
	})
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("webhook: send: %w: %v", adapter.ErrPermanent, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultSendTimeout)
		defer cancel()
	}
	// Whether the request reached the wire decides between "not delivered,
	// retry" and "outcome unknown".
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("webhook: send: %w: %v", adapter.ErrPermanent, err)
	}
	ts := signature.Timestamp(a.now())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "herald-webhook")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set(signature.HeaderID, key)
	req.Header.Set(signature.HeaderTimestamp, ts)
	if a.outKey != nil {
		req.Header.Set(signature.HeaderSignature, signature.SignStandard(a.outKey, key, ts, body))
	}
	// A Send that finishes after Stop must not leave a keep-alive
	// connection (and its goroutines) behind.
	defer func() {
		if a.Life.Stopping() {
			a.transport.CloseIdleConnections()
		}
	}()

	where := "POST " + describeURL(target)
	resp, err := a.client.Do(req)
	if err != nil {
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err // without the URL, which may carry a token
		}
		if wrote.Load() {
			return adapter.SendResult{}, fmt.Errorf("webhook: %s: %w: request sent, no answer: %w", where, adapter.ErrAmbiguous, cause)
		}
		return adapter.SendResult{}, fmt.Errorf("webhook: %s: %w: %w", where, adapter.ErrTemporary, cause)
	}
	defer resp.Body.Close()
	return classify(resp, where, a.now())
}

// classify maps a response to a SendResult or a sentinel-wrapped error.
func classify(resp *http.Response, where string, now time.Time) (adapter.SendResult, error) {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		var res adapter.SendResult
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
		var answer struct {
			ID any `json:"id"`
		}
		if json.Unmarshal(b, &answer) == nil {
			if s, ok := answer.ID.(string); ok {
				res.MessageID = s
			}
		}
		return res, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorSnippet))
	detail := resp.Status
	if s := snippet(b); s != "" {
		detail += ": " + s
	}
	var sentinel error
	switch {
	case code == http.StatusTooManyRequests:
		sentinel = adapter.ErrRateLimited
	case code == http.StatusRequestTimeout, code == http.StatusConflict, code >= 500:
		sentinel = adapter.ErrTemporary
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return adapter.SendResult{}, fmt.Errorf("webhook: %s: %w: %w: %s (check outbound_secret)", where, adapter.ErrPermanent, adapter.ErrUnauthorized, detail)
	default:
		return adapter.SendResult{}, fmt.Errorf("webhook: %s: %w: %s", where, adapter.ErrPermanent, detail)
	}
	err := fmt.Errorf("webhook: %s: %w: %s", where, sentinel, detail)
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		return adapter.SendResult{}, &adapter.RetryAfterError{After: d, Err: err}
	}
	return adapter.SendResult{}, err
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3). A date in the past gives 0; delays are capped at
// MaxRetryAfter. ok is false for an absent or unparseable value.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return MaxRetryAfter, true
			}
			return 0, false
		}
		if n > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > MaxRetryAfter:
		return MaxRetryAfter, true
	}
	return d, true
}

// target picks the URL a reply goes to.
func (a *Adapter) target(msg *message.Outbound) (*url.URL, error) {
	if s := msg.Meta[MetaReplyURL]; s != "" {
		u, err := parseReplyURL(s)
		if err != nil {
			return nil, fmt.Errorf("webhook: send: %w: reply_url of the message: %v", adapter.ErrPermanent, err)
		}
		if !a.allow.allows(u) {
			return nil, fmt.Errorf("webhook: send: %w: reply_url %s is no longer under reply_url or reply_url_allow", adapter.ErrPermanent, describeURL(u))
		}
		return u, nil
	}
	if a.replyURL != nil {
		return a.replyURL, nil
	}
	return nil, fmt.Errorf("webhook: send: %w: no reply_url (the message has none and reply_url is not configured)", adapter.ErrPermanent)
}

// fallbackKey derives a stable key for an Outbound without one (the core
// always sets IdempotencyKey; this keeps direct callers safe to retry).
func fallbackKey(msg *message.Outbound) string {
	h := sha256.New()
	for _, s := range []string{msg.Platform, msg.ChatID, msg.ThreadID, msg.ReplyTo, strconv.Itoa(msg.Part), msg.Text} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "hw-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// describeURL shows where a reply went: scheme and host only. The path, the
// query and user info may carry tokens (a Discord or Slack incoming webhook
// URL is https://<host>/api/webhooks/<id>/<token> or
// https://hooks.slack.com/services/<ids>/<token>), and these strings reach
// the journal and /status.
func describeURL(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// snippet returns a printable, single-line prefix of a response body.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
