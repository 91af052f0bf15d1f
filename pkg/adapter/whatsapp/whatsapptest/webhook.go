// SPDX-License-Identifier: Apache-2.0

package whatsapptest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Message is an inbound text message for a notification.
type Message struct {
	ID   string // wamid
	From string // the user's wa_id
	Name string // profile name
	Text string
	At   time.Time // zero: now
	// Type overrides "text": image, document, audio, video and sticker
	// carry the media fields below; other types (location, contacts,
	// reaction …) an empty object.
	Type string
	// MediaID (from AddMedia), MIME, Caption (image, video, document),
	// Filename (document) and Voice (audio) make the media object.
	MediaID  string
	MIME     string
	Caption  string
	Filename string
	Voice    bool
}

// mediaObject is the media object of m: id, mime_type, sha256 (a
// placeholder), and caption, filename and voice when set.
func (m Message) mediaObject() map[string]any {
	o := map[string]any{"id": m.MediaID, "mime_type": m.MIME, "sha256": "c2hhMjU2"}
	if m.Caption != "" {
		o["caption"] = m.Caption
	}
	if m.Filename != "" {
		o["filename"] = m.Filename
	}
	if m.Type == "audio" {
		o["voice"] = m.Voice
	}
	return o
}

// Status is a status change of a sent message for a notification.
type Status struct {
	ID        string // the sent message's wamid
	Status    string // sent, delivered, read, failed
	Recipient string
	ErrorCode int // for failed
	Error     string
}

// Text builds a signed-ready notification body carrying msgs, sent to the
// fake's phone number, and records that the senders wrote (the window).
func (f *Fake) Text(msgs ...Message) []byte {
	for _, m := range msgs {
		at := m.At
		if at.IsZero() {
			at = time.Now()
		}
		f.UserWrote(m.From, at)
	}
	return Notification(f.PhoneNumberID, msgs, nil)
}

// Statuses builds a notification body carrying status changes.
func (f *Fake) Statuses(sts ...Status) []byte {
	return Notification(f.PhoneNumberID, nil, sts)
}

// Notification builds a webhook notification body in the Cloud API's
// shape: object whatsapp_business_account, one entry, one change of field
// "messages" whose value holds metadata, contacts, messages and statuses.
func Notification(phoneNumberID string, msgs []Message, sts []Status) []byte {
	type obj = map[string]any
	value := obj{
		"messaging_product": "whatsapp",
		"metadata":          obj{"display_phone_number": "15550783881", "phone_number_id": phoneNumberID},
	}
	var contacts, messages, statuses []obj
	for _, m := range msgs {
		at := m.At
		if at.IsZero() {
			at = time.Now()
		}
		typ := m.Type
		if typ == "" {
			typ = "text"
		}
		contacts = append(contacts, obj{"profile": obj{"name": m.Name}, "wa_id": m.From})
		msg := obj{"from": m.From, "id": m.ID, "timestamp": strconv.FormatInt(at.Unix(), 10), "type": typ}
		if typ == "text" {
			msg["text"] = obj{"body": m.Text}
		} else if m.MediaID != "" {
			msg[typ] = m.mediaObject()
		} else {
			msg[typ] = obj{}
		}
		messages = append(messages, msg)
	}
	for _, s := range sts {
		st := obj{"id": s.ID, "status": s.Status, "timestamp": strconv.FormatInt(time.Now().Unix(), 10), "recipient_id": s.Recipient}
		if s.ErrorCode != 0 {
			st["errors"] = []obj{{"code": s.ErrorCode, "title": s.Error, "message": s.Error}}
		}
		statuses = append(statuses, st)
	}
	if contacts != nil {
		value["contacts"] = contacts
		value["messages"] = messages
	}
	if statuses != nil {
		value["statuses"] = statuses
	}
	b, _ := json.Marshal(obj{"object": "whatsapp_business_account", "entry": []obj{{
		"id": "102290129340398", "changes": []obj{{"value": value, "field": "messages"}},
	}}})
	return b
}

// Sign returns the X-Hub-Signature-256 value of body: "sha256=" + hex
// HMAC-SHA256 keyed with the app secret.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// NewRequest builds a notification POST to url signed with appSecret
// (empty: unsigned).
func NewRequest(ctx context.Context, url, appSecret string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if appSecret != "" {
		req.Header.Set("X-Hub-Signature-256", Sign(appSecret, body))
	}
	return req, nil
}

// Sender posts notifications to a callback URL the way Meta does.
type Sender struct {
	Client    *http.Client // nil: http.DefaultClient
	URL       string       // the callback URL
	AppSecret string       // signs every request
}

// Post sends one notification to url signed with appSecret and returns
// the status code.
func Post(ctx context.Context, url, appSecret string, body []byte) (int, error) {
	return Sender{URL: url, AppSecret: appSecret}.Post(ctx, body)
}

// Deliver is Sender.Deliver with http.DefaultClient.
func Deliver(ctx context.Context, url, appSecret string, body []byte, interval time.Duration) (int, error) {
	return Sender{URL: url, AppSecret: appSecret}.Deliver(ctx, body, interval)
}

// Post sends one signed notification and returns the status code.
func (s Sender) Post(ctx context.Context, body []byte) (int, error) {
	req, err := NewRequest(ctx, s.URL, s.AppSecret, body)
	if err != nil {
		return 0, err
	}
	return fakeserver.Do(s.Client, req)
}

// Deliver posts the notification the way Meta does: again and again,
// every interval, until it is answered 200 or ctx ends. It returns how
// many attempts were made.
func (s Sender) Deliver(ctx context.Context, body []byte, interval time.Duration) (int, error) {
	for n := 1; ; n++ {
		code, err := s.Post(ctx, body)
		if err == nil && code == http.StatusOK {
			return n, nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("whatsapptest: not delivered after %d attempts (last: %d %v): %w", n, code, err, ctx.Err())
		case <-t.C:
		}
	}
}

// Verify performs the GET verification handshake on target and returns the
// status code and body.
func Verify(ctx context.Context, target, verifyToken, challenge string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target+"?hub.mode=subscribe&hub.verify_token="+
		url.QueryEscape(verifyToken)+"&hub.challenge="+url.QueryEscape(challenge), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}
