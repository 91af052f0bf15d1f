// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Rejection reasons passed to adapter.Metrics.Rejected.
const (
	RejectBadSignature = "bad_signature"         // 401
	RejectBadVerify    = "bad_verify_token"      // 403 on the GET handshake
	RejectMalformed    = "malformed"             // 400
	RejectTooLarge     = adapter.RejectTooLarge  // 413
	RejectReadError    = adapter.RejectReadError // 408 or 400
	RejectUnsupported  = "unsupported_type"      // 200: a text message without text, a system message
	RejectOtherNumber  = "other_number"          // 200: addressed to another phone number id
)

// HeaderSignature carries "sha256=" + hex HMAC-SHA256(app secret, raw body).
const HeaderSignature = "X-Hub-Signature-256"

// Meta data keys (message.Inbound.Meta, copied to replies).
const (
	// MetaPhoneNumberID is the business phone number id the message was
	// sent to.
	MetaPhoneNumberID = "phone_number_id"
)

// payload is a webhook notification, the part herald reads.
type payload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				MessagingProduct string `json:"messaging_product"`
				Metadata         struct {
					PhoneNumberID string `json:"phone_number_id"`
				} `json:"metadata"`
				Contacts []struct {
					WaID    string `json:"wa_id"`
					Profile struct {
						Name string `json:"name"`
					} `json:"profile"`
				} `json:"contacts"`
				Messages []inMessage   `json:"messages"`
				Statuses []statusEvent `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type inMessage struct {
	From      string `json:"from"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Text      *struct {
		Body string `json:"body"`
	} `json:"text"`
	Context *struct {
		ID string `json:"id"`
	} `json:"context"`
	inMedia
}

type statusEvent struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Timestamp   string `json:"timestamp"`
	RecipientID string `json:"recipient_id"`
	Errors      []struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"errors"`
}

const maxIDLen = 256

// ServeHTTP serves the callback URL: GET is Meta's verification
// handshake, POST a signed notification, answered 200 only once every
// message in it is stored.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	live := a.live.Load()
	if live == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "not accepting messages (starting or stopping)", http.StatusServiceUnavailable)
		return
	}
	switch r.Method {
	case http.MethodGet:
		a.handshake(w, r)
	case http.MethodPost:
		a.notification(w, r, live.inbox)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
	}
}

// handshake answers hub.challenge when hub.mode is subscribe and
// hub.verify_token matches, 403 otherwise.
func (a *Adapter) handshake(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	challenge := q.Get("hub.challenge")
	if q.Get("hub.mode") != "subscribe" || !hmac.Equal([]byte(q.Get("hub.verify_token")), a.verifyToken) ||
		challenge == "" || len(challenge) > maxIDLen {
		a.reject(w, r, http.StatusForbidden, RejectBadVerify, "verification refused", logrus.WarnLevel)
		return
	}
	a.log.Info("whatsapp: callback URL verified by the verification handshake")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, challenge)
}

func (a *Adapter) notification(w http.ResponseWriter, r *http.Request, inbox adapter.Inbox) {
	start := a.now()
	deadline := start.Add(a.conf.RequestTimeout)
	body, err := adapter.ReadBody(w, r, a.conf.MaxBodyBytes, start, a.conf.RequestTimeout)
	var be *adapter.BodyError
	if errors.As(err, &be) {
		a.reject(w, r, be.Status, be.Reason, be.Error(), logrus.DebugLevel)
		return
	}
	if err := verifySignature(a.appSecret, r.Header.Get(HeaderSignature), body); err != nil {
		a.reject(w, r, http.StatusUnauthorized, RejectBadSignature, "invalid signature: "+err.Error(), logrus.WarnLevel)
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		a.reject(w, r, http.StatusBadRequest, RejectMalformed, "body is not a webhook notification", logrus.DebugLevel)
		return
	}
	msgs, times := a.messages(&p, start)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	for _, m := range msgs {
		// A message the store refuses for good is acknowledged: else Meta
		// sends it again for seven days.
		if !a.refuse.Store(ctx, w, inbox, m, RejectMalformed) {
			return
		}
	}
	if len(times) > 0 {
		if err := a.window.seen(times, a.now()); err != nil {
			// The messages are stored; without the record a later reply
			// is tried and WhatsApp decides (131047 outside the window).
			a.log.WithError(err).Warn("whatsapp: cannot save the customer-service window record")
		}
	}
	a.statusEvents(&p)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

// messages turns the notification's messages into Inbound messages, and
// returns each sender's latest message time (unix seconds). Text is the
// text; an image, document, audio or video becomes an attachment (by media
// id) with its caption as the text; any other type (sticker, location,
// contacts, reaction …) is named in Unsupported, so that the core answers
// and counts it.
func (a *Adapter) messages(p *payload, received time.Time) ([]*message.Inbound, map[string]int64) {
	var out []*message.Inbound
	times := map[string]int64{}
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			v := &c.Value
			if len(v.Messages) == 0 {
				continue
			}
			if v.Metadata.PhoneNumberID != "" && v.Metadata.PhoneNumberID != a.conf.PhoneNumberID {
				// One app may serve several numbers; another herald
				// instance answers this one.
				a.metrics.Rejected(RejectOtherNumber)
				a.log.WithField("phone_number_id", v.Metadata.PhoneNumberID).Debug("whatsapp: message for another phone number id skipped")
				continue
			}
			names := map[string]string{}
			for _, ct := range v.Contacts {
				names[ct.WaID] = ct.Profile.Name
			}
			for _, m := range v.Messages {
				if m.ID == "" || m.From == "" || len(m.ID) > maxIDLen || len(m.From) > maxIDLen {
					a.metrics.Rejected(RejectMalformed)
					a.log.Warn("whatsapp: message without a valid id or sender skipped")
					continue
				}
				if ts, err := strconv.ParseInt(m.Timestamp, 10, 64); err == nil && ts > times[m.From] {
					times[m.From] = ts
				} else if err != nil && times[m.From] == 0 {
					times[m.From] = received.Unix()
				}
				text := ""
				var atts []message.Attachment
				var unsupported []string
				if m.Type == "text" {
					if m.Text != nil {
						text = m.Text.Body
					}
					if strings.TrimSpace(text) == "" {
						a.metrics.Rejected(RejectUnsupported)
						a.log.WithField("event_id", m.ID).Info("whatsapp: text message without text; skipped")
						continue
					}
				} else if m.Type == "system" {
					// WhatsApp's own notice (the user changed their
					// number), not something the user sent.
					a.metrics.Rejected(RejectUnsupported)
					a.log.WithField("event_id", m.ID).Info("whatsapp: system message skipped")
					continue
				} else {
					att, caption, kind := m.media()
					if att != nil {
						atts, text = []message.Attachment{*att}, caption
					} else {
						// The core answers that herald cannot pass it on,
						// and counts it.
						unsupported = []string{kind}
					}
				}
				in := &message.Inbound{
					Platform:    a.name,
					EventID:     m.ID,
					ChatID:      m.From,
					ChatType:    message.ChatDirect,
					SenderID:    m.From,
					SenderName:  names[m.From],
					MessageID:   m.ID,
					Text:        text,
					Attachments: atts,
					Unsupported: unsupported,
					ReceivedAt:  received,
					Meta:        map[string]string{MetaPhoneNumberID: a.conf.PhoneNumberID},
				}
				out = append(out, in)
			}
		}
	}
	return out, times
}

// statusEvents logs and counts the status changes of sent messages (sent,
// delivered, read, failed); a failed one is logged as a warning with
// WhatsApp's error, and shown on the status board.
func (a *Adapter) statusEvents(p *payload) {
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			for _, s := range c.Value.Statuses {
				st := s.Status
				switch st {
				case "sent", "delivered", "read", "failed", "deleted":
				default:
					st = "other"
				}
				a.statusMu.Lock()
				a.statuses[st]++
				cur := a.reported
				a.statusMu.Unlock()
				log := a.log.WithFields(logrus.Fields{"message_id": s.ID, "status": s.Status, "recipient": s.RecipientID})
				if st != "failed" {
					log.Debug("whatsapp: message status")
					continue
				}
				reason := "no reason given"
				if len(s.Errors) > 0 {
					reason = fmt.Sprintf("code %d: %s", s.Errors[0].Code, s.Errors[0].Title)
					log = log.WithField("code", s.Errors[0].Code)
				}
				log.Warn("whatsapp: WhatsApp could not deliver a sent message: " + reason)
				// The alarm rides on the phase reported last, which it
				// must not change (a rejected token stays fatal).
				if cur.Phase != "" && cur.Phase != adapter.PhaseStopped {
					cur.Alarm = fmt.Sprintf("last delivery failed (%s, %s)", truncate(s.ID, 64), truncate(reason, 128))
					a.life.Report(cur)
				}
			}
		}
	}
}

// StatusCounts returns how many status notifications were seen, by status
// (sent, delivered, read, failed, deleted, other).
func (a *Adapter) StatusCounts() map[string]int64 {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	out := make(map[string]int64, len(a.statuses))
	for k, v := range a.statuses {
		out[k] = v
	}
	return out
}

// verifySignature checks header, "sha256=<hex>", against the HMAC-SHA256
// of body keyed with secret, in constant time.
func verifySignature(secret []byte, header string, body []byte) error {
	if header == "" {
		return fmt.Errorf("no %s header", HeaderSignature)
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return fmt.Errorf("%s is not sha256=<hex>", HeaderSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%s is not sha256=<hex>", HeaderSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("signature does not match the body")
	}
	return nil
}

// reject answers status with msg, counts reason and logs at level
// (rate-limited). Neither the body nor any secret is logged.
func (a *Adapter) reject(w http.ResponseWriter, r *http.Request, status int, reason, msg string, level logrus.Level) {
	a.refuse.Refuse(w, r, a.now(), status, reason, msg, level)
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
