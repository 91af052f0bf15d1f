// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook/internal/signature"
	"github.com/heraldgw/herald/pkg/message"
)

// Rejection reasons passed to adapter.Metrics.Rejected.
const (
	RejectBadSignature   = "bad_signature"         // 401
	RejectMalformed      = "malformed"             // 400: not JSON, wrong field types, missing or invalid fields
	RejectTooLarge       = adapter.RejectTooLarge  // 413: body over max_body_bytes or text over message.MaxTextBytes
	RejectReplyURLDenied = "reply_url_denied"      // 400: reply_url outside reply_url_allow
	RejectReadError      = adapter.RejectReadError // 408 (read deadline) or 400 (body cut short)
)

// Delivery id headers, in order of preference. webhook-id is covered by the
// Standard Webhooks signature; the others are trusted as far as the request
// is.
var deliveryHeaders = [...]string{"webhook-id", "Idempotency-Key", "X-GitHub-Delivery"}

// DerivedIDPrefix starts the event id of a request that carries no delivery
// id header: "sha256:" + hex SHA-256 of the raw body. Identical bodies are
// then one event, so a redelivery is stored once; a sender that may send
// the same body twice on purpose must send a delivery id.
const DerivedIDPrefix = "sha256:"

// Field limits of the inbound JSON contract.
const (
	maxIDLen   = 256 // delivery id, conversation_id, user_id, thread_id
	maxNameLen = 256 // user_name
)

// inboundBody is herald's inbound JSON contract. Unknown fields are ignored
// so that senders can add their own.
type inboundBody struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	Text           string `json:"text"`
	ReplyURL       string `json:"reply_url"`
	UserName       string `json:"user_name"`
	ThreadID       string `json:"thread_id"`
	ChatType       string `json:"chat_type"`
	// Attachments are files the sender offers by URL; herald fetches
	// them with its guarded client (http(s), media.max_bytes, no private
	// addresses unless media.allow_private).
	Attachments []inboundAttachment `json:"attachments"`
}

type acceptedBody struct {
	ID string `json:"id"`
}

type errorBody struct {
	Error string `json:"error"`
}

// ServeHTTP handles one inbound POST: size and time bounds, signature,
// parsing, Inbox.Deliver, and 202 only once Deliver has returned nil.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := a.now()
	live := a.live.Load()
	if live == nil {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"not accepting messages (starting or stopping)"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"use POST"})
		return
	}
	// The deadline covers the body read and storing the message.
	deadline := start.Add(a.cfg.RequestTimeout)
	body, err := adapter.ReadBody(w, r, a.cfg.MaxBodyBytes, start, a.cfg.RequestTimeout)
	var be *adapter.BodyError
	if errors.As(err, &be) {
		a.reject(w, r, be.Status, be.Reason, be.Error(), logrus.DebugLevel)
		return
	}

	if !a.cfg.InsecureNoSignature {
		if err := a.verify(r.Header, body); err != nil {
			a.reject(w, r, http.StatusUnauthorized, RejectBadSignature, "invalid signature: "+err.Error(), logrus.WarnLevel)
			return
		}
	}

	id, err := deliveryID(r.Header, body)
	if err != nil {
		a.reject(w, r, http.StatusBadRequest, RejectMalformed, err.Error(), logrus.DebugLevel)
		return
	}

	m, status, reason, err := a.parse(body, id)
	if err != nil {
		a.reject(w, r, status, reason, err.Error(), logrus.DebugLevel)
		return
	}
	m.ReceivedAt = start

	wait, err := requestedWait(r)
	if err != nil {
		a.reject(w, r, http.StatusBadRequest, RejectMalformed, err.Error(), logrus.DebugLevel)
		return
	}
	var (
		token   string
		waiting *waiter
	)
	if wait > 0 {
		// Registered before Deliver: the reply may be ready before Deliver
		// even returns. The token goes into the stored message, so only
		// this request receives its reply, and only if it stored it.
		if token, waiting, err = a.waiters.add(id); err != nil {
			a.Log.WithError(err).Error("webhook: cannot register the wait; the request is told to retry")
			writeJSON(w, http.StatusInternalServerError, errorBody{"message not stored; retry"})
			return
		}
		defer a.waiters.remove(token)
		m.Meta = withMeta(m.Meta, metaWait, token)
	}

	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	err = live.inbox.Deliver(ctx, m)
	cancel()
	switch {
	case err == nil:
		if a.Log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			a.Log.WithFields(logrus.Fields{"event_id": id, "conversation_id": m.ChatID}).Debug("webhook: accepted")
		}
		if waiting != nil {
			a.await(w, r, id, wait, token, waiting)
			return
		}
		writeJSON(w, http.StatusAccepted, acceptedBody{ID: id})
	case errors.Is(err, adapter.ErrStopping):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"herald is stopping; retry"})
	case errors.Is(err, adapter.ErrUnavailable):
		a.Log.WithError(err).WithField("event_id", id).Warn("webhook: message store unavailable; the sender is told to retry")
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"message store unavailable; retry"})
	case errors.Is(err, message.ErrInvalid):
		a.Log.WithError(err).WithField("event_id", id).Warn("webhook: message refused by the store")
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
	default:
		a.Log.WithError(err).WithField("event_id", id).Error("webhook: cannot store message; the sender is told to retry")
		writeJSON(w, http.StatusInternalServerError, errorBody{"message not stored; retry"})
	}
}

// verify checks the request signature with the configured scheme. With
// "any", a webhook-signature header selects Standard Webhooks (it also
// protects against replay); otherwise X-Hub-Signature-256 is checked.
func (a *Adapter) verify(h http.Header, body []byte) error {
	std := strings.Join(h.Values(signature.HeaderSignature), " ")
	gh := h.Get(signature.HeaderGitHub)
	scheme := a.cfg.Signature
	if scheme == SchemeAny {
		switch {
		case std != "":
			scheme = SchemeStandard
		case gh != "":
			scheme = SchemeGitHub
		default:
			return fmt.Errorf("%w: no %s or %s header", signature.ErrMissing, signature.HeaderSignature, signature.HeaderGitHub)
		}
	}
	if scheme == SchemeGitHub {
		return signature.VerifyGitHub(a.githubKey, gh, body)
	}
	return signature.VerifyStandard(a.standardKey, h.Get(signature.HeaderID), h.Get(signature.HeaderTimestamp), std, body, a.now())
}

// deliveryID returns the event id of a request: the first delivery id
// header present, else one derived from the body.
func deliveryID(h http.Header, body []byte) (string, error) {
	for _, name := range deliveryHeaders {
		v := strings.TrimSpace(h.Get(name))
		if name == "Idempotency-Key" {
			// An sf-string per draft-ietf-httpapi-idempotency-key-header.
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
		}
		if v == "" {
			continue
		}
		if len(v) > maxIDLen {
			return "", fmt.Errorf("%s is %d bytes, limit %d", name, len(v), maxIDLen)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return "", fmt.Errorf("%s contains a byte outside printable ASCII", name)
			}
		}
		return v, nil
	}
	sum := sha256.Sum256(body)
	return DerivedIDPrefix + hex.EncodeToString(sum[:]), nil
}

// parse decodes the inbound JSON contract into a message. On failure it
// returns the status and the rejection reason.
func (a *Adapter) parse(body []byte, id string) (*message.Inbound, int, string, error) {
	var in inboundBody
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, http.StatusBadRequest, RejectMalformed, fmt.Errorf("body is not the expected JSON object: %s", jsonProblem(err))
	}
	bad := func(format string, args ...any) (*message.Inbound, int, string, error) {
		return nil, http.StatusBadRequest, RejectMalformed, fmt.Errorf(format, args...)
	}
	for _, f := range []struct{ name, v string }{
		{"conversation_id", in.ConversationID}, {"user_id", in.UserID},
	} {
		if f.v == "" {
			return bad("%s is required", f.name)
		}
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"conversation_id", in.ConversationID, maxIDLen}, {"user_id", in.UserID, maxIDLen},
		{"thread_id", in.ThreadID, maxIDLen}, {"user_name", in.UserName, maxNameLen},
	} {
		if len(f.v) > f.max {
			return bad("%s is %d bytes, limit %d", f.name, len(f.v), f.max)
		}
		if hasControl(f.v) {
			return bad("%s contains control characters", f.name)
		}
	}
	if strings.TrimSpace(in.Text) == "" && len(in.Attachments) == 0 {
		return bad("text is required")
	}
	if len(in.Attachments) > message.MaxAttachments {
		return bad("%d attachments, limit %d", len(in.Attachments), message.MaxAttachments)
	}
	atts, err := attachments(in.Attachments)
	if err != nil {
		return bad("%v", err)
	}
	if len(in.Text) > message.MaxTextBytes {
		return nil, http.StatusRequestEntityTooLarge, RejectTooLarge, fmt.Errorf("text is %d bytes, limit %d", len(in.Text), message.MaxTextBytes)
	}
	chatType := message.ChatDirect
	switch in.ChatType {
	case "", string(message.ChatDirect):
	case string(message.ChatGroup), string(message.ChatChannel):
		chatType = message.ChatType(in.ChatType)
	default:
		return bad("chat_type %q is not one of dm, group, channel", truncate(in.ChatType, 32))
	}
	m := &message.Inbound{
		Platform:    a.Name,
		EventID:     id,
		ChatID:      in.ConversationID,
		ChatType:    chatType,
		ThreadID:    in.ThreadID,
		SenderID:    in.UserID,
		SenderName:  in.UserName,
		MessageID:   id,
		Text:        in.Text,
		Attachments: atts,
	}
	if in.ReplyURL != "" {
		u, err := parseReplyURL(in.ReplyURL)
		if err != nil {
			return bad("reply_url: %v", err)
		}
		if !a.allow.allows(u) {
			return nil, http.StatusBadRequest, RejectReplyURLDenied,
				fmt.Errorf("reply_url: %s://%s is not under a configured reply_url or reply_url_allow prefix", u.Scheme, u.Host)
		}
		m.Meta = map[string]string{MetaReplyURL: in.ReplyURL}
	}
	return m, 0, "", nil
}

// withMeta returns meta with k set to v, allocating it if needed.
func withMeta(meta map[string]string, k, v string) map[string]string {
	if meta == nil {
		meta = map[string]string{}
	}
	meta[k] = v
	return meta
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// The message quotes at most one character of the input.
		return fmt.Sprintf("syntax error at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "want a JSON object, got " + typ.Value
		}
		return fmt.Sprintf("%s must be a %s, got %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "invalid JSON"
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// reject answers status with msg, counts reason and logs at level with the
// remote address (rate-limited). Neither the body nor any secret is logged.
func (a *Adapter) reject(w http.ResponseWriter, r *http.Request, status int, reason, msg string, level logrus.Level) {
	a.Metrics.Rejected(reason)
	if a.Log.Logger.IsLevelEnabled(level) {
		if ok, suppressed := a.warn.Allow(a.now()); ok {
			e := a.Log.WithFields(logrus.Fields{"remote": r.RemoteAddr, "status": status, "reason": reason})
			if suppressed > 0 {
				e = e.WithField("suppressed", suppressed)
			}
			e.Log(level, "webhook: request rejected: "+msg)
		}
	}
	writeJSON(w, status, errorBody{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
