// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// ErrOutsideWindow is wrapped by a Send refused because the user's last
// message is more than 24 hours old and no template applies.
var ErrOutsideWindow = errors.New("outside the 24-hour customer-service window")

type textBody struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url"`
}

type templateBody struct {
	Name     string `json:"name"`
	Language struct {
		Code string `json:"code"`
	} `json:"language"`
	Components []templateComponent `json:"components,omitempty"`
}

type templateComponent struct {
	Type       string              `json:"type"`
	Parameters []templateParameter `json:"parameters"`
}

type templateParameter struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// sendRequest is the body of POST /{phone-number-id}/messages.
type sendRequest struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Context          *struct {
		MessageID string `json:"message_id"`
	} `json:"context,omitempty"`
	Text     *textBody     `json:"text,omitempty"`
	Template *templateBody `json:"template,omitempty"`
	Image    *mediaBody    `json:"image,omitempty"`
	Document *mediaBody    `json:"document,omitempty"`
	Audio    *mediaBody    `json:"audio,omitempty"`
	Video    *mediaBody    `json:"video,omitempty"`
}

type sendResponse struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

// Send delivers one reply part as a text message to msg.ChatID (the
// user's wa_id), quoting msg.ReplyTo (context.message_id).
//
// Outside the user's 24-hour customer-service window (the last message
// recorded from them is older) a free-form message is refused with
// ErrOutsideWindow (ErrPermanent); a push, which answers nothing
// (msg.ReplyTo empty), is sent as the configured template instead, and so
// is a push to a user without a record. Otherwise, without a record (a
// user who never wrote, or whose message predates the state directory),
// the text is tried and WhatsApp decides: its 131047 is ErrOutsideWindow
// too.
//
// Errors: HTTP 429 and the throttling codes 4, 80007, 130429, 131048,
// 131056 → *adapter.RetryAfterError; 401, 190 (token expired) and the
// permission codes → ErrUnauthorized (and the platform shows as failed);
// 5xx, 1, 2, 131000, 131016 → ErrTemporary; other errors → ErrPermanent;
// a failure after the request was written → ErrAmbiguous (the Cloud API
// has no idempotency key).
func (a *Adapter) Send(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	const what = "send message"
	ctx, end, err := a.life.Begin(ctx)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w: %w", what, adapter.ErrTemporary, err)
	}
	defer end()
	if !digits.MatchString(msg.ChatID) {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w: chat id %q is not a WhatsApp id (digits)", what, adapter.ErrPermanent, msg.ChatID)
	}
	if msg.Media != nil {
		return a.sendMedia(ctx, msg)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w: empty text", what, adapter.ErrPermanent)
	}
	if n := utf8.RuneCountInString(msg.Text); n > MaxTextLen {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w: text is %d characters, WhatsApp's limit is %d", what, adapter.ErrPermanent, n, MaxTextLen)
	}
	req := a.newRequest(msg)
	template, err := a.route(msg, false)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("whatsapp: %s: %w", what, err)
	}
	if template {
		req.Context = nil
		req.Type = "template"
		req.Template = &templateBody{Name: a.conf.TemplateName}
		req.Template.Language.Code = a.conf.TemplateLanguage
		if a.conf.TemplateTextParam {
			req.Template.Components = []templateComponent{{Type: "body",
				Parameters: []templateParameter{{Type: "text", Text: neutralise(msg.Text, MaxTextLen)}}}}
		}
	} else {
		req.Type = "text"
		req.Text = &textBody{Body: neutralise(msg.Text, MaxTextLen)}
	}
	return a.post(ctx, what, req, a.conf.RequestTimeout)
}

// newRequest starts the body of a message to msg.ChatID, quoting
// msg.ReplyTo.
func (a *Adapter) newRequest(msg *message.Outbound) sendRequest {
	req := sendRequest{MessagingProduct: "whatsapp", RecipientType: "individual", To: msg.ChatID}
	if msg.ReplyTo != "" {
		req.Context = &struct {
			MessageID string `json:"message_id"`
		}{msg.ReplyTo}
	}
	return req
}

// route decides between a free-form message and the template by the
// user's 24-hour window (see Send); media has no template, so a push of a
// file outside the window is refused. The error wraps ErrPermanent and
// ErrOutsideWindow.
func (a *Adapter) route(msg *message.Outbound, media bool) (template bool, err error) {
	last, known := a.window.get(msg.ChatID)
	inside := known && a.now().Sub(last) < Window
	switch {
	case inside || (!known && (msg.ReplyTo != "" || a.conf.TemplateName == "" || media)):
		return false, nil
	case msg.ReplyTo == "" && a.conf.TemplateName != "" && !media:
		return true, nil
	}
	since := "has not written"
	if known {
		since = "last wrote at " + last.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	hint := "WhatsApp accepts only a template message now"
	if msg.ReplyTo == "" && !media {
		hint += "; set template_name to send pushes as a template"
	}
	return false, fmt.Errorf("%w: %w: the user %s; %s", adapter.ErrPermanent, ErrOutsideWindow, since, hint)
}

// post sends req with POST /{phone-number-id}/messages within timeout.
func (a *Adapter) post(ctx context.Context, what string, req sendRequest, timeout time.Duration) (adapter.SendResult, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out sendResponse
	if err := a.api.do(cctx, http.MethodPost, "/"+a.conf.PhoneNumberID+"/messages", req, &out); err != nil {
		err = classify(what, err, true, a.logClamp)
		if errors.Is(err, adapter.ErrUnauthorized) {
			a.rejected(err)
		}
		return adapter.SendResult{}, err
	}
	if len(out.Messages) == 0 || out.Messages[0].ID == "" {
		return adapter.SendResult{}, nil
	}
	return adapter.SendResult{MessageID: out.Messages[0].ID}, nil
}

// neutralise keeps agent text from mentioning anyone: WhatsApp turns "@"
// followed by a phone number into a mention in groups, so a word joiner
// (U+2060, invisible) goes between them. Should that push the text over
// limit characters, the "@" becomes a fullwidth "＠" instead, which keeps
// the length.
func neutralise(s string, limit int) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	n := 0
	for i, r := range s {
		b.WriteRune(r)
		n++
		if r == '@' && i+1 < len(s) && (s[i+1] == '+' || s[i+1] >= '0' && s[i+1] <= '9') {
			b.WriteRune('\u2060')
			n++
		}
	}
	if n <= limit {
		return b.String()
	}
	return strings.ReplaceAll(s, "@", "\uff20")
}
